"""Shared fixtures: paths to the repository's data and the shared folder beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"


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


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Tests never touch the user's compiled-policy cache."""
    import os

    os.environ["CTXBUDGET_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
