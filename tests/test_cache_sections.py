"""The sections of a compiled-policy cache entry (engine/policy/sections.py): a warm start decodes what its task
touches; every chunk is checked (checksum, then shape) when first read, and one that fails is served from a
fresh compilation of the policy — the same answers, never a traceback — and the entry is rewritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA
from engine.diagnostics import UsageError
from engine.policy import cache, load_policy, sections
from engine.policy.cache import entry_path

TASK = "Why did the dbt run fail?"


pytestmark = pytest.mark.usefixtures("fresh_trust")  # tests/conftest.py


@pytest.fixture
def team(tmp_path: Path) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text("extends: default\nname: team\n")
    return path


def _entry(policy: Path) -> Path:
    load_policy(policy)
    return Path(entry_path(policy))


class Layout:
    """An entry taken apart: its head (decoded), its plan's head (decoded) and the chunks of its three tables
    (bytes, and the checksums the tables list), to be edited and laid out again."""

    KINDS = ("signals", "entries", "index")  # in the order the body holds them, then the plan's head

    def __init__(self, entry: Path):
        head, body = cache.unframe(entry.read_bytes())
        self.entry, self.found = entry, json.loads(head)
        start, end, _ = self.found["artifacts"]["detection"]
        self.plan = json.loads(body[start:end])
        self.raw: dict[str, list[bytes]] = {}
        self.sums: dict[str, list[str]] = {}
        digits = sections.SUM_DIGITS
        for kind in self.KINDS:
            at, sums = self.table(kind)["at"], self.table(kind)["sums"]
            self.raw[kind] = [body[a:b] for a, b in zip(at, at[1:])]
            self.sums[kind] = [sums[i:i + digits] for i in range(0, len(sums), digits)]

    def table(self, kind: str) -> dict:
        return self.found["signals"]["table"] if kind == "signals" else self.plan[kind]

    def chunk(self, kind: str, number: int) -> object:
        return json.loads(self.raw[kind][number])

    def put(self, kind: str, number: int, value: object, fix: bool = True) -> None:
        """Replace a chunk with ``value`` (JSON, or bytes as they are); its checksum recomputed when ``fix``."""
        raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
        self.raw[kind][number] = raw
        if fix:
            self.sums[kind][number] = sections.checksum(raw)

    def write(self) -> None:
        """Lay the entry out again: offsets recomputed, the checksums as kept or recomputed by :meth:`put`, the
        plan's head and the entry's head with correct checksums."""
        body = b""
        for kind in self.KINDS:
            at = [len(body)]
            for raw in self.raw[kind]:
                body += raw
                at.append(len(body))
            self.table(kind).update(at=at, sums="".join(self.sums[kind]))
        raw = json.dumps(self.plan, separators=(",", ":"), ensure_ascii=False).encode()
        self.found["artifacts"]["detection"] = [len(body), len(body) + len(raw), sections.checksum(raw)]
        self.entry.write_bytes(cache.frame(json.dumps(self.found).encode(), body + raw))

    @property
    def body(self) -> bytes:
        return cache.unframe(self.entry.read_bytes())[1]


def _bucket_of(layout: Layout, form: str) -> int:
    return sections.bucket_of(form, len(layout.plan["index"]["at"]) - 1)


# -- what a warm start reads ---------------------------------------------------------------------------------------

def test_a_warm_evaluate_decodes_only_what_its_task_touches(tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    """A policy of 1,200 generated signals: a task of a few words reads a few of its sections (the plan's head,
    the buckets of its words, the chunks of the entries and signals that fired), not the whole body."""
    from engine.policy import load_data

    data = load_data("default")
    signals = data["detection"]["signals"]
    derived = [s for s in signals if "when" in s]
    signals[:] = [s for s in signals if "when" not in s]
    for i in range(1200):
        signals.append({"id": f"gen-{i}", "words": [f"zq{i}alpha", f"zq{i}beta zq{i}gamma"],
                        "weights": {"complex": 1}})
    signals.extend(derived)
    policy = tmp_path / "big.json"
    policy.write_text(json.dumps(data))
    expected = load_policy(policy, cache=False).evaluate(TASK + " zq77alpha", "dbt-expert")
    load_policy(policy)  # written
    read: list[int] = []
    real = sections.Body.part

    def counting(self, start, end, digest):
        read.append(end - start)
        return real(self, start, end, digest)

    monkeypatch.setattr(sections.Body, "part", counting)
    warm = load_policy(policy)
    assert read == []  # `budget` reads no section
    assert warm.evaluate(TASK + " zq77alpha", "dbt-expert") == expected
    assert "gen-77" in expected.detection.signal_ids
    body = len(cache.unframe(Path(entry_path(policy)).read_bytes())[1])
    # the plan head, the buckets of seven words, a few chunks of entries and of signals (the derived ones last);
    # the default policy's learned vocabulary (200 word signals) fires for several of the task's words, each in
    # a chunk of its own: 21 sections, 23 % of the body when it came (17 sections, 20 % without it)
    assert 3 <= len(read) <= 30 and sum(read) < body / 3, (len(read), sum(read), body)


def test_the_detector_from_sections_answers_as_a_fresh_one(team: Path, cache_dir: Path) -> None:
    """Every golden task of the default policy, and hits and spans, the same from a warm entry as compiled."""
    fresh = load_policy(team, cache=False)
    load_policy(team)
    warm = load_policy(team)
    assert type(warm._plan) is cache.StoredPlan
    for example in fresh.task_examples:
        a, b = fresh.detect(example.task, example.context), warm.detect(example.task, example.context)
        assert (a.tier, a.confidence, a.scores, a.hits) == (b.tier, b.confidence, b.scores, b.hits), example.task
    # read whole, it is the plan written (whose conditions are compiled from source, not kept)
    assert warm.artifacts["detection"] == dict(fresh.artifacts["detection"], conditions={})


# -- chunks that fail ------------------------------------------------------------------------------------------------

def _damage_cases(layout: Layout) -> list[tuple[str, str, int, object, bool]]:
    """(name, section kind, chunk number, new value, whether its checksum is recomputed)."""
    entries = layout.chunk("entries", 0)
    signals = layout.chunk("signals", 0)
    bucket = _bucket_of(layout, "dbt")
    words = layout.chunk("index", bucket)
    # a bucket the task reads (the bucket of another of its words): "dbt" does not belong there
    other = next(n for n in (_bucket_of(layout, w) for w in ("why", "did", "the", "run", "fail")) if n != bucket)
    bad_signal = [dict(signals[0], weights={"no-such-tier": 1})] + signals[1:]
    return [
        ("entries: a byte changed", "entries", 0, json.dumps(entries).replace('"dbt"', '"xyz"', 1).encode(), False),
        ("bucket: a byte changed", "index", bucket, json.dumps(words).replace('"dbt"', '"xyz"', 1).encode(), False),
        ("signals: a byte changed", "signals", 0, json.dumps(signals).replace('"dbt"', '"xyz"', 1).encode(),
         False),
        ("entries: not JSON", "entries", 0, b"{not json", True),
        ("entries: an object", "entries", 0, {}, True),
        ("entries: one short", "entries", 0, [entries[0][:-1], entries[1][:-1]], True),
        ("entries: a signal out of range", "entries", 0,
         [[[10 ** 6, *entries[0][0][1:]], *entries[0][1:]], entries[1]], True),
        ("entries: an unknown kind", "entries", 0, [[[0, "word", "x"], *entries[0][1:]], entries[1]], True),
        ("entries: an empty text", "entries", 0, [[[0, "literal", ""], *entries[0][1:]], entries[1]], True),
        ("entries: patterns misaligned", "entries", 0, [entries[0], entries[1][:-1]], True),
        ("entries: a regex without its pattern", "entries", 0,
         [[[0, "regex", "x"], *entries[0][1:]], ["", *entries[1][1:]]], True),
        ("bucket: a list", "index", bucket, [], True),
        ("bucket: an entry out of range", "index", bucket, dict(words, dbt=[10 ** 6]), True),
        ("bucket: a negative entry", "index", bucket, dict(words, dbt=[-1]), True),
        ("bucket: no entries", "index", bucket, dict(words, dbt=[]), True),
        ("bucket: a form in the wrong bucket", "index", other, dict(layout.chunk("index", other), dbt=[0]), True),
        ("signals: not a list", "signals", 0, {"id": "x"}, True),
        ("signals: an id missing", "signals", 0, [{"words": "x"}, *signals[1:]], True),
        ("signals: words a number", "signals", 0, [dict(signals[0], words=5), *signals[1:]], True),
        ("signals: weights of an unknown tier", "signals", 0, bad_signal, True),
        ("signals: a boost that is text", "signals", 0, [dict(signals[0], boost="1"), *signals[1:]], True),
        ("signals: deep nesting", "signals", 0, b"[" * 5000 + b"]" * 5000, True),
    ]


@pytest.mark.parametrize("open_bodies", [sections.MAX_OPEN_BODIES, -1])  # -1: each body read whole at once
def test_a_damaged_chunk_is_served_from_a_fresh_compilation_and_the_entry_rewritten(team: Path, cache_dir: Path,
                                                                                  open_bodies: int,
                                                                                  monkeypatch) -> None:
    """Edited without its checksum, or with it and of the wrong shape: the chunk is not used; the answer is the
    compiled policy's (never a traceback), and the entry is replaced by a good one at once — whether the body is
    read through its descriptor or whole."""
    monkeypatch.setattr(sections, "MAX_OPEN_BODIES", open_bodies)
    entry = _entry(team)
    good = entry.read_bytes()
    expected = load_policy(team, cache=False).evaluate(TASK, "dbt-expert")
    for name, kind, number, value, fix in _damage_cases(Layout(entry)):
        layout = Layout(entry)
        layout.put(kind, number, value, fix=fix)
        layout.write()
        assert entry.read_bytes() != good, name
        assert load_policy(team).allocate("dbt-expert", "complex").budget == 30000, name  # no section read
        policy = load_policy(team)
        result = policy.evaluate(TASK, "dbt-expert")
        assert (result.detection.tier, result.confidence, result.detection.hits) == (
            expected.detection.tier, expected.confidence, expected.detection.hits), name
        assert policy.detector.signals == load_policy(team, cache=False).detector.signals, name
        assert entry.read_bytes() == good, name  # rewritten


def test_many_live_policies_keep_a_bounded_number_of_descriptors(team: Path, cache_dir: Path, monkeypatch) -> None:
    """Each policy loaded from the cache reads its sections through the entry's descriptor, up to
    MAX_OPEN_BODIES of them at once; past that a body is read whole and its descriptor closed — a service that
    keeps thousands of policies does not run out of descriptors — with the same answers."""
    import gc
    import os

    monkeypatch.setattr(sections, "MAX_OPEN_BODIES", 3)
    expected = load_policy(team, cache=False).evaluate(TASK, "dbt-expert")
    load_policy(team)  # written
    gc.collect()
    before = sections.OpenBody.live
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    policies = [load_policy(team) for _ in range(12)]
    assert sections.OpenBody.live <= max(before, 3) + 1
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) <= fds + 4
    for policy in policies:
        found = policy.evaluate(TASK, "dbt-expert")
        assert (found.detection.tier, found.confidence, found.detection.hits) == (
            expected.detection.tier, expected.confidence, expected.detection.hits)
    del policies, found
    gc.collect()
    assert sections.OpenBody.live <= before


def test_a_chunk_of_the_right_shape_with_its_checksum_recomputed_is_data(team: Path, cache_dir: Path) -> None:
    """As planted data is (the trust rules keep others out): a bucket that files "dbt" under no entry is
    believed, and the task no longer fires the dbt signal — nothing is executed, nothing fails."""
    entry = _entry(team)
    layout = Layout(entry)
    bucket = _bucket_of(layout, "dbt")
    words = layout.chunk("index", bucket)
    assert "dbt" in words
    del words["dbt"]
    layout.put("index", bucket, words)
    layout.write()
    policy = load_policy(team)
    assert "dbt" not in policy.detect("the dbt models").signal_ids
    assert entry.exists()


# -- a head whose tables do not fit --------------------------------------------------------------------------------

def _head_cases(layout: Layout) -> list[tuple[str, tuple, object]]:
    table = layout.found["signals"]["table"]
    body = len(layout.body)
    return [
        ("an offset past the body", ("signals", "table", "at", -1), body + 1),
        ("a negative offset", ("signals", "table", "at", 0), -1),
        ("offsets that go back (overlapping chunks)", ("signals", "table", "at", 1), table["at"][0] - 1),
        ("an offset that is text", ("signals", "table", "at", 0), "0"),
        ("a checksum missing", ("signals", "table", "sums"), table["sums"][:-16]),
        ("a checksum not hexadecimal", ("signals", "table", "sums"), "g" * len(table["sums"])),
        ("a huge count", ("signals", "count"), 10 ** 12),
        ("a count that does not fit the table", ("signals", "count"), layout.found["signals"]["count"] + 64),
        ("no signals", ("signals", "count"), 0),
        ("the plan's span past the body", ("artifacts", "detection", 1), body + 1),
        ("the plan's span reversed", ("artifacts", "detection"), [5, 4, "0" * 16]),
        ("the plan's checksum short", ("artifacts", "detection", 2), "0" * 15),
        ("the signals left in the data", ("data", "detection", "signals"), [{"id": "x"}]),
    ]


def test_a_head_whose_tables_do_not_fit_its_body_is_a_miss_and_is_rewritten(team: Path, cache_dir: Path) -> None:
    entry = _entry(team)
    good = entry.read_bytes()
    for name, path, wrong in _head_cases(Layout(entry)):
        layout = Layout(entry)
        target = layout.found
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = wrong
        entry.write_bytes(cache.frame(json.dumps(layout.found).encode(), layout.body))
        assert cache.read(str(entry)) is None, name
        assert load_policy(team).allocate("dbt-expert", "complex").budget == 30000, name
        assert entry.read_bytes() == good, name


def test_a_policy_changed_while_its_damaged_entry_is_in_use_is_a_clear_error(team: Path, cache_dir: Path) -> None:
    """A chunk that fails is served from the policy's files as they are now; when they changed since the entry
    was read, its other chunks would not belong with that one: a usage error, not a mixed answer."""
    entry = _entry(team)
    layout = Layout(entry)
    layout.put("entries", 0, b"{not json")
    layout.write()
    policy = load_policy(team)
    team.write_text("extends: default\nname: team, changed\n")
    with pytest.raises(UsageError, match="changed while it was in use"):
        policy.evaluate(TASK, "dbt-expert")


def test_bucket_of_is_stable() -> None:
    """The bucket of a form is the same in every process and Python version (not ``hash()``): pinned."""
    assert [sections.bucket_of(w, 97) for w in ("dbt", "snowflake", "ä", "")] == \
        [sections.bucket_of(w, 97) for w in ("dbt", "snowflake", "ä", "")]
    assert sections.bucket_of("dbt", 1) == 0
    assert [sections.bucket_of(w, 1000) for w in ("dbt", "snowflake")] == [
        int.from_bytes(sections.sha256(w.encode()).digest()[:4], "little") % 1000 for w in ("dbt", "snowflake")]


@pytest.mark.parametrize("seen_max", [None, 40])
def test_a_warm_detector_from_sections_gives_the_recorded_detections(cache_dir: Path, monkeypatch,
                                                                      seen_max: int | None) -> None:
    """The default policy from a warm entry (every part read from sections as tasks need it) gives the
    detections tests/data/detection-equivalence.json records — 2,000 generated tasks, the edge cases and the
    golden examples — across the matcher's switch to one RE2 set, and (``seen_max``) when the word index is
    read whole after a few words."""
    from test_detect_equivalence import _expected, digests, sources

    from engine.detect import words

    if seen_max is not None:
        monkeypatch.setattr(words, "SEEN_MAX", seen_max)
    load_policy("default")  # written
    warm = load_policy("default")
    assert type(warm._plan) is cache.StoredPlan
    expected = _expected()
    corpora = {name: texts for name, _, texts in sources() if name in ("generated", "edges", "golden examples")}
    for name in ("golden examples", "edges", "generated"):
        assert digests(warm, corpora[name]) == expected[name]["digests"], name
    index = warm.detector._matcher.index
    assert index._stored is None  # read whole (every bucket was read, or SEEN_MAX words seen): no more look-ups


def _refused_items() -> list:
    lines = (DATA / "cache-signal-items-refused.jsonl").read_text(encoding="utf-8").splitlines()
    return [pytest.param(case["item"], id=case["why"]) for case in map(json.loads, lines)]


@pytest.mark.parametrize("item", _refused_items())
def test_a_chunk_of_signals_with_an_item_of_the_wrong_shape_is_refused(item: object) -> None:
    """What a cache holds comes from many hands: a chunk of signals is read only when every item has the types
    validation gave it (else it is served from a fresh compilation); items that are well formed pass."""
    check = sections.signals_check({"simple", "medium", "complex", "multi-system"})
    good = [{"id": "a", "words": ["x"], "in": "ask", "weights": {"simple": 1, "complex": -0.5}},
            {"id": "b", "pattern": "y+", "group": "system", "description": None},
            {"id": "c", "when": "words > 3", "boost": 1, "inflect": False}]
    assert check(good, 0) is good
    assert check([*good, item], 0) is None
