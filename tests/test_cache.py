"""The compiled-policy cache: a hit skips YAML and the schema; it holds data only, is trusted only when it is the
user's own, is keyed by the extends chain as it resolves now, is bounded, and anything wrong is a miss."""

from __future__ import annotations

import base64
import json
import time
import marshal
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from engine.policy import cache, load_policy, sections
from engine.policy.cache import entry_path

PROBE = """
import sys, json
from engine.policy import load_policy
policy = load_policy(sys.argv[1])
print(json.dumps({"budget": policy.allocate("dbt-expert", "complex").budget,
                  "heavy": sorted(m for m in ("ruamel.yaml", "jsonschema", "lark", "rich") if m in sys.modules),
                  "jobs": sorted(m for m in sys.modules if m == "re2" or m.startswith(
                      ("engine.detect", "engine.pack", "engine.recommend", "engine.claude_code", "engine.monitor")))}))
"""


def _probe(policy: Path, cache_dir: Path) -> dict:
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(cache_dir)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(policy)], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


pytestmark = pytest.mark.usefixtures("fresh_trust")  # tests/conftest.py


@pytest.fixture
def team(tmp_path: Path) -> Path:
    (tmp_path / "base.yaml").write_text("extends: default\nprofiles:\n  specialist-narrow: {base: 30000}\n")
    path = tmp_path / "team.yaml"
    path.write_text("extends: base.yaml\nname: team\n")
    return path



def _budget(path: Path, **kw) -> int:
    return load_policy(path, **kw).allocate("dbt-expert", "complex").budget


def _served_from_cache(path: Path, monkeypatch) -> int:
    """The budget when the policy can only come from the cache (a full check fails the test)."""
    import engine.policy

    def no_full_check(*args, **kwargs):
        raise AssertionError("not served from the cache")

    with monkeypatch.context() as m:
        m.setattr(engine.policy, "_check", no_full_check)
        return _budget(path)


def _read_entry(entry: Path) -> dict:
    """The head of an entry (everything but the plan), decoded."""
    head, _ = cache.unframe(entry.read_bytes())
    return json.loads(head)


def _read_plan(entry: Path) -> bytes:
    """The body after an entry's head: its sections (the signals, the detection plan)."""
    return cache.unframe(entry.read_bytes())[1]


def _plant(entry: Path, found: dict, plan: bytes | None = None) -> bytes:
    """The bytes of an entry holding the head ``found`` and ``plan`` (default: the entry's own plan), with a
    correct checksum of the head (so only the trust rules, the plan's digest or the shape checks reject it)."""
    return cache.frame(json.dumps(found).encode(), _read_plan(entry) if plan is None else plan)


def _plan_head(entry: Path) -> dict:
    """The head of an entry's detection plan (engine/policy/sections.py), decoded."""
    head, body = cache.unframe(entry.read_bytes())
    start, end, _ = json.loads(head)["artifacts"]["detection"]
    return json.loads(body[start:end])


def _write_plan_head(entry: Path, plan: dict, fix: bool = True) -> None:
    """Replace the head of the entry's plan (the body's last section) with ``plan``, with its checksum recomputed
    when ``fix`` (the entry's head, which lists it, always gets a correct checksum)."""
    head, body = cache.unframe(entry.read_bytes())
    found = json.loads(head)
    start, end, _ = found["artifacts"]["detection"]
    raw = json.dumps(plan, separators=(",", ":"), ensure_ascii=False).encode()
    assert end == len(body), "the plan's head is the body's last section"
    body = body[:start] + raw
    found["artifacts"]["detection"][1] = len(body)
    if fix:
        found["artifacts"]["detection"][2] = sections.checksum(body[start:end])
    entry.write_bytes(cache.frame(json.dumps(found).encode(), body))


def _payload(marker: Path) -> str:
    """Python that creates ``marker`` when executed, even with the expression runtime's restricted builtins
    (through a helper's ``__globals__``, as the attack on the earlier cache did)."""
    return (f"from engine.expr.runtime import _at\n"
            f"_b = _at.__globals__['__builtins__']\n"
            f"try:\n    _open = _b['open']\nexcept Exception:\n    _open = _b.open\n"
            f"_open({str(marker)!r}, 'w').close()\n")


def _hostile(found: dict, marker: Path, budget_base: int = 1000) -> dict:
    """A well-formed entry that says something else (specialist-narrow base ``budget_base``) and carries code
    wherever the earlier format kept it: a marshalled code blob and generated Python."""
    hostile = json.loads(json.dumps(found))
    hostile["data"]["profiles"]["specialist-narrow"]["base"] = budget_base
    del hostile["artifacts"]["budgets"]  # else the formula's values it keeps would answer: allocate from the data
    code = compile(_payload(marker), "<planted>", "exec")
    hostile["code"] = {"python": sys.version, "blob": base64.b64encode(marshal.dumps({"x": code})).decode()}
    hostile["programs"] = {"1 + 1": _payload(marker)}
    return hostile


