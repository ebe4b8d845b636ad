"""Shared fixtures: paths to the repository's data and the shared folder beside the checkout.

Tests never touch the real home folder: before any test module is imported (collection runs module-level
code), ``$HOME``, the XDG folders and ``$CTXBUDGET_CACHE_DIR`` point into one scratch folder for the session,
and the variables that would pick a policy or a usage log from the environment are cleared.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"


def _sandbox_home() -> Path:
    """A scratch home for the whole session (removed at exit)."""
    scratch = Path(tempfile.mkdtemp(prefix="ctxbudget-tests-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    for var, sub in (("HOME", "home"), ("XDG_CACHE_HOME", "home/.cache"), ("XDG_STATE_HOME", "home/.local/state"),
                     ("XDG_CONFIG_HOME", "home/.config"), ("XDG_DATA_HOME", "home/.local/share"),
                     ("CTXBUDGET_CACHE_DIR", "home/.cache/ctxbudget")):
        os.environ[var] = str(scratch / sub)
    (scratch / "home").mkdir()
    for var in ("CTXBUDGET_POLICY", "CTXBUDGET_LOG", "CTXBUDGET_NO_CACHE"):
        os.environ.pop(var, None)
    return scratch


SANDBOX = _sandbox_home()


@pytest.fixture
def default_policy():
    from engine import load_policy

    return load_policy("default")


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run ``ctxbudget ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from engine.cli import main

    monkeypatch.delenv("CTXBUDGET_POLICY", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return code, out, err

    return run


# -- the compiled-policy cache (tests/test_cache*.py, tests/test_validate_cache.py) --------------------------------

_CLOCK_NS = time.time_ns() + 3600 * 10 ** 9


class _Clock:
    """``time`` as engine.policy.cache reads it, with ``time_ns`` fixed an hour ahead of the tests' start."""

    time = staticmethod(time.time)

    def time_ns(self) -> int:
        return _CLOCK_NS


@pytest.fixture
def fresh_trust(monkeypatch):
    """A cache this process has not yet distrusted, and one clock for what entries record of when their files
    were hashed (engine.policy.cache.settled): an entry a test rewrites is then byte for byte the entry written
    before, and every file is settled. Cache test modules use it for every test (``pytestmark``)."""
    from engine.policy import cache

    monkeypatch.setattr(cache, "_distrust", [])
    monkeypatch.setattr(cache, "time", _Clock())


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch) -> Path:
    """A cache folder of the test's own ($CTXBUDGET_CACHE_DIR)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(folder))
    return folder
