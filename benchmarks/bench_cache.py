"""What keeping code out of the compiled-policy cache costs at start-up (see docs/security.md).

    pytest benchmarks/bench_cache.py --benchmark-enable --benchmark-columns=median,iqr,rounds
    pytest benchmarks/bench_cache.py -k interleaved -s      # medians of interleaved runs, and the difference

The cache holds data only, so a warm start compiles the default policy's expressions (the budget formula, the
recommendation rules and the detector's ``when:`` conditions) from source. Each round is a fresh process, as
a CLI call or a hook is, with bytecode caching on as in an installed package:

* ``from source`` — what a warm start does now;
* ``from cached code`` — what the earlier cache did: rebuild each program from its generated Python with the
  code objects already unmarshalled (the work a code cache saves; the baseline of the same run);
* ``python -c pass`` — the interpreter alone.

Both sides are checked to produce programs that give the same results before timing.
"""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys

import pytest

from engine.policy import load_policy

ENV = {**os.environ}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode is written and reused
ENV.pop("CTXBUDGET_POLICY", None)

SCRIPT = """
import json, marshal, sys
mode, path = sys.argv[1], sys.argv[2]
with open(path) as handle:
    saved = json.load(handle)
if mode == "source":
    from engine.expr import compile
    programs = [compile(source) for source, _ in saved]
else:
    with open(path + ".code", "rb") as handle:
        code = marshal.load(handle)
    from engine.expr import Program
    from engine.expr.program import code_table
    code_table().update(code)
    programs = [Program.from_python(source, python) for source, python in saved]
print(json.dumps([p.python_source for p in programs]))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> str:
    """The default policy's expressions with their generated Python, and the code objects of that Python."""
    from engine.expr import compile
    from engine.expr.program import code_table

    policy = load_policy("default", cache=False)
    sources = ([policy.budget_formula.source] + [r.when for r in policy.recommendations.rules]
               + list(policy.artifacts["detection"]["conditions"]))
    programs = [(source, compile(source).python_source) for source in sources]
    path = tmp_path_factory.mktemp("bench-cache") / "programs.json"
    path.write_text(json.dumps(programs))
    wanted = {python for _, python in programs}
    (path.parent / "programs.json.code").write_bytes(
        marshal.dumps({k: v for k, v in code_table().items() if k in wanted}))
    return str(path)


def _run(command: list[str]) -> None:
    subprocess.run(command, env=ENV, stdout=subprocess.DEVNULL, check=True)


@pytest.mark.parametrize("name", ["python -c pass", "from source", "from cached code"])
def test_compile_the_default_policys_expressions(benchmark, saved: str, name: str) -> None:
    benchmark.group = "the default policy's expressions, fresh process"
    if name == "python -c pass":
        command = [sys.executable, "-c", "pass"]
    else:
        command = [sys.executable, "-c", SCRIPT, "source" if name == "from source" else "code", saved]
        out = subprocess.run(command, env=ENV, capture_output=True, text=True, check=True).stdout
        expected = [python for _, python in json.loads(open(saved).read())]
        assert json.loads(out) == expected and expected  # the same programs either way (however many)
    benchmark.pedantic(_run, args=(command,), rounds=30, iterations=1, warmup_rounds=1)


def test_interleaved_medians(saved: str) -> None:
    """The three commands interleaved round by round (fair on a busy machine); prints medians and the cost of
    compiling from source over restoring cached code. No assertion on time: this documents the trade."""
    import statistics
    import time

    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "from source": [sys.executable, "-c", SCRIPT, "source", saved],
                "from cached code": [sys.executable, "-c", SCRIPT, "code", saved]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(int(os.environ.get("BENCH_ROUNDS", "40"))):
        for name, command in commands.items():
            started = time.perf_counter()
            _run(command)
            times[name].append((time.perf_counter() - started) * 1000)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print("\n" + "  ".join(f"{name}: {ms:.1f} ms" for name, ms in medians.items()),
          f"\nfrom source costs {medians['from source'] - medians['from cached code']:+.1f} ms a start "
          f"({medians['from source'] / medians['from cached code']:.2f}x)")
