"""The detection plan (plain data the compiled-policy cache keeps) and the warm start it buys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from engine.policy import Policy, load_data
from engine.detect.plan import PLAN_FORMAT

TASKS = ["Show current Snowflake status", "Troubleshoot cross-system freshness", "Ｄｅｓｉｇｎ end–to–end ＡＲＣＨ",
         "Why does the dbt run take 3x longer? Get it under 10 minutes"]


@pytest.fixture(scope="module")
def data() -> dict:
    return load_data(ROOT / "policies" / "default.yaml")


def test_compiling_a_policy_plans_its_detection(data: dict) -> None:
    plan = Policy.from_data(data).artifacts["detection"]
    assert plan["format"] == PLAN_FORMAT and len(plan["patterns"]) == len(plan["entries"])
    assert json.loads(json.dumps(plan)) == plan  # plain JSON, as the cache stores it


def test_a_cached_plan_detects_exactly_like_a_fresh_compile(data: dict) -> None:
    fresh = Policy.from_data(data)
    cached = Policy.from_data(data, artifacts=json.loads(json.dumps(dict(fresh.artifacts))))
    assert cached.artifacts["detection"] is not fresh.artifacts["detection"]
    assert [cached.detect(t) for t in TASKS] == [fresh.detect(t) for t in TASKS]


@pytest.mark.parametrize("plan", [{"format": PLAN_FORMAT + 1}, {"format": PLAN_FORMAT, "patterns": []},
                                  {"format": PLAN_FORMAT, "patterns": ["x"], "entries": [[9999, "word", ["x"]]],
                                   "derived": [], "conditions": ""}, "junk", None])
def test_an_unusable_plan_is_rebuilt(data: dict, plan: object) -> None:
    policy = Policy.from_data(data, artifacts={"detection": plan})
    assert policy.detect(TASKS[1]).tier == "multi-system"


def test_a_policy_without_signals_plans_nothing(data: dict) -> None:
    bare = {k: v for k, v in data.items() if k != "detection"}
    policy = Policy.from_data(bare)
    assert "detection" not in policy.artifacts and policy.detect(TASKS[1]).tier == policy.default_tier


PROBE = """
import sys, io, contextlib
from engine.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
heavy = ("ruamel", "jsonschema", "lark", "rich", "referencing", "unicodedata")
print(code, sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}))
"""


def test_warm_evaluate_needs_no_yaml_schema_or_expression_parser(tmp_path: Path) -> None:
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    args = ["evaluate", "Troubleshoot cross-system freshness", "--agent", "dbt-expert", "--json"]
    runs = [subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                           timeout=60, cwd=tmp_path) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[1].stdout.strip() == "0 []", runs[1].stderr


def test_commands_that_only_allocate_load_nothing_of_detection(tmp_path: Path) -> None:
    probe = ("import sys, io, contextlib\nfrom engine.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    code = main(sys.argv[1:])\n"
             "print(code, sorted(m for m in sys.modules if m.startswith(('engine.detect', 're2'))))\n")
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    for _ in range(2):  # cold, then warm
        done = subprocess.run([sys.executable, "-c", probe, "budget", "dbt-expert", "complex", "--json"], env=env,
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout.strip() == "0 []", done.stderr


def _many_signals(count: int) -> list[dict]:
    """``count`` generated word, phrase and pattern signals (as bench_startup.py makes them), three derived."""
    items = []
    for i in range(count - 3):
        a, b = f"gen{i}alpha", f"gen{i}beta"
        if i % 10 == 9:
            items.append({"id": f"p{i}", "pattern": rf"\b{a}(?:ing|ed)?\s+{b}\b", "weights": {"complex": 1}})
        else:
            items.append({"id": f"w{i}", "words": [a, f"{a} {b}"], "weights": {"simple": 1},
                          **({"group": "system"} if i % 7 == 0 else {})})
    return items + [{"id": "breadth", "when": "count.system >= 2", "weights": {"multi-system": 2}},
                    {"id": "short", "when": "words <= 8", "weights": {"simple": 1}},
                    {"id": "asks", "when": "question && !('breadth' in hits)", "weights": {"simple": 1}}]


def test_a_detector_from_a_cached_plan_builds_only_what_a_task_reaches() -> None:
    """With a plan, a detector of 3,000 signals builds the derived signals and the ones a task fires — not
    every signal, effect or word-index entry — and detects exactly like one built from a fresh plan."""
    from engine.detect import Detector
    from engine.detect.plan import plan_section

    detection = {"signals": _many_signals(3000)}
    plan = json.loads(json.dumps(plan_section(detection)))
    cached = Detector.from_data(detection, ["simple", "medium", "complex", "multi-system"], "medium", plan=plan)
    fresh = Detector.from_data(detection, ["simple", "medium", "complex", "multi-system"], "medium")
    task = "Is gen7alpha gen7beta related to gen19alphaing gen19beta and gen14alpha?"
    assert [h.signal for h in cached.detect(task).hits] == ["w7", "w14", "p19", "breadth"]
    built = [i for i, s in enumerate(cached._signals._built) if s is not None]
    assert built == [7, 14, 19, 2997, 2998, 2999]
    assert sorted(cached._effects) == built and len(cached._entries) == 4
    expanded = [form for form, entries in cached._matcher.index._starts.items() if type(entries) is not list]
    assert sorted(expanded) == ["gen14alpha", "gen7alpha"]
    assert cached.signals == fresh.signals and len(cached.signals) == 3000  # all built when asked for
    for text in (task, "gen1alpha gen2alpha gen2alpha gen2beta", "nothing here?", "gen9alphaed  gen9beta"):
        assert cached.detect(text) == fresh.detect(text), text


@pytest.mark.parametrize("key, wrong", [
    ("index", []), ("index", {"x": 1}), ("index", {"x": ["1"]}), ("index", {"x": [-1]}), ("index", {"x": []}),
    ("groups", "x"), ("groups", [1]), ("scoped", [True]), ("scoped", {}), ("asks", 1), ("asks", None),
    ("digest", 5), ("gates", {}), ("gates", [[1]]), ("gates", [[1, 2]]), ("gates", [["x", "abc"]]),
    ("entries", [[0, "word", ["x"]]]), ("entries", [[0, "literal", ""]]), ("entries", [[0, ["regex"], "x"]]),
    ("entries", [[-1, "literal", "x"]]), ("patterns", [None]),
])
def test_a_cached_plan_with_a_field_of_the_wrong_shape_is_refused(data: dict, key: str, wrong: object) -> None:
    from engine.policy.cache import decode_plan

    plan = Policy.from_data(data).artifacts["detection"]
    plan["conditions"] = {}  # as the cache keeps it
    assert decode_plan(json.dumps(plan)) == plan
    if key in ("entries", "patterns"):
        plan["patterns"] = [""] * len(wrong) if key == "entries" else wrong
        plan["entries"] = wrong if key == "entries" else [[0, "literal", "x"]]
    else:
        plan[key] = wrong
    assert decode_plan(json.dumps(plan)) is None