def test_the_planted_payload_is_live(tmp_path: Path) -> None:
    """The marker payload really runs when executed (so the tests below that find no marker mean something)."""
    marker = tmp_path / "marker"
    exec(compile(_payload(marker), "<planted>", "exec"), {"__builtins__": {"__import__": __import__,
                                                                           "Exception": Exception}})
    assert marker.exists()


# -- hits, misses, staleness ---------------------------------------------------------------------------------------

def test_second_load_comes_from_the_cache_without_heavy_imports(team: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    cold = _probe(team, folder)
    assert (cold["budget"], cold["heavy"]) == (45000, ["jsonschema", "ruamel.yaml"])
    # warm: a budget imports nothing of detection (nor RE2), packing, recommendations or the monitor
    assert _probe(team, folder) == {"budget": 45000, "heavy": [], "jobs": []}


def test_a_changed_parent_makes_the_entry_stale(team: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    _probe(team, folder)
    (tmp_path / "base.yaml").write_text("extends: default\nprofiles:\n  specialist-narrow: {base: 10000}\n")
    assert _probe(team, folder)["budget"] == 15000


def test_the_cache_holds_data_only(team: Path, cache_dir: Path) -> None:
    load_policy(team)
    entries = list(cache_dir.iterdir())
    assert [e.suffix for e in entries] == [".entry"]
    found = _read_entry(entries[0])
    assert set(found) == {"format", "version", "source", "files", "links", "stamps", "hashed_at", "data",
                          "artifacts", "checked", "signals"}
    assert set(found["artifacts"]) == {"detection", "example_origins", "rule_positions", "budgets"}
    # the budget formula's value for every profile at every tier: names and whole numbers
    assert found["artifacts"]["budgets"]["by"] == "profile" and found["artifacts"]["budgets"]["detection"] is False
    assert found["artifacts"]["budgets"]["table"]["specialist-narrow"] == [15000, 30000, 45000, 50000]  # max 50,000
    # the signals and the detection plan are in sections after the head, each decoded when a task needs it
    assert "signals" not in found["data"]["detection"] and found["signals"]["count"] > 0
    plan = _plan_head(entries[0])
    assert plan["conditions"] == {} and plan["size"] > 0 and plan["signals"] == found["signals"]["count"]
    # where the (inherited) recommendation rules are written: file label, line, column — data
    assert found["artifacts"]["rule_positions"][0]["when"][0].endswith("default.yaml")
    assert all(type(n) is int for at in found["artifacts"]["rule_positions"] for p in at.values() for n in p[1:])
    text = entries[0].read_text()
    assert "def evaluate" not in text and "from engine" not in text  # no generated Python anywhere
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700 and stat.S_IMODE(entries[0].stat().st_mode) == 0o600


def test_a_planted_entry_with_code_runs_nothing_even_where_it_is_trusted(team: Path, cache_dir: Path,
                                                                          tmp_path: Path, monkeypatch) -> None:
    """The trust model: an entry in your own folder is used — but only as data; its code never runs."""
    load_policy(team)
    entry = Path(entry_path(team))
    marker = tmp_path / "marker"
    entry.write_bytes(_plant(entry, _hostile(_read_entry(entry), marker)))
    policy = load_policy(team)
    assert policy.allocate("dbt-expert", "complex").budget == 1500  # 1,000 × 1.5: the data was used
    assert policy.evaluate("Why did the dbt run fail?", "dbt-expert").detection.tier == "complex"
    assert not marker.exists()


@pytest.mark.parametrize("where", ["programs", "conditions"])
def test_generated_python_in_the_artifacts_is_a_miss(team: Path, cache_dir: Path, tmp_path: Path, where: str) -> None:
    load_policy(team)
    entry = Path(entry_path(team))
    found, marker = _read_entry(entry), tmp_path / "marker"
    if where == "programs":
        found["artifacts"]["programs"] = {"profile.base * tier.multiplier": _payload(marker)}
        entry.write_bytes(_plant(entry, found))
        assert cache.read(str(entry)) is None  # the entry's shape is wrong: a miss
    else:
        plan = _plan_head(entry)
        plan["conditions"] = {"count.team >= 2": _payload(marker)}
        _write_plan_head(entry, plan)
        # the plan is checked when detection first needs it: refused there (and planned afresh)
        assert cache.read(str(entry)).artifacts["detection"].decode() is None
        assert not entry.exists()  # and its entry removed, so the next start rewrites it
    policy = load_policy(team)
    assert policy.allocate("dbt-expert", "complex").budget == 45000
    assert policy.evaluate("Why did the dbt run fail?", "dbt-expert").detection.tier == "complex"
    assert not marker.exists()
    if where == "programs":
        assert "__globals__" not in entry.read_text()  # rewritten


def _paths(value, prefix=()):
    """Every path into a JSON value (lists: their first and last items)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list) and value:
        for index in sorted({0, len(value) - 1}):
            yield from _paths(value[index], prefix + (index,))


def _replace(value, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


WRONG = [None, 7, "x", [], {}, True, -1, [["x"]]]


def test_any_field_of_the_wrong_shape_is_a_miss(team: Path, cache_dir: Path) -> None:
    """With the checksum recomputed, so the shape checks must catch it: every field the cache itself reads
    (files, links, the detection plan, at every depth), replaced with values of the wrong type."""
    load_policy(team)
    entry = Path(entry_path(team))
    good = _read_entry(entry)
    assert cache.read(str(entry)) is not None and cache._usable(good, team)
    tried = 0
    for path in _paths({k: v for k, v in good.items() if k != "data"}):
        for wrong in WRONG:
            current = good
            for step in path:
                current = current[step]
            if type(wrong) is type(current) and wrong != -1:
                continue  # the right type (a wrong value of the right type is the checksum's job)
            mutated = _replace(good, path, wrong)
            assert not cache._usable(mutated, team), (path, wrong)
            if tried % 10 == 0:  # and through the whole read, now and then
                entry.write_bytes(_plant(entry, mutated))
                assert cache.read(str(entry)) is None, (path, wrong)
            tried += 1
    assert tried > 200


def test_the_plan_format_is_the_detectors() -> None:
    from engine.detect.plan import PLAN_FORMAT

    assert cache.PLAN_FORMAT == PLAN_FORMAT


@pytest.mark.parametrize("path, wrong", [
    ((), [1, 2]), (("data",), []), (("data", "profiles"), []), (("data", "profiles", "specialist-narrow"), 3),
    (("data", "profiles", "specialist-narrow", "weights"), "x"), (("data", "tiers"), {"a": 1}),
    (("data", "tiers", 0), "simple"), (("data", "agents"), 5), (("data", "budget"), []),
    (("data", "recommendations"), 3), (("data", "detection"), "x"), (("data", "examples"), 5),
    (("data", "alerts"), [1]), (("artifacts", "detection"), {"format": 3}),
    (("artifacts", "budgets"), []), (("artifacts", "budgets", "by"), "tier"),
    (("artifacts", "budgets", "detection"), 0), (("artifacts", "budgets", "table"), [1]),
    (("artifacts", "budgets", "table", "specialist-narrow"), [1, 2, 3]),  # a tier missing
    (("artifacts", "budgets", "table", "specialist-narrow", 2), -45000),
    (("artifacts", "budgets", "table", "specialist-narrow", 2), 45000.0),
    (("artifacts", "budgets", "table", "specialist-narrow", 2), True),
    (("artifacts", "budgets", "table", "specialist-narrow", 2), "45000"),
    (("artifacts", "budgets", "table", "specialist-narrow"), {"complex": 45000}),
    (("artifacts", "budgets", "table", "no-such-profile"), [1, 2, 3, 4]),  # a key the policy does not have
])
def test_a_well_formed_entry_with_wrong_shapes_is_a_miss_and_is_rewritten(team: Path, cache_dir: Path,
                                                                          path: tuple, wrong) -> None:
    load_policy(team)
    entry = Path(entry_path(team))
    good = entry.read_bytes()
    entry.write_bytes(_plant(entry, _replace(_read_entry(entry), path, wrong)))
    assert _budget(team) == 45000
    assert entry.read_bytes() == good


def test_the_budget_table_is_used_as_data(team: Path, cache_dir: Path, monkeypatch) -> None:
    """A warm allocation reads the formula's value from the entry (whole numbers, nothing compiled): a planted
    table of the right shape is believed — as planted data is — and its scopes are split from it."""
    load_policy(team)
    entry = Path(entry_path(team))
    found = _read_entry(entry)
    found["artifacts"]["budgets"]["table"]["specialist-narrow"][2] = 12345
    entry.write_bytes(_plant(entry, found))
    policy = load_policy(team)
    allocation = policy.allocate("dbt-expert", "complex")
    assert allocation.budget == 12345 == sum(allocation.scopes.values()) and policy.compiled_expressions() == []
    assert _served_from_cache(team, monkeypatch) == 12345


def test_a_plan_head_of_the_wrong_shape_is_refused_when_detection_needs_it(team: Path, cache_dir: Path) -> None:
    """The plan's head is checked on first use of the detector: a wrong shape inside it (with the checksum
    recomputed) leaves `budget` untouched and makes detection plan afresh, with the same answers."""
    load_policy(team)
    entry = Path(entry_path(team))
    expected = load_policy(team).evaluate("Why did the dbt run fail?", "dbt-expert")
    good = entry.read_bytes()
    plan = _plan_head(entry)
    size, signals, body = plan["size"], plan["signals"], len(cache.unframe(good)[1])
    for path, wrong in ((("format",), 99), ((), []), (("size",), size + 10 ** 9), (("signals",), signals + 1),
                        (("derived", 0), signals), (("derived", 0), -1), (("derived", 0), True),
                        (("scoped", 0), size), (("gates", 0), [size, "abc"]), (("gates", 0, 1), ""),
                        (("rest", 0), [size, "x"]), (("rest", 0, 1), ""), (("rest",), {}),
                        (("entries", "at", 1), body + 1), (("entries", "at", 0), -1),
                        (("entries", "at", 2), plan["entries"]["at"][1] - 1),  # overlapping chunks
                        (("entries", "at"), plan["entries"]["at"][:-1]), (("entries", "sums"), "x" * 16),
                        (("entries", "sums"), plan["entries"]["sums"][:-1]), (("index", "at"), [0]),
                        (("index", "at", 0), "0"), (("forms",), -1), (("quiet",), [])):
        edited = _replace(plan, path, wrong)
        _write_plan_head(entry, edited)
        assert _budget(team) == 45000
        assert entry.exists()  # `budget` reads neither the plan nor its checksum
        assert load_policy(team).evaluate("Why did the dbt run fail?", "dbt-expert") == expected, path
        assert not entry.exists(), path  # refused when detection needed it: removed, so the next start rewrites it
        assert _budget(team) == 45000 and entry.read_bytes() == good


def test_a_plan_head_edited_without_its_checksum_is_refused_and_the_entry_rewritten(team: Path,
                                                                                   cache_dir: Path) -> None:
    """An edit that keeps the plan's head valid JSON of the right shape (a gate's literal swapped) is refused by
    its checksum: the detector plans afresh (same answers), and the entry is removed and rewritten."""
    load_policy(team)
    entry = Path(entry_path(team))
    good = entry.read_bytes()
    expected = load_policy(team).evaluate("Why did the dbt run fail?", "dbt-expert")
    plan = _plan_head(entry)
    plan["gates"][0][1] = "zzz"
    _write_plan_head(entry, plan, fix=False)
    assert cache.read(str(entry)) is not None  # the head is whole: `budget` and `validate` use it
    assert _budget(team) == 45000 and entry.exists()
    assert load_policy(team).evaluate("Why did the dbt run fail?", "dbt-expert") == expected
    assert not entry.exists()
    assert _budget(team) == 45000 and entry.read_bytes() == good


def test_a_plan_head_edited_with_its_checksum_recomputed_is_data(team: Path, cache_dir: Path) -> None:
    """With the checksums recomputed, a plan head of the right shape is believed — as planted data is (the trust
    rules keep others out) — and one of the wrong shape is refused."""
    load_policy(team)
    entry = Path(entry_path(team))
    plan = _plan_head(entry)
    _write_plan_head(entry, plan)  # the same head, re-serialised: still used
    policy = load_policy(team)
    assert type(policy._plan) is cache.StoredPlan and policy._decoded_plan()["gates"] == plan["gates"]
    assert entry.exists() and policy.detect("Why did the dbt run fail?").tier == "complex"
    for wrong in ([], {"format": cache.PLAN_FORMAT}, dict(plan, derived=[10 ** 6])):
        _write_plan_head(entry, wrong)
        policy = load_policy(team)
        assert policy._decoded_plan() is None and not entry.exists()
        assert policy.detect("Why did the dbt run fail?").tier == "complex"
        load_policy(team)  # rewritten


def test_an_edited_entry_is_a_miss_and_is_rewritten(team: Path, cache_dir: Path) -> None:
    """Any change to what the cache wrote — anywhere, the policy data included — fails its checksum."""
    load_policy(team)
    entry = Path(entry_path(team))
    good = entry.read_bytes()
    found, plan = _read_entry(entry), _read_plan(entry)
    digest = good.split(b" ")[1].decode()
    for path in list(_paths(found))[::7]:
        edited = json.dumps(_replace(found, path, ["edited"])).encode()
        # the first line of the good entry, but the sizes made to fit: only the checksum can tell
        entry.write_bytes(f"{cache.FORMAT} {digest} {len(edited)} {len(plan)}\n".encode() + edited + plan)
        assert cache.read(str(entry)) is None, path
    for garbage in (b"{not json", b"", b"\x00\x01", good[:-1], good[:100], good + b" ",
                    json.dumps({"format": 1, "data": [1]}).encode()):
        entry.write_bytes(garbage)
        assert _budget(team) == 45000
        assert entry.read_bytes() == good


def _framed(entry: Path, first_line: str) -> bytes:
    """The entry's head and plan under another first line."""
    head, plan = cache.unframe(entry.read_bytes())
    return first_line.encode() + b"\n" + head + plan


