"""The test suite tests this working tree, the way the README says to run it, and leaves the home folder alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import engine
from conftest import ROOT, SANDBOX

TEST_COMMAND = "pip install -e '.[test]' && pytest"


def test_engine_is_imported_from_this_checkout() -> None:
    assert Path(engine.__file__).resolve() == ROOT / "engine" / "__init__.py"


def test_subprocesses_import_engine_from_this_checkout_too(tmp_path: Path) -> None:
    """Many tests run `python -m engine` or `python -c ...` in another folder: with an installed copy instead
    of an editable install, those would test the copy."""
    done = subprocess.run([sys.executable, "-c", "import engine; print(engine.__file__)"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=True)
    assert Path(done.stdout.strip()).resolve() == ROOT / "engine" / "__init__.py", (
        f"an installed copy of engine shadows the checkout: run `{TEST_COMMAND}`")


def test_the_readme_and_ci_run_the_same_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n([^\n]*pytest[^\n]*)\n```", readme)
    assert commands == [TEST_COMMAND]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == TEST_COMMAND
    assert any(line.startswith("python3 -m venv") for line in ci)  # in its own virtual environment


def test_the_session_runs_in_a_scratch_home() -> None:
    for var in ("HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
                "CTXBUDGET_CACHE_DIR"):
        assert Path(os.environ[var]).is_relative_to(SANDBOX), var
    assert os.path.expanduser("~") == str(SANDBOX / "home")
    for var in ("CTXBUDGET_POLICY", "CTXBUDGET_LOG"):
        assert var not in os.environ


def test_collecting_the_tests_writes_nothing_to_the_home_folder(tmp_path: Path) -> None:
    """Collection runs module-level code (test_policy_detection.py loads the default policy): the scratch home
    must already be in place when it does."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CTXBUDGET_"))}
    env["HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "tests/test_policy_detection.py", "tests/test_cache.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_the_seed_and_guide_examples" in done.stdout
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []
