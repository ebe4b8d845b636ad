"""Packaging: every package is listed, and the data files reach an installed copy."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import ROOT


def test_every_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "engine").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert {"engine.policies", "engine.schemas"} <= listed


def test_every_folder_of_data_files_that_python_could_import_is_listed() -> None:
    """setuptools warns ("Package would be ignored") about a folder of shipped data files whose name Python
    could import when it is not in `packages`, and says a later version may leave its files out of the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    missing = set()
    for package, source in config["package-dir"].items():
        for folder in [ROOT / source, *(p for p in (ROOT / source).rglob("*") if p.is_dir())]:
            parts = folder.relative_to(ROOT / source).parts
            name = ".".join((package, *parts))
            data = [f for f in folder.iterdir() if f.is_file() and f.suffix not in (".py", ".pyc")]
            if data and all(part.isidentifier() and part != "__pycache__" for part in parts):
                missing |= {name} - listed
    assert missing == set(), "add these to [tool.setuptools] packages"


def test_bundled_files_are_found() -> None:
    from engine.resources import bundled_policy, schema_path

    assert os.path.isfile(bundled_policy("default"))
    assert os.path.isfile(schema_path())
    assert bundled_policy("../etc/passwd") is None


def test_console_script_validates_from_an_unrelated_directory(tmp_path: Path) -> None:
    """What a user does after `pip install .`: the console script, run far from the repository."""
    script = Path(sys.executable).parent / "ctxbudget"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "engine"]
    env = {k: v for k, v in os.environ.items() if k != "CTXBUDGET_POLICY"}
    done = subprocess.run([*command, "validate"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "valid (25 agents, 4 profiles, 4 tiers)" in done.stdout


def test_default_policy_declares_its_schema() -> None:
    first = (ROOT / "policies" / "default.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/policy.schema.json"
