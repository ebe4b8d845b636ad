"""Acceptance fuzz (issue 8): whole policies — a valid structure holding hostile values (huge, negative and
non-finite numbers, empty and unicode names, long strings, odd expressions, names that differ only in case) —
go through validate → budget → detect → monitor → analyze (→ recommend), in-process. Validation ends in
problems at a line and column (or a policy); a policy that passed then gives a result at every step, or
LookupFailed for the unknown names the fuzz asks for, or ValueError where the API documents it (a bad token
count given to the monitor) — never another exception; 5 % of the examples also run `ctxbudget validate` and
`ctxbudget analyze --json` in-process (exit 0/1, or 2 with a message; no traceback). No JSON a step would
print holds NaN or Infinity, and every record the monitor wrote is read back.

Each example is a seed: the policy is built from it with `random` (so generating costs ~nothing and a run of
2,000 examples takes ~13 s of CPU), derandomized and without a database, so every CI run tries the same
policies; a failure shows the policy's YAML (hypothesis `note`). Policies are valid ones (extreme values the
schema allows) with zero to three hostile values put where valid ones were, of the same kind mostly (a number
for a number: that is what gets past the schema), or a key renamed or written twice. They are written as YAML
(JSON-style flow collections, .nan / .inf and integers Python will not convert as raw tokens); logs go to a
temporary folder. Found so far, fixed: a .nan scope weight passed validate and broke every budget; a
5,000-digit int and a 4,000-digit hex int crashed the YAML reader (harden-expr's yaml-number rule).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from engine.diagnostics import LookupFailed, PolicyError, UsageError
from engine.monitor import monitor

EXAMPLES = int(os.environ.get("CTXBUDGET_FUZZ_EXAMPLES", 2000))
# What a step may raise for a policy that passed validation (besides the monitor's documented ValueError for a
# bad token count): an unknown name. Anything else from a validated policy — ValueError from inside the budget
# split, an EvaluationError — is a bug: validate should have refused the policy.
UNKNOWN_NAME = (LookupFailed,)


class Raw(str):
    """A scalar written as it is (a 5,000-digit int, a hex literal), not quoted."""


class Pairs(list):
    """A mapping written from (key, value) pairs, so a key may repeat."""


def to_yaml(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{to_yaml(k)}: {to_yaml(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_yaml(k)}: {to_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_yaml(v) for v in value) + "]"
    raise TypeError(type(value))


def policy_yaml(policy: dict) -> str:
    return "".join(f"{to_yaml(k)}: {to_yaml(v)}\n" for k, v in policy.items())


NAN, INF = float("nan"), float("inf")
ODD_NUMBERS = [0, -1, -0.0, 10**8 + 1, 10**30, 2**63, 1.5, NAN, INF, -INF, 1e308, 5e-324, Raw("9" * 5000),
               Raw("0x" + "f" * 4000), Raw("1e400"), True, "20000", None, [], {}]
ODD_NAMES = ["", " ", "é", "Ä", "-x", "a b", "a" * 65, "𝔘𝔫𝔦", "null", "1", "ﬁ", "İ", "x\u202e", "a/b", "x" * 300,
             "\u00a0", "default", "nosuch", "(a+)+$", "[", "(?=x)", "a{1000}{1000}"]

FORMULAS = [
    "min(round(profile.base * tier.multiplier), profile.max)", "profile.base", "profile.max",
    "profile.base * tier.multiplier", "profile.base * 1e300", "1.0/0.0", "0.0/0.0", "-1", "0",
    "9223372036854775807 + 1", "profile.base / 0", "size(agent) * 1000", "agent", "tier.rank * 1000",
    "profile.nosuch", "double(profile.base) * 1e308 * 10.0", "int(1e300)", "'x' + 'y'", "(" * 300 + "1" + ")" * 300,
    " + ".join(["1"] * 3000), "tier.id == 'simple' ? 1000 : profile.base", "round(0.0/0.0)",
    "[1, 2, 3].map(x, [x, x]).size() * 1000", "profile.base * tier.multiplier * tier.multiplier * 1e5",
]
WHENS = [
    "count.system >= 3", "has(context.agent_count) && context.agent_count > 1", "context.x > 1",
    "text.matches('(a+)+b')", "size(text) > 10", "true", "false", "1/0 > 0", "context.n / 0.0 > 1.0",
    "words > 3", "chars > 10", "question", "size(tiers) > 0", "hits.exists(h, h == 'dbt')", "1",
    "text.contains('x') || context.y", "'a' * 3", "count.nosuch > 1", "(" * 200 + "true" + ")" * 200,
    "context.agent_count > 9223372036854775807", "text.size() * 99999999999 > 0",
]
TEXTS = ["", "Show dbt models", "Troubleshoot the dbt run in Snowflake and Tableau -> x -> y",
         "why " * 2000, "é" * 100, "İ\u0307ﬁ\u00a0\u202e日本語?", "a" * 20000, "\x00\x01\n\t"]
CONTEXTS = [None, {}, {"agent_count": 3}, {"agent_count": "x"}, {"x": 1e308, "n": 0},
            {"agent_count": 10**30}, {"y": [1, [2, [3]]], "n": -0.0}]
LOADS = [0, 1, 1000, 30000, 10**8, -1, 1.5, NAN, INF, 2**53, True]


SPLITS = {1: [[1]], 2: [[0.5, 0.5], [0.25, 0.75], [1, 0]], 3: [[0.2, 0.3, 0.5], [0.35, 0.15, 0.5], [1, 0, 0]]}
SAFE_NAMES = ["simple", "medium", "complex", "multi", "a", "A", "a.b", "a-b", "x_1", "dbt", "Z9", "n" * 64]
AGENT_NAMES = ["specialists/dbt-expert", "roles/dbt-expert", "dbt-expert", "Dbt-Expert", "a", "x/y/z", "s" * 200,
               "specialists/snowflake-expert"]
LONG_TEXT = ["", "é" * 2000, "x" * 2000, "İ\u0307ﬁ\u00a0\u202e日本語", "line\nbreak\ttab"]


def signal(rng: random.Random, tiers: list) -> dict:
    """A signal that is valid, with extreme values where the schema allows them."""
    result: dict = {"id": rng.choice(SAFE_NAMES)}
    kind = rng.choice(["words", "pattern", "when"])
    if kind == "words":
        result["words"] = rng.sample(["dbt", "snowflake", "troubleshoot", "root cause", "é", "ﬁle", "x" * 200,
                                      "İstanbul", "日本語", "q", "a-b c"], rng.randint(1, 3))
    elif kind == "pattern":
        result["pattern"] = rng.choice(["\\bdbt\\b", "(a+)+$", "(?i)x", "\\p{L}+", "^", "é+", "\\d{4}",
                                        "(?:->|→).*(?:->|→)", ".*" * 20, "a{1000}"])
    else:
        result["when"] = rng.choice(WHENS[:15])
    if rng.random() < 0.5:
        result["weights"] = {rng.choice(tiers): rng.choice([1, 2.5, -1, 0, 1000, -1000, 1e-300])}
    if rng.random() < 0.5:
        result["boost"] = rng.choice([1, -1, 0, 31, -31])
    if rng.random() < 0.5:
        result["group"] = rng.choice(["system", "team", "n" * 64])
    return result


def valid_policy(rng: random.Random) -> dict:
    """A policy that passes validation, its values drawn from the edges of what is allowed."""
    scopes = rng.sample(SAFE_NAMES, rng.randint(1, 3))
    tier_ids = rng.sample(SAFE_NAMES, rng.randint(1, 4))
    tiers = [{"id": t, "multiplier": rng.choice([0.5, 1, 1.5, 2, 1000, 1e-9, 0.001])} for t in tier_ids]
    if rng.random() < 0.25:
        tiers[0]["description"] = rng.choice(LONG_TEXT)
    profile_ids = rng.sample(SAFE_NAMES, rng.randint(1, 3))
    profiles = {}
    for pid in profile_ids:
        base = rng.choice([0, 1, 1000, 20000, 10**8])
        profiles[pid] = {"base": base, "max": rng.choice([base, 10**8, max(base, 50000)]),
                         "weights": dict(zip(scopes, rng.choice(SPLITS[len(scopes)])))}
    agents = {a: rng.choice(profile_ids) for a in rng.sample(AGENT_NAMES, rng.randint(1, 4))}
    policy: dict = {"version": 1, "scopes": scopes, "profiles": profiles, "agents": agents, "tiers": tiers}
    if rng.random() < 0.5:
        policy["default_tier"] = rng.choice(tier_ids)
    if rng.random() < 0.5:
        policy["budget"] = {"formula": rng.choice(FORMULAS[:3] + [
            "profile.base * tier.multiplier", "tier.id == 'simple' ? 1000 : profile.base", "size(agent) * 1000",
            "profile.base * tier.multiplier * tier.multiplier * 1e5", "tier.rank * 1000", "0"])}
    if rng.random() < 0.75:
        signals = {}
        for _ in range(rng.randint(0, 4)):
            item = signal(rng, tier_ids)
            signals[item["id"]] = item
        policy["detection"] = {"signals": list(signals.values())}
        if rng.random() < 0.5:
            policy["detection"]["confidence_scale"] = rng.choice([1, 2, 0.5, 1000, 1e-9])
    if rng.random() < 0.5:
        policy["alerts"] = dict(zip(["info", "warning", "critical"],
                                    rng.choice([[0.75, 0.9, 1], [1e-9, 1e-9, 1e-9], [10, 10, 10], [0.5, 5, 10]])))
    if rng.random() < 0.5:
        policy["enforcement"] = rng.choice(["soft", "hard"])
    if rng.random() < 0.25:
        policy["recommendations"] = {"min_samples": 1, "rules": [{
            "action": rng.choice(["upgrade", "downgrade", "maintain", "insufficient-data"]),
            "when": rng.choice(["stats.exceedance_rate > 0.1", "true",
                                "params.upgrade_exceedance_rate < stats.exceedance_rate"])}]}
    return policy


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place in ``value`` a mutation may hit: each key's value and each list item."""
    found = [path] if path else []
    if isinstance(value, Pairs):  # already written twice: left as it is
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, path + (index,))
    return found


