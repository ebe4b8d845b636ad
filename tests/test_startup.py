"""Start-up is part of the product: a command imports only what it uses (see `python -X importtime`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys, io, contextlib
from engine.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
heavy = ("ruamel", "jsonschema", "lark", "rich", "referencing")
print(code, sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in heavy}))
"""


def _imports(args: list[str], cache: Path) -> str:
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("args", [
    ["budget", "dbt-expert", "complex", "--json"],
    ["budget", "dbt-expert", "complex"],
    ["agents", "--json"],
    ["profiles"],
    ["evaluate", "Analyze slow queries", "--agent", "dbt-expert", "--json"],
])
def test_warm_commands_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    _imports(args, tmp_path)  # fills the cache
    assert _imports(args, tmp_path) == "0 []"


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import sys; from engine.cli import build_parser; "
                           "build_parser().format_help(); print(json.dumps(sorted(sys.modules)))".replace(
                               "print(json", "import json; print(json")], capture_output=True, text=True, timeout=60)
    modules = json.loads(done.stdout)
    assert not [m for m in modules if m.split(".")[0] in ("ruamel", "jsonschema", "lark", "rich")]