def _layout_cases(entry: Path) -> list[tuple[str, bytes]]:
    """Entries that break the layout (FORMAT, head checksum, sizes, then the head, then the plan bytes)."""
    good = entry.read_bytes()
    first, _, _ = good.partition(b"\n")
    fmt, digest, head_size, plan_size = first.decode().split(" ")
    head, plan = cache.unframe(good)
    h, p = int(head_size), int(plan_size)
    return [
        ("head size one short", _framed(entry, f"{fmt} {digest} {h - 1} {p + 1}")),
        ("head size one long", _framed(entry, f"{fmt} {digest} {h + 1} {p - 1}")),
        ("plan size one long", _framed(entry, f"{fmt} {digest} {h} {p + 1}")),
        ("plan size one short", _framed(entry, f"{fmt} {digest} {h} {p - 1}")),
        ("negative size", _framed(entry, f"{fmt} {digest} {h} -{p}")),
        ("size not a number", _framed(entry, f"{fmt} {digest} {h} 0x{p:x}")),
        ("huge size", _framed(entry, f"{fmt} {digest} {h} 9999999999")),
        ("a size of 11 digits", _framed(entry, f"{fmt} {digest} {h} {p:011d}")),
        ("a size with spaces", _framed(entry, f"{fmt} {digest} {h}  {p}")),
        ("no sizes (format 8's first line)", _framed(entry, f"{fmt} {digest}")),
        ("another format", _framed(entry, f"8 {digest} {h} {p}")),
        ("no first line", head + plan),
        ("a first line too long to be one", b"9 " + b"0" * 200 + b"\n" + head + plan),
        ("truncated tail", good[:-1]),
        ("truncated to the head", good[:len(good) - p]),
        ("a byte appended", good + b"}"),
        ("empty", b""),
    ]


def test_an_entry_whose_layout_is_broken_is_a_miss_and_is_rewritten(team: Path, cache_dir: Path) -> None:
    """The first line's sizes must add up to the entry's size exactly, and the head must match its checksum:
    a wrong, huge, negative or malformed size, a truncated tail, an extra byte — each a miss, then rewritten."""
    load_policy(team)
    entry = Path(entry_path(team))
    good = entry.read_bytes()
    assert cache.unframe(good) is not None
    for name, raw in _layout_cases(entry):
        entry.write_bytes(raw)
        assert cache.unframe(raw) is None and cache.read(str(entry)) is None, name
        assert _budget(team) == 45000, name
        assert entry.read_bytes() == good, name


@pytest.mark.parametrize("plan", ["dropped", "added"])
def test_a_plan_where_the_head_lists_none_or_none_where_it_lists_one_is_a_miss(team: Path, cache_dir: Path,
                                                                                plan: str) -> None:
    load_policy(team)
    entry = Path(entry_path(team))
    good, found = entry.read_bytes(), _read_entry(entry)
    if plan == "dropped":
        entry.write_bytes(_plant(entry, found, b""))
    else:
        del found["artifacts"]["detection"]
        entry.write_bytes(_plant(entry, found))
    assert cache.read(str(entry)) is None
    assert _budget(team) == 45000 and entry.read_bytes() == good