ODD_EXPRESSIONS = FORMULAS[3:] + WHENS[15:] + ["", " ", "(", "a" * 5000, "x.y.z.w", "1 +"]
ODD_VALUES = ODD_NUMBERS + ODD_NAMES + ODD_EXPRESSIONS + LONG_TEXT + [[], {}, [[[[]]]], {"": 1}]


def hostile_policy(rng: random.Random) -> dict:
    """A valid policy with zero to three hostile values put where valid ones were (or a renamed key, or a
    key written twice)."""
    policy = valid_policy(rng)
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3])):
        path = rng.choice(_paths(policy))
        parent = policy
        for step in path[:-1]:
            parent = parent[step]
        how = rng.choice(["value", "value", "value", "rename", "duplicate"])
        if how == "rename" and isinstance(parent, dict):
            new = rng.choice(ODD_NAMES + [k.upper() for k in parent if isinstance(k, str)])
            parent[new] = parent.pop(path[-1])
        elif how == "duplicate" and isinstance(parent, dict) and path[:-1]:
            grand = policy
            for step in path[:-2]:
                grand = grand[step]
            grand[path[-2]] = Pairs(list(parent.items()) + [(path[-1], rng.choice(ODD_VALUES))])
        else:
            parent[path[-1]] = _odd_like(parent[path[-1]], rng)
    return policy


