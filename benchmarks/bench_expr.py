"""Benchmarks of the expression language (pytest-benchmark).

    pytest benchmarks/bench_expr.py --benchmark-enable            # all, with pytest-benchmark's tables
    pytest benchmarks/bench_expr.py --benchmark-enable -k ratio -s   # just the ratio table

* evaluation of the three expressions from the issue against Python's ``eval`` of the equivalent code object,
  same bindings, same run (results are checked equal before timing); groups ``eval:<name>``;
* ``test_ratio_to_python_eval`` times both sides interleaved with ``timeit`` and asserts the target (within
  3x of ``eval``), printing the ratios;
* compile time per expression (group ``compile``);
* the cold start the language adds to a CLI call: ``python -c 'from engine.expr import compile;
  compile("1+1")'`` against ``python -c pass`` (group ``cold-start``; medians), with bytecode caching on as in
  an installed package.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import timeit

import pytest

from engine.expr import compile

CASES = {
    "threshold": (
        "stats.exceedance_rate > 0.2 && stats.samples >= 10",
        'stats["exceedance_rate"] > 0.2 and stats["samples"] >= 10',
        {"stats": {"exceedance_rate": 0.3, "samples": 12}},
    ),
    "budget": (
        "min(profile.base * tier.multiplier, profile.max)",
        'min(profile["base"] * tier["multiplier"], profile["max"])',
        {"profile": {"base": 8000, "max": 15000}, "tier": {"multiplier": 1.5}},
    ),
    "systems": (
        "size(hits.systems) >= 3",
        'len(hits["systems"]) >= 3',
        {"hits": {"systems": ["dbt", "snowflake", "airflow"]}},
    ),
}
TARGET_RATIO = 3.0


def _pair(name):
    cel, python, bindings = CASES[name]
    program = compile(cel)
    code = __builtins__["compile"](python, f"<{name}>", "eval") if isinstance(__builtins__, dict) else \
        __builtins__.compile(python, f"<{name}>", "eval")
    namespace: dict = {}
    expected = eval(code, namespace, bindings)
    assert program.evaluate(bindings) == expected, "check results before timing"
    return program, code, namespace, bindings


@pytest.mark.parametrize("name", CASES)
def test_eval_cel(benchmark, name):
    program, _code, _ns, bindings = _pair(name)
    benchmark.group = f"eval:{name}"
    benchmark.name = "engine.expr"
    benchmark(program.evaluate, bindings)


@pytest.mark.parametrize("name", CASES)
def test_eval_python(benchmark, name):
    _program, code, namespace, bindings = _pair(name)
    benchmark.group = f"eval:{name}"
    benchmark.name = "python eval"
    benchmark(eval, code, namespace, bindings)


def _disabled(config) -> bool:
    return config.getoption("benchmark_disable", False) and not config.getoption("benchmark_enable", False)


def _best(stmt, env, number=200_000, repeat=7):
    return min(timeit.repeat(stmt, globals=env, number=number, repeat=repeat)) / number


def test_ratio_to_python_eval(request):
    if _disabled(request.config):
        pytest.skip("timing only with --benchmark-enable")
    rows = []
    for name in CASES:
        program, code, namespace, bindings = _pair(name)
        env = {"evaluate": program.evaluate, "code": code, "ns": namespace, "b": bindings}
        cel = _best("evaluate(b)", env)
        py = _best("eval(code, ns, b)", env)
        rows.append((name, CASES[name][0], cel, py, cel / py))
    print()
    print(f"{'expression':<52} {'engine.expr':>12} {'python eval':>12} {'ratio':>6}")
    for _name, text, cel, py, ratio in rows:
        print(f"{text:<52} {cel * 1e9:>9.0f} ns {py * 1e9:>9.0f} ns {ratio:>6.2f}")
    for name, _text, _cel, _py, ratio in rows:
        assert ratio < TARGET_RATIO, f"{name}: {ratio:.2f}x Python's eval"


@pytest.mark.parametrize("name", CASES)
def test_compile_time(benchmark, name):
    benchmark.group = "compile"
    benchmark.name = name
    program = benchmark(compile, CASES[name][0])
    assert program.source == CASES[name][0]


# --- cold start ---------------------------------------------------------------------------------------------

_COLD = {
    "python -c pass": "pass",
    "import engine.expr": "import engine.expr",
    "compile('1+1')": "from engine.expr import compile; compile('1+1')",
    "compile + evaluate (3 expressions)": (
        "from engine.expr import compile\n"
        + "\n".join(f"compile({c[0]!r}).evaluate({c[2]!r})" for c in CASES.values())
    ),
}


@pytest.fixture(scope="module")
def cold_env():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode compiled
        env["PYTHONPYCACHEPREFIX"] = cache
        for code in _COLD.values():  # write the bytecode once
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
        yield env


def _run(code, env):
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


@pytest.mark.parametrize("label", _COLD)
def test_cold_start(benchmark, cold_env, label):
    benchmark.group = "cold-start"
    benchmark.name = label
    benchmark.pedantic(_run, args=(_COLD[label], cold_env), rounds=15, iterations=1, warmup_rounds=1)


_INSIDE = """
import time
t0 = time.perf_counter()
import engine.expr
t1 = time.perf_counter()
engine.expr.compile("stats.exceedance_rate > 0.2 && stats.samples >= 10")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def test_cold_start_summary(request, cold_env):
    """Medians of interleaved runs (so that drift in the machine's speed hits every variant alike), and the
    same measured inside a fresh process (less noisy: no interpreter start-up in the numbers)."""
    if _disabled(request.config):
        pytest.skip("timing only with --benchmark-enable")
    times: dict[str, list[float]] = {label: [] for label in _COLD}
    inside = []
    for _ in range(25):
        for label, code in _COLD.items():
            start = timeit.default_timer()
            _run(code, cold_env)
            times[label].append(timeit.default_timer() - start)
        out = subprocess.run([sys.executable, "-c", _INSIDE], env=cold_env, check=True, capture_output=True, text=True)
        inside.append([float(x) for x in out.stdout.split()])
    medians = {label: statistics.median(values) for label, values in times.items()}
    base = medians["python -c pass"]
    print()
    for label, median in medians.items():
        extra = "" if label == "python -c pass" else f"  (+{(median - base) * 1e3:.1f} ms)"
        print(f"{label:<38} median {median * 1e3:6.1f} ms{extra}")
    import_ms = statistics.median(i for i, _ in inside) * 1e3
    compile_ms = statistics.median(c for _, c in inside) * 1e3
    print(f"inside a fresh process: import engine.expr {import_ms:.1f} ms, first compile {compile_ms:.1f} ms")
    # The parser is lark's LALR(1) analysis stored as a plain module (engine/expr/_tables.py): loading it costs
    # about a millisecond, lark is not imported (lark's standalone runtime took ~25 ms more).
    assert compile_ms < 30, "the grammar must not cost a CLI call tens of ms"