def test_an_entry_over_the_bound_is_not_read(team: Path, cache_dir: Path, monkeypatch) -> None:
    load_policy(team)
    entry = Path(entry_path(team))
    assert cache.read(str(entry)) is not None
    monkeypatch.setattr(cache, "MAX_ENTRY_BYTES", entry.stat().st_size - 1)
    assert cache.read(str(entry)) is None


def _counting_hashes(monkeypatch) -> list[int]:
    """The sizes of what engine.policy.cache hashes from now on."""
    hashed: list[int] = []
    real = cache.sha256

    def counting(data=b""):
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(cache, "sha256", counting)
    return hashed


def test_a_warm_load_hashes_no_policy_file_whose_stamp_is_settled(team: Path, cache_dir: Path, monkeypatch) -> None:
    """A warm load reads and hashes none of the chain's files when each one's stamp (size, modification time,
    inode, status-change time) is what the entry recorded and was settled when it was hashed: only the entry's
    head is hashed (its name is a hash of the path, the plan's sections are checked when read)."""
    load_policy(team)
    chain = [Path(f) for f, _ in load_policy(team, cache=False).files]
    assert len(chain) == 3  # team.yaml, base.yaml, the bundled default
    hashed = _counting_hashes(monkeypatch)
    assert _served_from_cache(team, monkeypatch) == 45000
    sizes = {f.stat().st_size for f in chain}
    assert not sizes & set(hashed) and len(hashed) == 2, hashed  # the entry's name, its head


def test_a_file_not_settled_when_hashed_is_hashed_until_it_is_then_its_stamp_is_trusted(team: Path, cache_dir: Path,
                                                                                        monkeypatch) -> None:
    """git's "racily clean" rule: a file changed less than SETTLED_NS before it was hashed could change again
    within the clock's granularity and keep its stamp, so its bytes are hashed on each load; once it has settled,
    the entry is refreshed with the stamps and later loads trust them. (The clock is set by the test, relative
    to the file's own times.)"""

    class Clock:
        time = staticmethod(time.time)
        at = 0

        def time_ns(self) -> int:
            return self.at

    clock = Clock()
    monkeypatch.setattr(cache, "time", clock)
    team.write_text(team.read_text())  # changed just now
    st = os.stat(team)
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    clock.at = changed + 10 ** 6  # hashed 1 ms after the change
    load_policy(team)
    entry = Path(entry_path(team))
    written = entry.read_bytes()
    hashed = _counting_hashes(monkeypatch)
    size = team.stat().st_size
    clock.at = changed + 2 * 10 ** 6
    assert _served_from_cache(team, monkeypatch) == 45000 and size in hashed  # not settled when hashed
    assert entry.read_bytes() == written  # nor now: not refreshed
    clock.at = changed + cache.SETTLED_NS + 1
    hashed.clear()
    assert _served_from_cache(team, monkeypatch) == 45000 and size in hashed  # hashed, settled now: refreshed
    assert entry.read_bytes() != written and cache.unframe(entry.read_bytes())[1] == cache.unframe(written)[1]
    assert _read_entry(entry)["hashed_at"] == clock.at
    hashed.clear()
    assert _served_from_cache(team, monkeypatch) == 45000 and size not in hashed  # trusted by its stamp