ODD_NUMBERS_ONLY = [v for v in ODD_NUMBERS if type(v) in (int, float) or isinstance(v, Raw)]
ODD_STRINGS = ODD_NAMES + ODD_EXPRESSIONS + LONG_TEXT


def _odd_like(value: Any, rng: random.Random) -> Any:
    """Mostly a hostile value of the same kind (a number for a number, a string for a string), which is what
    gets past the schema to the later steps; sometimes any hostile value."""
    if rng.random() < 0.8:
        if type(value) in (int, float):
            return rng.choice(ODD_NUMBERS_ONLY)
        if isinstance(value, str):
            return rng.choice(ODD_STRINGS)
    return rng.choice(ODD_VALUES)


# A seed per example (cheap to generate; hypothesis shows the policy it built when a case fails).
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.fixture(scope="module")
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="ctxbudget-fuzz-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _strict_json(value: Any) -> None:
    """What --json would print: strict JSON (engine.jsonio.dumps), parsed back by a strict parser."""
    from engine.jsonio import dumps

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON output")

    json.loads(dumps(value), parse_constant=refuse)


def _clear(exc: BaseException) -> None:
    assert str(exc).strip(), f"{type(exc).__name__} without a message"


def run_pipeline(policy_data: dict, folder: Path, rng: random.Random) -> None:
    from engine.analytics import analyze
    from engine.policy import check_policy
    from engine.recommend import recommend

    path = folder / "policy.yaml"
    path.write_text(policy_yaml(policy_data), encoding="utf-8")
    log = folder / "usage.jsonl"
    if log.exists():
        log.unlink()

    # validate
    try:
        problems, policy = check_policy(path)
    except (UsageError, PolicyError) as exc:
        _clear(exc)
        return
    assert (policy is None) == any(p.severity == "error" for p in problems)
    for problem in problems:
        assert problem.line >= 1 and problem.col >= 1 and problem.rule and problem.message.strip()
        assert "Traceback" not in problem.message
    if rng.random() < 0.05:
        _cli("validate", str(path), "--format", "json", expect=(0, 1))
    if policy is None:
        return

    # budget
    names = list(policy.agents) or ["nosuch-agent"]  # a policy may have no agents
    agents = rng.sample(names, min(len(names), 2)) + ["nosuch-agent", rng.choice(names).rsplit("/", 1)[-1]]
    tiers = [None, "nosuch-tier"] + rng.sample([t.id for t in policy.tiers], min(len(policy.tiers), 2))
    allocated = []
    for agent in agents:
        for tier in tiers:
            try:
                allocation = policy.allocate(agent, tier)
            except UNKNOWN_NAME as exc:
                _clear(exc)
                continue
            assert type(allocation.budget) is int and allocation.budget >= 0
            assert sum(allocation.scopes.values()) == allocation.budget or allocation.budget == 0
            _strict_json(allocation.to_dict())
            allocated.append(allocation)

    # detect
    tier_ids = {t.id for t in policy.tiers}
    for text, context in [(rng.choice(TEXTS), rng.choice(CONTEXTS)) for _ in range(3)]:
        detection = policy.detect(text, context)
        assert detection.tier in tier_ids
        _strict_json(detection.to_dict())

    # monitor
    for allocation in rng.sample(allocated, min(len(allocated), 2)):
        try:
            with monitor(policy, allocation.agent, tier=allocation.tier, log=log) as run:
                for scope in list(policy.scopes)[:2] + ["nosuch-scope"]:
                    for tokens in rng.sample(LOADS, 4):
                        try:
                            run.try_load(scope, tokens)
                        except (ValueError, *UNKNOWN_NAME) as exc:  # a bad count, an unknown scope
                            _clear(exc)
                _strict_json(run.status().to_dict())
            assert run.log_error is None, run.log_error
        except UNKNOWN_NAME as exc:
            _clear(exc)
    try:
        with monitor(policy, rng.choice(agents), task=rng.choice(TEXTS), log=log) as run:
            run.try_load(policy.scopes[0], 1000)
    except UNKNOWN_NAME as exc:
        _clear(exc)

    # analyze (and recommend)
    if not log.exists():
        return
    analysis = analyze(policy, log)
    assert analysis.skipped_lines == 0, analysis.skipped  # every line the monitor wrote is readable
    _strict_json(analysis.to_dict())
    recommendations = recommend(policy, analysis)  # validate type-checks the rules: none fails here
    _strict_json([r.to_dict() for r in recommendations])
    if rng.random() < 0.05:
        out = _cli("analyze", "--log", str(log), "--policy", str(path), "--json", expect=(0, 1))
        _strict_json(json.loads(out))


