"""`ctxbudget validate` answers from the compiled-policy cache when the policy is unchanged and was valid: the
cache records, as data, the warnings of that check, under the same label, from the same folder, by the same
checking code (see engine/policy/cache.py). Anything else is a fresh, full check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import engine.policy
from engine.cli import main
from engine.policy import cache, check_policy, load_policy
from engine.policy.cache import entry_path

WARNED = """extends: default
name: warned
detection:
  signals:
    - id: idle-signal
      words: [zzyzx]
"""


pytestmark = pytest.mark.usefixtures("fresh_trust")  # tests/conftest.py


@pytest.fixture
def warned(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "warned.yaml"
    path.write_text(WARNED)
    return path


class Checks:
    """Counts full checks."""

    def __init__(self, monkeypatch):
        self.count = 0
        real = engine.policy._check

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(engine.policy, "_check", counted)


def _validate(capsys, *args: str) -> tuple[int, str]:
    code = main(["validate", *args])
    return code, capsys.readouterr().out


def test_a_warm_validate_prints_the_same_warnings_without_checking(warned: Path, cache_dir: Path, capsys,
                                                                   monkeypatch) -> None:
    checks = Checks(monkeypatch)
    first = _validate(capsys, "warned.yaml")
    assert first[0] == 0 and "warning:" in first[1] and "[signal-no-effect]" in first[1] and "valid (" in first[1]
    assert checks.count == 1
    for form in ((), ("--json",), ("--format", "github")):
        again = _validate(capsys, "warned.yaml", *form)
        monkeypatch.setenv("CTXBUDGET_NO_CACHE", "1")
        fresh = _validate(capsys, "warned.yaml", *form)
        monkeypatch.delenv("CTXBUDGET_NO_CACHE")
        assert again == fresh, form
    assert checks.count == 1 + 3  # the three uncached runs only
    assert json.loads(_validate(capsys, "warned.yaml", "--json")[1])["policies"][0]["problems"][0]["severity"] \
        == "warning"


def test_load_policy_records_the_check_for_validate(warned: Path, cache_dir: Path, capsys, monkeypatch) -> None:
    load_policy("warned.yaml")
    checks = Checks(monkeypatch)
    code, out = _validate(capsys, "warned.yaml")
    assert code == 0 and "[signal-no-effect]" in out and checks.count == 0


def test_another_label_or_folder_is_a_fresh_check(warned: Path, cache_dir: Path, capsys, monkeypatch,
                                                  tmp_path: Path) -> None:
    """Problems name the policy as the user wrote it and parents relative to the working folder."""
    _validate(capsys, "warned.yaml")
    checks = Checks(monkeypatch)
    code, out = _validate(capsys, str(warned))
    assert checks.count == 1 and out.startswith(str(warned) + ":")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, out = _validate(capsys, "../warned.yaml")
    assert checks.count == 2 and out.startswith("../warned.yaml:")
    code, out = _validate(capsys, "../warned.yaml")
    assert checks.count == 2  # and now that one is recorded


def test_changed_checking_code_is_a_fresh_check(warned: Path, cache_dir: Path, capsys, monkeypatch) -> None:
    _validate(capsys, "warned.yaml")
    checks = Checks(monkeypatch)
    monkeypatch.setattr(cache, "checks_fingerprint", lambda: "another version of the rules")
    _validate(capsys, "warned.yaml")
    assert checks.count == 1


def test_the_fingerprint_follows_the_code(tmp_path: Path) -> None:
    import engine.policy.semantics as semantics

    before = cache.checks_fingerprint()
    assert before == cache.checks_fingerprint()
    source = Path(semantics.__file__)
    stat = source.stat()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert cache.checks_fingerprint() != before
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.checks_fingerprint() == before


def test_an_invalid_policy_is_never_answered_from_the_cache(tmp_path: Path, cache_dir: Path, capsys,
                                                            monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("extends: default\nprofiles:\n  specialist-narrow: {base: -5}\n")
    checks = Checks(monkeypatch)
    for _ in range(2):
        code, out = _validate(capsys, "bad.yaml")
        assert code == 1 and "error:" in out
    assert checks.count == 2
    assert not cache_dir.exists() or not list(cache_dir.glob("*.entry"))


def test_an_edited_policy_is_checked_again(warned: Path, cache_dir: Path, capsys, monkeypatch) -> None:
    _validate(capsys, "warned.yaml")
    warned.write_text(WARNED.replace("words: [zzyzx]", "words: [zzyzx]\n      weights: {complex: 1}"))
    code, out = _validate(capsys, "warned.yaml")
    assert code == 0 and "warning" not in out


@pytest.mark.parametrize("checked", [
    {"label": "warned.yaml", "cwd": "x", "checks": "y", "problems": [{"path": "p"}]},
    {"label": "warned.yaml", "cwd": "x", "checks": "y", "problems": [
        {"path": "p", "line": 1, "col": 1, "severity": "error", "rule": "r", "message": "m", "json_path": "$"}]},
    {"label": 1, "cwd": "x", "checks": "y", "problems": []},
    {"label": "warned.yaml", "cwd": "x", "checks": "y"},
    [],
])
def test_a_recorded_check_of_the_wrong_shape_is_a_miss(warned: Path, cache_dir: Path, checked) -> None:
    """A recorded check can only hold a valid policy's warnings: an error, or a malformed record, is a miss."""
    check_policy("warned.yaml", cache=True)
    entry = Path(entry_path(warned))
    found = json.loads(cache.unframe(entry.read_bytes())[0])
    assert cache._usable(found, warned)
    found["checked"] = checked
    assert not cache._usable(found, warned)