@pytest.mark.parametrize("settled", [False, True])
def test_the_racy_case_a_change_that_keeps_the_stamp(team: Path, cache_dir: Path, monkeypatch, settled: bool) -> None:
    """An entry whose recorded digest is not the file's bytes, with the file's stamp as it is now — what a change
    within the same clock tick as the hashing leaves. Recorded as hashed right after the file's last change (not
    settled), the file is hashed and the entry is stale; recorded as hashed long after it, the stamp is trusted
    (the residual: a change that keeps size, both times and inode, which writing a file does not)."""
    load_policy(team)
    entry = Path(entry_path(team))
    found = _read_entry(entry)
    found["files"][0][1] = "0" * 64  # as if team.yaml had other bytes when it was hashed
    st = os.stat(team)
    found["stamps"][0] = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
    found["hashed_at"] = max(st.st_mtime_ns, st.st_ctime_ns) + (10 ** 10 if settled else 10 ** 6)
    entry.write_bytes(_plant(entry, found))
    assert (cache.read(str(entry), team) is not None) is settled


def test_a_touched_policy_is_hashed_not_recompiled(team: Path, cache_dir: Path, monkeypatch) -> None:
    """A new stamp with the same bytes (a checkout, `touch`) is a hit: the file is hashed and found unchanged."""
    load_policy(team)
    os.utime(team, ns=(time.time_ns(), time.time_ns() + 10 ** 9))
    assert _served_from_cache(team, monkeypatch) == 45000