def _cli(*argv: str, expect: tuple[int, ...]) -> str:
    """``ctxbudget ARGV`` in-process: the exit code is one of ``expect`` (or 2 with a one-line error), and
    nothing on stderr looks like Python."""
    import contextlib
    import io

    from engine.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    assert code in expect or (code == 2 and err.getvalue().startswith("ctxbudget")), (code, err.getvalue())
    assert "Traceback" not in err.getvalue()
    return out.getvalue()


@pytest.mark.slow  # 2,000 policies, ~900 of them analysed by DuckDB: ~90 s (CI runs it; `-m "not slow"` skips)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(seeds)
def test_whole_policies_end_in_a_result_or_a_clear_error(workdir, seed: int) -> None:
    rng = random.Random(seed)
    policy_data = hostile_policy(rng)
    note(policy_yaml(policy_data))
    run_pipeline(policy_data, workdir, rng)


def test_many_generated_policies_pass_validation(workdir) -> None:
    """The fuzz is only worth its examples if many policies pass validation and run the later steps."""
    from engine.policy import check_policy

    valid = 0
    for seed in range(60):
        data = hostile_policy(random.Random(seed))
        (workdir / "policy.yaml").write_text(policy_yaml(data), encoding="utf-8")
        valid += check_policy(workdir / "policy.yaml")[1] is not None
    assert valid >= 20, f"only {valid} of 60 generated policies are valid"


def test_the_yaml_writer_writes_what_the_loader_reads(workdir) -> None:
    from engine.policy.extends import load_chain

    data = {"version": 1, "name": "é\"\\\u202e", "n": [1.5, -0.0, 0, 1e308], "d": {"a": None, "b": True}}
    (workdir / "policy.yaml").write_text(policy_yaml(data), encoding="utf-8")
    assert load_chain(workdir / "policy.yaml").doc.data == data
    assert policy_yaml({"n": [NAN, INF, -INF, Raw("0x1f")]}) == '"n": [.nan, .inf, -.inf, 0x1f]\n'
