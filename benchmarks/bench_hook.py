"""The whole `ctxbudget hook` process, as Claude Code runs it on every prompt and subagent, against bare
`python -c pass` in the same run (warm: the policy cache and the memory index already built).

    pytest benchmarks/bench_hook.py --benchmark-enable --benchmark-columns=median,iqr,rounds

Target (issue 14): a warm hook process ≤ 150 ms on the sample store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EVENTS = Path(__file__).resolve().parents[1] / "tests" / "data" / "claude-code" / "events"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict]:
    from engine.resources import sample_memory_dir

    root = tmp_path_factory.mktemp("project")
    shutil.copytree(sample_memory_dir(), root / ".claude" / "memory")
    env = {**os.environ, "NO_COLOR": "1", "CTXBUDGET_CACHE_DIR": str(root / "cache"),
           "CTXBUDGET_LOG": str(root / "usage.jsonl"), "CTXBUDGET_HOOK_LOG": str(root / "hook.log")}
    env.pop("CTXBUDGET_POLICY", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return root, env


def _payload(name: str, root: Path) -> bytes:
    return (EVENTS / f"{name}.json").read_text().replace("__CWD__", str(root)).encode()


@pytest.mark.parametrize("name", ["python -c pass (baseline)", "user-prompt-submit", "subagent-start",
                                  "pre-tool-use-task"])
def test_hook_process(benchmark, project, name: str) -> None:
    root, env = project
    if name.startswith("python"):
        command, data = [sys.executable, "-c", "pass"], b""
    else:
        command, data = [sys.executable, "-m", "engine", "hook"], _payload(name, root)

    def run() -> bytes:
        return subprocess.run(command, input=data, env=env, cwd=root, capture_output=True, check=True).stdout

    out = run()  # warm the caches; and check it did its job
    if name in ("user-prompt-submit", "subagent-start"):
        assert json.loads(out)["hookSpecificOutput"]["additionalContext"]
    assert not (root / "hook.log").exists()
    benchmark.pedantic(run, rounds=20, iterations=1)
