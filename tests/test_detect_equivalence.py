"""Detection results do not change when the detector is made faster (issues 10 and 12).

``tests/data/detection-equivalence.json`` holds, per task, a digest of everything a detection says — tier,
confidence, scores, base tier, boost, the ask's span, the runner-up, every hit with its signal, tier, weight,
text, span, boost, weights and group, and the JSON form — as the detector gave it before the hot path was
reworked (commit bec5e95). Each run detects the same tasks again and compares, task by task:

* the shared dev set (``../shared/data/*.jsonl``, skipped when it is not beside the checkout);
* the default policy's golden examples and the labelled corpus of ``tests/data/complexity/``;
* 2,000 generated tasks (policy words and phrases, inflected, re-cased, glued with separators, punctuation,
  non-ASCII letters) and hand-made edge cases;
* each with the contexts a caller may pass (none, several agents, a previous tier, an unrelated key);
* the small test policy, and a synthetic policy whose derived signals have groups, chains and boosts.

A change that is meant to change results regenerates the file on purpose:
``python tests/test_detect_equivalence.py --write`` (and says why in its commit).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run as a script too

from conftest import DATA, SHARED  # noqa: E402
from test_detect_words import EDGES, generated  # noqa: E402

GOLDEN = DATA / "detection-equivalence.json"
CONTEXTS = [None, {"agent_count": 3}, {"previous_tier": "multi-system"}, {"repo": "x"}, None, {}]
TIERS = ["simple", "medium", "complex", "multi-system"]

# Derived signals that count in groups, see earlier derived signals, boost, and read the ask and the task.
SYNTHETIC = [
    {"id": "x", "words": ["alpha", "beta gamma"], "weights": {"complex": 1}, "group": "a"},
    {"id": "y", "words": ["delta"], "weights": {"simple": 1}, "group": "b"},
    {"id": "z", "in": "ask", "words": ["epsilon", "alpha"], "weights": {"medium": 1.25}, "group": "b"},
    {"id": "up", "words": ["urgent"], "boost": 1},
    {"id": "down", "pattern": r"\bno rush\b", "boost": -2, "weights": {"simple": 0.5}},
    {"id": "none-of-a", "when": "count.a == 0", "weights": {"simple": 1}, "group": "b"},
    {"id": "not-x", "when": "!has(hits.x) && count.b < 2", "weights": {"medium": 2}},
    {"id": "chain", "when": "'none-of-a' in hits || count.a >= 1", "boost": 1},
    {"id": "ask-b", "when": "ask.count.b >= 2", "weights": {"multi-system": 1}, "group": "a"},
    {"id": "after-ask-b", "when": "count.a >= 2 && !('chain' in hits)", "weights": {"multi-system": 0.75}},
    {"id": "short", "when": "count.b == 0 && ask.question && ask.words <= 4", "weights": {"simple": 1.5}},
    {"id": "long", "when": "words > 8 && chars > 40", "weights": {"complex": -0.5}},
    {"id": "agents", "when": "has(context.agent_count) && context.agent_count > 1", "boost": 1},
]
VOCABULARY = ["alpha", "beta", "gamma", "delta", "epsilon", "urgent", "no rush", "can you", "ignore", "the", "?",
              ".", "-", "all three", "i need", "ÉPSILON", "Alpha-", "\n"]


def record(detection: Any) -> list:
    """Everything a detection says, as JSON data."""
    hits = [[h.signal, h.tier, h.weight, h.text, h.span, h.boost, sorted(h.weights.items()), h.group]
            for h in detection.hits]
    return [detection.tier, detection.confidence, list(detection.scores.items()), detection.base_tier,
            detection.boost, detection.ask, detection.runner_up, hits, detection.to_dict()]


def digest(detection: Any) -> str:
    text = json.dumps(record(detection), ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha1(text.encode("ascii")).hexdigest()[:16]


def _shared_tasks() -> list[str]:
    for folder in (SHARED / "data", Path("/work/shared/data")):
        paths = sorted(folder.glob("complexity-*.jsonl")) if folder.is_dir() else []
        if paths:
            return [json.loads(line)["text"] for p in paths for line in p.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
    return []


def _labelled() -> list[str]:
    return [json.loads(line)["text"] for name in ("train", "heldout")
            for line in (DATA / "complexity" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def _synthetic_texts() -> list[str]:
    rng = random.Random(11)
    return [" ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(0, 14))) for _ in range(600)]


def sources() -> Iterator[tuple[str, Any, list[str]]]:
    """(name, policy, tasks) of every corpus the file covers."""
    from engine import load_policy
    from engine.detect import Detector
    from engine.detect.plan import signals_from_data

    default = load_policy("default", cache=False)
    yield "dev set", default, _shared_tasks()
    yield "golden examples", default, [e.task for e in default.task_examples]
    yield "labelled corpus", default, _labelled()
    yield "generated", default, generated(default)
    yield "edges", default, EDGES
    small = load_policy(str(DATA / "small-detection.yaml"), cache=False)
    yield "small policy", small, [e.task for e in default.task_examples] + _labelled()[:200] + EDGES
    synthetic = Detector(signals_from_data({"signals": SYNTHETIC}), TIERS, "medium")
    yield "synthetic policy", synthetic, _synthetic_texts()


def digests(detector_of: Any, texts: list[str]) -> list[str]:
    """One digest per task and context (the contexts cycle through :data:`CONTEXTS`)."""
    detect = detector_of.detect
    return [digest(detect(text, CONTEXTS[i % len(CONTEXTS)])) for i, text in enumerate(texts)]


def _expected() -> dict:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["dev set", "golden examples", "labelled corpus", "generated", "edges",
                                  "small policy", "synthetic policy"])
def test_detections_are_those_before_the_rework(name: str) -> None:
    expected = _expected()[name]
    policy, texts = next((p, t) for n, p, t in sources() if n == name)
    if not texts:
        pytest.skip("the labelled dev set is not beside the repository (../shared/data)")
    assert len(texts) == expected["tasks"]
    got = digests(policy, texts)
    changed = [(i, texts[i][:80]) for i, (a, b) in enumerate(zip(got, expected["digests"])) if a != b]
    assert not changed, f"{len(changed)} of {len(texts)} detections differ, first: {changed[:5]}"


def test_a_cold_detector_answers_as_a_warm_one() -> None:
    """What is remembered across tasks (condition values, confidences, the matcher's switch to one RE2 set)
    changes nothing: a detector built for each task gives the same digests as one that saw every task."""
    from engine import load_policy
    from engine.detect import Detector
    from engine.policy import load_data

    default = load_policy("default", cache=False)
    texts = [e.task for e in default.task_examples] + _labelled()[::7]
    warm = digests(default, texts)
    cold = []
    for i, text in enumerate(texts):
        fresh = Detector.from_data(load_data("default")["detection"], [t.id for t in default.tiers], default.default_tier,
                                   plan=default.artifacts["detection"])
        cold.append(digest(fresh.detect(text, CONTEXTS[i % len(CONTEXTS)])))
    assert cold == warm


def test_every_source_is_large_enough() -> None:
    expected = _expected()
    assert expected["generated"]["tasks"] == 2000
    assert expected["labelled corpus"]["tasks"] >= 600
    assert sum(s["tasks"] for s in expected.values()) >= 3500


def write() -> None:
    out = {}
    for name, policy, texts in sources():
        out[name] = {"tasks": len(texts), "digests": digests(policy, texts)}
        print(f"{name}: {len(texts)} tasks")
    GOLDEN.write_text(json.dumps(out, indent=0) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_detect_equivalence.py --write")
    write()
