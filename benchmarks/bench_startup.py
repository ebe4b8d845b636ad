"""Cold start of the CLI, against bare `python -c pass` measured in the same run.

    pytest benchmarks/bench_startup.py --benchmark-enable --benchmark-columns=median,iqr,rounds
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "NO_COLOR": "1"}
ENV.pop("CTXBUDGET_POLICY", None)
# As installed: bytecode is written and reused (some sandboxes set PYTHONDONTWRITEBYTECODE, which makes every
# start recompile every module from source).
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
CLI = [sys.executable, "-m", "engine"]


def _run(command: list[str]) -> None:
    subprocess.run(command, env=ENV, stdout=subprocess.DEVNULL, check=True)


@pytest.mark.parametrize("name,command", [
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    ("import yaml+schema+lark+rich", [sys.executable, "-c", "import ruamel.yaml, jsonschema, lark, rich.console"]),
    ("ctxbudget --help", CLI + ["--help"]),
    ("ctxbudget budget --json (warm cache)", CLI + ["budget", "dbt-expert", "complex", "--json"]),
    ("ctxbudget evaluate --json (warm cache)", CLI + ["evaluate", "Analyze slow queries", "--agent", "dbt-expert",
                                                      "--json"]),
    ("ctxbudget budget (no cache)", CLI + ["budget", "dbt-expert", "complex", "--json"]),
])
def test_cold_start(benchmark, name: str, command: list[str], tmp_path) -> None:
    if "no cache" in name:
        ENV["CTXBUDGET_NO_CACHE"] = "1"
    else:
        ENV.pop("CTXBUDGET_NO_CACHE", None)
        ENV["CTXBUDGET_CACHE_DIR"] = str(tmp_path)
    _run(command)  # correctness (exit 0) and a warm cache before timing
    benchmark.pedantic(_run, args=(command,), rounds=30, iterations=1)
