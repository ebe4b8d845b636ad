"""The compiled-policy cache: a hit skips YAML and the schema; stale, corrupt or unwritable caches are safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.policy import load_policy
from engine.policy.cache import entry_path

PROBE = """
import sys, json
from engine.policy import load_policy
policy = load_policy(sys.argv[1])
print(json.dumps({"budget": policy.allocate("dbt-expert", "complex").budget,
                  "heavy": sorted(m for m in ("ruamel.yaml", "jsonschema", "lark", "rich") if m in sys.modules)}))
"""


def _probe(policy: Path, cache: Path) -> dict:
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(policy)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def team(tmp_path: Path) -> Path:
    (tmp_path / "base.yaml").write_text("extends: default\nprofiles:\n  specialist-narrow: {base: 30000}\n")
    path = tmp_path / "team.yaml"
    path.write_text("extends: base.yaml\nname: team\n")
    return path


def test_second_load_comes_from_the_cache_without_heavy_imports(team: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert _probe(team, cache) == {"budget": 45000, "heavy": ["jsonschema", "ruamel.yaml"]}
    assert _probe(team, cache) == {"budget": 45000, "heavy": []}


def test_a_changed_parent_makes_the_entry_stale(team: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _probe(team, cache)
    (tmp_path / "base.yaml").write_text("extends: default\nprofiles:\n  specialist-narrow: {base: 10000}\n")
    assert _probe(team, cache)["budget"] == 15000


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(team: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    load_policy(team)
    entry = Path(entry_path(team, team.read_bytes()))
    for garbage in ("{not json", json.dumps({"format": 1, "data": [1]}), "\x00\x01"):
        entry.write_text(garbage)
        assert load_policy(team).allocate("dbt-expert").budget == 30000
        assert json.loads(entry.read_text())["data"]["name"] == "team"


def test_an_unwritable_cache_directory_is_no_error(team: Path, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(blocker / "cache"))
    assert load_policy(team).name == "team"


def test_caching_can_be_turned_off(team: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CTXBUDGET_NO_CACHE", "1")
    load_policy(team)
    assert not (tmp_path / "cache").exists()


def test_an_invalid_policy_is_never_cached(tmp_path: Path, monkeypatch) -> None:
    from engine.diagnostics import PolicyError

    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: default\nenforcement: strict\n")
    for _ in range(2):
        with pytest.raises(PolicyError):
            load_policy(bad)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
