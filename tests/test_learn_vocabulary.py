"""The learned vocabulary of the default policy (scripts/learn_vocabulary.py, docs/detection.md)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "policies" / "default.yaml"


def _script():
    spec = importlib.util.spec_from_file_location("learn_vocabulary", ROOT / "scripts" / "learn_vocabulary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _block(text: str) -> list[str]:
    script = _script()
    return text[text.index(script.BEGIN) + len(script.BEGIN):text.index(script.END)].splitlines()


def test_the_block_holds_only_learned_word_signals_scoped_to_the_ask(default_policy) -> None:
    lines = _block(POLICY.read_text(encoding="utf-8"))
    assert 50 <= len(lines) <= 250
    shape = re.compile(r"    - \{id: (v-[a-z0-9-]+x*), words: \[(\"[a-z0-9_ ]+\")\], in: ask, weights: \{([^{}]+)\}\}")
    ids = set()
    for line in lines:
        found = shape.fullmatch(line)
        assert found, line
        ids.add(found.group(1))
        weights = dict(part.split(": ") for part in found.group(3).split(", "))
        assert set(weights) <= {"simple", "medium", "complex", "multi-system"}
        # small next to the hand-written cues (a lookup form is +3.5, a diagnosis +3): a learned word nudges
        assert all(abs(float(w)) <= 2.5 for w in weights.values()), line
    assert len(ids) == len(lines)
    by_id = {s.id: s for s in default_policy.signals}
    assert ids <= set(by_id) and all(by_id[i].scope == "ask" for i in ids)


def test_a_learned_word_shows_in_the_explanation(run_cli) -> None:
    code, out, _ = run_cli("detect", "Why did last night's dbt run fail?", "--explain")
    assert code == 0 and re.search(r"^v-\S+ ", out, re.M)


def test_without_the_block_the_policy_is_the_hand_written_one(tmp_path: Path) -> None:
    import engine

    script = _script()
    plain = script.without_block(POLICY.read_text(encoding="utf-8"))
    assert _block(plain) == [] and script.BEGIN in plain and script.END in plain
    (tmp_path / "plain.yaml").write_text(plain, encoding="utf-8")
    signals = engine.load_policy(str(tmp_path / "plain.yaml")).signals
    assert signals and not any(s.id.startswith("v-") for s in signals)


def test_candidates_are_frequent_words_and_pairs_one_per_inflection() -> None:
    script = _script()
    tasks = [{"text": t} for t in ("Fix the models today", "fix the model now", "Fix the model 42 times",
                                   "a b c", "a b c")]
    found = script.candidates(tasks, 2)
    assert "fix" in found and "fix the" in found and "the model" in found
    assert "the models" not in found  # 'the model' matches it (a literal's last word inflects)
    assert "42" not in found and "a" not in found and "b c" not in found  # numbers, one-letter words


def test_the_counter_examples_and_golden_tasks_are_read_as_literals_and_weigh_more() -> None:
    script = _script()
    counter, seed = (script.load(path) for path in script.CASES)
    golden = script.load(str(POLICY))
    for cases, least in ((counter, 50), (seed, 15), (golden, 10)):
        assert len(cases) % script.CASE_WEIGHT == 0 and len(cases) >= script.CASE_WEIGHT * least
        assert {c["tier"] for c in cases} == {"simple", "medium", "complex", "multi-system"}
    assert {"text": "Investigate data issue", "tier": "medium"} in seed
    assert all(path in script.LABELS for path in (*script.CASES, str(POLICY)))


def test_block_lines_round_weights_and_drop_small_ones() -> None:
    script = _script()
    text = script.block(["why", "row count", "zzz"], [[0.0, 0.01, 0.456, -0.3], [1.234, 0, 0, 0], [0.01, 0, 0, 0]],
                        ["simple", "medium", "complex", "multi-system"], None, 0.02)
    assert text.splitlines() == [
        '    - {id: v-why, words: ["why"], in: ask, weights: {complex: 0.46, multi-system: -0.3}}',
        '    - {id: v-row-count, words: ["row count"], in: ask, weights: {simple: 1.23}}']


def test_the_fit_finds_the_words_of_each_tier(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("scipy")
    script = _script()
    tiers = ["simple", "medium", "complex", "multi-system"]
    word = {"simple": "lookup", "medium": "tweak", "complex": "untangle", "multi-system": "orchestrate"}
    tasks = [{"text": f"please {word[t]} item {i}", "tier": t} for t in tiers for i in range(12)]
    grams = script.candidates(tasks, 3)
    scores = [[0.0] * 4 for _ in tasks]
    fired = [[grams.index(word[t["tier"]]), grams.index("please")] for t in tasks]
    a, weights = script.fit(scores, fired, [tiers.index(t["tier"]) for t in tasks], len(grams), 0.001)
    for rank, tier in enumerate(tiers):
        assert max(range(4), key=lambda k: weights[grams.index(word[tier])][k]) == rank
    assert abs(weights[grams.index("please")]).max() < 0.5  # a word of every tier says little


def test_the_blind_set_is_not_in_the_fit() -> None:
    script = _script()
    assert not any(name in p for name in ("fresh3-heldout", "fresh4-heldout", "fresh5-heldout") for p in script.LABELS)
    assert json.loads((ROOT / "tests" / "data" / "complexity" / "fresh3-heldout.jsonl").read_text().splitlines()[0])