def test_a_change_that_keeps_size_and_modification_time_is_seen(team: Path, cache_dir: Path) -> None:
    """Bytes changed, size and modification time put back (as `touch -r` or `rsync -t` can): the status-change
    time moved, so the file is hashed and the entry is stale."""
    load_policy(team)
    st = os.stat(team)
    team.write_text(team.read_text().replace("name: team", "name: maet"))
    os.utime(team, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(team).st_size == st.st_size and os.stat(team).st_mtime_ns == st.st_mtime_ns
    assert load_policy(team).name == "maet"


def test_a_parent_repointed_by_a_symlink_is_not_served_stale(tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    """Reproduced in wave 1: 10,000 vs 40,000 tokens."""
    for name, base in (("small.yaml", 10000), ("large.yaml", 40000)):
        (tmp_path / name).write_text(f"extends: default\nprofiles:\n  specialist-narrow: {{base: {base}, max: 90000}}\n")
    (tmp_path / "base.yaml").symlink_to("small.yaml")
    team = tmp_path / "team.yaml"
    team.write_text("extends: base.yaml\n")
    assert _budget(team) == 15000
    assert _served_from_cache(team, monkeypatch) == 15000
    (tmp_path / "base.yaml").unlink()
    (tmp_path / "base.yaml").symlink_to("large.yaml")
    assert _budget(team) == 60000 == _budget(team, cache=False)
    assert _served_from_cache(team, monkeypatch) == 60000  # and the new chain is cached in turn


@pytest.mark.parametrize("shadow", ["default", "default.yaml"])
def test_a_new_local_file_that_shadows_a_bundled_parent_is_not_served_stale(tmp_path: Path, cache_dir: Path,
                                                                           shadow: str) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("extends: default\n")
    before = _budget(team)
    (tmp_path / shadow).write_text("extends: ./real-default.yaml\nprofiles:\n  specialist-narrow: {base: 40000}\n")
    shutil.copy(Path(cache.__file__).parents[2] / "policies" / "default.yaml", tmp_path / "real-default.yaml")
    truth = _budget(team, cache=False)  # whatever the extends rules say a local file named so means
    assert _budget(team) == truth
    (tmp_path / shadow).unlink()
    assert _budget(team) == before == _budget(team, cache=False)


@pytest.mark.parametrize("reference", ["default", "base.yaml", "./base.yml", "sub/../base.yaml", "link.yaml",
                                       "ABSOLUTE", "sub/", "missing.yaml", "base", "nosuch-bundled"])
def test_the_cache_sees_wherever_extends_resolves_a_reference(tmp_path: Path, reference: str) -> None:
    """The places the cache re-checks for a reference include the one engine.policy.extends resolves it to, so
    a change there is a miss. (If the extends rules change, this fails before a stale entry can be served.)"""
    from engine.policy.extends import resolve_parent

    (tmp_path / "sub").mkdir()
    for name in ("base.yaml", "base.yml", "base", "default.yaml"):
        (tmp_path / name).write_text("version: 1\n")
    (tmp_path / "link.yaml").symlink_to("base.yml")
    child = tmp_path / "team.yaml"
    reference = str(tmp_path / "base.yaml") if reference == "ABSOLUTE" else reference
    parent = resolve_parent(reference, child)
    facts = [fact for _, fact in cache._probe(str(child), reference)]
    if reference in ("missing.yaml", "base", "nosuch-bundled"):  # no parent: an invalid policy is never cached
        assert parent is None
    else:
        assert [str(parent), "file" if parent.is_file() else "dir"] in facts


def test_an_unwritable_cache_directory_is_no_error(team: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(blocker / "cache"))
    assert load_policy(team).name == "team"
    assert capsys.readouterr().err == ""


def test_caching_can_be_turned_off(team: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CTXBUDGET_NO_CACHE", "1")
    load_policy(team)
    assert not (tmp_path / "cache").exists()


def test_an_invalid_policy_is_never_cached(tmp_path: Path, cache_dir: Path) -> None:
    from engine.diagnostics import PolicyError

    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: default\nenforcement: strict\n")
    for _ in range(2):
        with pytest.raises(PolicyError):
            load_policy(bad)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


# -- eviction -------------------------------------------------------------------------------------------------------

def test_the_folder_keeps_only_the_most_recently_used_entries(tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    policies = []
    for i in range(6):
        path = tmp_path / f"p{i}.yaml"
        path.write_text(f"extends: default\nname: p{i}\n")
        policies.append(path)
    load_policy(policies[0])
    first = Path(entry_path(policies[0]))
    os.utime(first, (1, 1))  # long unused
    (cache_dir / "notes.txt").write_text("not an entry: left alone")
    stale, fresh = cache_dir / ".tmp-1-dead", cache_dir / ".tmp-2-busy"
    stale.write_text("left by a killed process")
    fresh.write_text("another process is writing this")
    os.utime(stale, (1, 1))
    for i, path in enumerate(policies[1:], start=1):
        load_policy(path)
        os.utime(entry_path(path), (1000 + i, 1000 + i))
    kept = sorted(p.name for p in cache_dir.iterdir() if p.suffix == ".entry")
    newest = sorted(Path(entry_path(p)).name for p in policies[3:])
    assert kept == newest
    assert (cache_dir / "notes.txt").exists() and fresh.exists() and not stale.exists()


def test_a_used_entry_is_refreshed_so_it_survives_eviction(tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    team = tmp_path / "t.yaml"
    team.write_text("extends: default\n")
    load_policy(team)
    entry = Path(entry_path(team))
    os.utime(entry, (1, 1))
    _served_from_cache(team, monkeypatch)
    assert entry.stat().st_mtime > 1_000_000


def test_the_documented_bound_is_the_real_one() -> None:
    docs = (Path(cache.__file__).parents[2] / "docs" / "security.md").read_text()
    assert f"the {cache.MAX_ENTRIES} most recently used entries" in docs


# -- trust: the cache is used only when it is the user's own ---------------------------------------------------------

def _warm(team: Path, folder: Path, monkeypatch) -> tuple[Path, dict]:
    """Fill ``folder`` with team's entry; return the entry's path and content."""
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(folder))
    load_policy(team)
    entry = Path(entry_path(team))
    return entry, _read_entry(entry)


def _assert_refused(team: Path, marker: Path, capsys, reason: str, entry: Path | None = None) -> None:
    """The cache is not used (the right budget, no code run), one warning says why, nothing is rewritten."""
    before = entry.read_bytes() if entry is not None and not entry.is_symlink() and entry.is_file() else None
    for _ in range(2):
        policy = load_policy(team)
        assert policy.allocate("dbt-expert", "complex").budget == 45000
        assert policy.evaluate("Why did the dbt run fail?", "dbt-expert").detection.tier == "complex"
    assert not marker.exists()
    err = capsys.readouterr().err
    assert err.count("warning: not using the compiled-policy cache") == 1 and reason in err, err
    if before is not None:
        assert entry.read_bytes() == before  # not used at all: not rewritten either


def test_a_symlinked_entry_is_refused(team: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    entry, found = _warm(team, tmp_path / "cache", monkeypatch)
    marker, elsewhere = tmp_path / "marker", tmp_path / "elsewhere.entry"
    elsewhere.write_bytes(_plant(entry, _hostile(found, marker)))
    entry.unlink()
    entry.symlink_to(elsewhere)
    _assert_refused(team, marker, capsys, "is a symbolic link")
    assert entry.is_symlink()


def test_a_symlinked_folder_is_refused(team: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    entry, found = _warm(team, tmp_path / "real-cache", monkeypatch)
    marker = tmp_path / "marker"
    entry.write_bytes(_plant(entry, _hostile(found, marker)))
    (tmp_path / "cache").symlink_to(tmp_path / "real-cache")
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    _assert_refused(team, marker, capsys, "is a symbolic link")


@pytest.mark.parametrize("mode, reason", [(0o770, "writable by group (mode 0770)"),
                                          (0o707, "writable by others (mode 0707)"),
                                          (0o1777, "writable by group and others (mode 1777)")])
def test_a_folder_writable_by_others_is_refused(team: Path, tmp_path: Path, monkeypatch, capsys, mode: int,
                                                reason: str) -> None:
    entry, found = _warm(team, tmp_path / "cache", monkeypatch)
    marker = tmp_path / "marker"
    entry.write_bytes(_plant(entry, _hostile(found, marker)))
    os.chmod(entry.parent, mode)
    _assert_refused(team, marker, capsys, reason, entry)


def test_an_entry_writable_by_others_is_refused(team: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    entry, found = _warm(team, tmp_path / "cache", monkeypatch)
    marker = tmp_path / "marker"
    entry.write_bytes(_plant(entry, _hostile(found, marker)))
    os.chmod(entry, 0o664)
    _assert_refused(team, marker, capsys, "writable by group (mode 0664)", entry)


def test_an_entry_that_is_a_fifo_is_refused_without_blocking(team: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    entry, _ = _warm(team, tmp_path / "cache", monkeypatch)
    entry.unlink()
    os.mkfifo(entry, 0o600)
    _assert_refused(team, tmp_path / "marker", capsys, "is not a regular file")


def test_the_same_planted_entry_is_served_when_it_is_trusted(team: Path, tmp_path: Path, monkeypatch) -> None:
    """The control for the refusals above: their planted entries are well-formed, so it is the trust rule (not
    the checksum or the shape checks) that turned them away."""
    entry, found = _warm(team, tmp_path / "cache", monkeypatch)
    marker = tmp_path / "marker"
    entry.write_bytes(_plant(entry, _hostile(found, marker)))
    assert _served_from_cache(team, monkeypatch) == 1500 and not marker.exists()


# Planting as another user: only root can make a file owned by someone else.
as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                             reason="planting a file owned by another uid needs root (run the suite as root to "
                                    "cover it; the symlink and permission cases run as any user)")
NOBODY = 65534


def _as_nobody(script: str, *args: str, data: bytes = b"") -> None:
    """Run a shell ``script`` as uid/gid 65534 (what an attacker sharing the host would do)."""
    subprocess.run(["sh", "-c", script, "sh", *args], input=data, check=True, timeout=30, user=NOBODY,
                   group=NOBODY, extra_groups=[], cwd="/")


@pytest.fixture
def shared_tmp():
    """A folder uid 65534 can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="ctxbudget-plant-"))
    os.chmod(folder, 0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@as_root
def test_an_entry_planted_by_another_user_is_refused(team: Path, tmp_path: Path, monkeypatch, capsys,
                                                     shared_tmp: Path) -> None:
    entry, found = _warm(team, shared_tmp / "cache", monkeypatch)
    marker = tmp_path / "marker"
    planted = _plant(entry, _hostile(found, marker))
    entry.unlink()
    os.chmod(entry.parent, 0o733)  # just long enough for the plant
    _as_nobody('umask 022; cat > "$1"', str(entry), data=planted)
    os.chmod(entry.parent, 0o700)
    assert entry.stat().st_uid == NOBODY and stat.S_IMODE(entry.stat().st_mode) == 0o644
    _assert_refused(team, marker, capsys, f"is owned by uid {NOBODY}, not by you (uid 0)", entry)


@as_root
def test_a_cache_folder_made_by_another_user_is_refused(team: Path, tmp_path: Path, monkeypatch,
                                                        shared_tmp: Path) -> None:
    """The wave-1 reproduction end to end: a world-writable cache home, a folder and entry written by nobody,
    then root's `ctxbudget evaluate`."""
    entry, found = _warm(team, tmp_path / "mine", monkeypatch)
    home = shared_tmp / "xdg"
    home.mkdir()
    os.chmod(home, 0o1777)
    folder = home / "ctxbudget"
    marker = tmp_path / "marker"
    _as_nobody('umask 077; mkdir "$1" && cat > "$1/$2"', str(folder), entry.name,
               data=_plant(entry, _hostile(found, marker)))
    assert folder.stat().st_uid == NOBODY
    env = {**os.environ, "XDG_CACHE_HOME": str(home), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-m", "engine", "evaluate", "Why did the dbt run fail?", "--agent",
                           "dbt-expert", "--policy", str(team), "--json"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["budget"] == 45000 and not marker.exists()
    assert done.stderr.count(f"{folder} is owned by uid {NOBODY}, not by you (uid 0)") == 1, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == [entry.name]  # nothing written into it
