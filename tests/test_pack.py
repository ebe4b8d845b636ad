"""Memory packing: scopes from the layout, selection within the allocation, the index, bad inputs."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine import load_policy
from engine.expr import compile as compile_expression
from engine.model import DEFAULT_RELEVANCE, RELEVANCE_FEATURES, Allocation
from engine.pack.index import MemoryIndex, index_location, split_sections, touch_sidecars, trusted
from engine.pack.packer import Packer, query_terms
from engine.pack.settings import MemorySettings, glob_regex, literal_prefix
from engine.pack.tokens import estimate
from memory_files import words, write

AGENT = "specialists/dbt-expert"
NOW = 1_800_000_000.0


def packer(relevance: str = DEFAULT_RELEVANCE, **options) -> Packer:
    settings = MemorySettings(relevance=relevance, **options)
    program = compile_expression(relevance, names=RELEVANCE_FEATURES)
    return Packer(settings, program, ("global", "agent_recent", "agent_patterns"))


def allocation(budget: int, scopes: dict[str, int], agent: str = AGENT) -> Allocation:
    return Allocation(agent, "p", "medium", 1.0, budget, False, MappingProxyType(scopes))


def loaded(pack) -> list[str]:
    return [item.path + (f"#{item.section}" if item.section else "") for item in pack.items]


# -- the layout ---------------------------------------------------------------------------------------

def test_default_sources_follow_the_seed_layout(tmp_path: Path) -> None:
    for rel in ("patterns/a.md", "recent/b.md", f"{AGENT}/patterns/c.md", f"{AGENT}/recent/d.md",
                f"{AGENT}/intermediate/e.md", "specialists/snowflake-expert/patterns/f.md", "notes/g.md",
                "roles/dbt-expert/patterns/h.md"):
        write(tmp_path, rel, words(10) + rel + "\n")
    pack = packer().pack(allocation(3000, {"global": 1000, "agent_recent": 1000, "agent_patterns": 1000}),
                         "lorem", root=tmp_path, now=NOW)
    assert {(i.path, i.scope) for i in pack.items} == {
        ("patterns/a.md", "global"), ("recent/b.md", "global"), (f"{AGENT}/patterns/c.md", "agent_patterns"),
        (f"{AGENT}/recent/d.md", "agent_recent"), (f"{AGENT}/intermediate/e.md", "agent_recent")}


@pytest.mark.parametrize(("glob", "path", "matches"), [
    ("patterns/**", "patterns/a.md", True),
    ("patterns/**", "patterns/deep/er/a.md", True),
    ("patterns/**", "patternsx/a.md", False),
    ("patterns/*.md", "patterns/deep/a.md", False),
    ("**/notes.md", "a/b/notes.md", True),
    ("**/notes.md", "notes.md", True),
    ("recent", "recent/x.md", True),
    ("a?c/[!x]*.md", "abc/y1.md", True),
    ("a?c/[!x]*.md", "abc/x1.md", False),
])
def test_glob(glob: str, path: str, matches: bool) -> None:
    import re

    assert bool(re.fullmatch(glob_regex(glob), path)) is matches
    assert path.startswith(literal_prefix(glob)) or not matches


def test_query_terms_drop_stop_words_and_keep_context() -> None:
    assert query_terms("Why is the fct_orders model slow?", {"technologies": ["Snowflake"], "n": 3}) == [
        "fct", "orders", "model", "slow", "snowflake"]


# ASCII punctuation, digits, letters, "_", and characters beyond ASCII that are and are not word characters
_CHARACTERS = list("aZ09_ -.,'?!\t\n{}[]*/\\") + ["é", "É", "ß", "İ", "²", "٣", "中", "·", "\u00a0", "\u200b", "K"]
_TEXT = st.text(st.sampled_from(_CHARACTERS), max_size=40)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_a_task_is_cut_into_the_words_the_expression_finds(text: str) -> None:
    """query_terms cuts ASCII text without re: the same words, in the same order, as ``[^\\W_]{2,}``."""
    import re

    from engine.pack.packer import MAX_TERMS, _STOP, _words

    assert _words(text) == re.findall(r"[^\W_]{2,}", text)
    expected = list(dict.fromkeys(w for w in re.findall(r"[^\W_]{2,}", text.lower()) if w not in _STOP))
    assert query_terms(text) == expected[:MAX_TERMS]


@settings(max_examples=400, deadline=None)
@given(st.text(st.sampled_from(list("ab/{}*?[]_")), max_size=24), _TEXT, _TEXT)
def test_a_template_is_filled_as_the_expression_fills_it(template: str, agent_type: str, agent_name: str) -> None:
    """fill() finds the placeholders without re: each ``\\{([^{}]*)\\}`` match, left to right; glob characters in
    the agent's name made literal."""
    import re

    from engine.pack.settings import fill

    agent = f"{agent_type}/{agent_name}"
    kind, _, name = agent.rpartition("/")
    escaped = {"agent_type": re.sub(r"([*?\[\]])", r"[\1]", kind), "agent_name": re.sub(r"([*?\[\]])", r"[\1]", name)}
    for placeholder in ("agent_type", "agent_name", "other", ""):
        template_with = template.replace("{}", "{" + placeholder + "}", 1)
        expected = re.sub(r"\{([^{}]*)\}", lambda m: escaped.get(m.group(1), m.group(0)), template_with)
        assert fill(template_with, agent) == expected


# -- selection ----------------------------------------------------------------------------------------

def test_a_file_that_does_not_fit_is_skipped_not_a_stop(tmp_path: Path) -> None:
    write(tmp_path, "patterns/big.md", words(500, "orders"))  # the most relevant, and too large
    write(tmp_path, "patterns/small1.md", words(50, "orders") + words(50))
    write(tmp_path, "patterns/small2.md", words(60))
    pack = packer().pack(allocation(300, {"global": 300}), "orders", root=tmp_path, now=NOW)
    assert loaded(pack) == ["patterns/small1.md", "patterns/small2.md"]
    assert [(s.path, s.reason.split(" (")[0]) for s in pack.skipped] == [("patterns/big.md", "does not fit")]
    assert pack.tokens <= 300


def test_pinned_items_load_first(tmp_path: Path) -> None:
    write(tmp_path, "patterns/relevant.md", words(80, "orders"))
    write(tmp_path, "patterns/rules.md", words(80, "other"))
    pack = packer(pinned=("patterns/rules.md",)).pack(allocation(100, {"global": 100}), "orders", root=tmp_path,
                                                      now=NOW)
    assert loaded(pack) == ["patterns/rules.md"]
    assert pack.items[0].pinned and "pinned" in pack.items[0].why


def test_a_large_file_loads_its_relevant_section(tmp_path: Path) -> None:
    text = "# Guide\n\n" + "".join(f"## Part {i}\n\n{words(300, 'filler')}\n" for i in range(8))
    text += "## Snapshots\n\n" + words(200, "snapshot") + "\n"
    write(tmp_path, f"{AGENT}/patterns/guide.md", text)
    pack = packer(split_above=1000).pack(allocation(600, {"agent_patterns": 600}), "snapshot strategy",
                                         root=tmp_path, now=NOW)
    first = pack.items[0]
    assert (first.section, first.scope) == ("Snapshots", "agent_patterns")
    assert first.file_tokens > 2000 and first.tokens < 300
    assert first.text.startswith("## Snapshots")
    assert pack.tokens <= 600


def test_identical_content_loads_once(tmp_path: Path) -> None:
    write(tmp_path, "patterns/a.md", words(40, "orders"))
    write(tmp_path, f"{AGENT}/patterns/copy-of-a.md", words(40, "orders"))
    pack = packer().pack(allocation(1000, {"global": 500, "agent_patterns": 500}), "orders", root=tmp_path, now=NOW)
    assert len(pack.items) == 1
    assert [s.reason for s in pack.skipped] == ["duplicate of content already loaded"]


def test_leftover_spills_in_the_policy_order(tmp_path: Path) -> None:
    for i in range(4):
        write(tmp_path, f"{AGENT}/patterns/p{i}.md", words(90, "word" + "abcd"[i]))
    write(tmp_path, f"{AGENT}/recent/r.md", words(90, "recent"))
    scopes = {"global": 200, "agent_recent": 100, "agent_patterns": 100}  # global has no files at all
    pack = packer().pack(allocation(400, scopes), "x", root=tmp_path, now=NOW)
    # 10 + 10 + 200 tokens left over: two more 90-token pattern files
    assert pack.used == {"global": 0, "agent_recent": 90, "agent_patterns": 270}
    assert pack.spilled == {"global": 0, "agent_recent": 0, "agent_patterns": 180}
    assert sum(1 for i in pack.items if i.why.endswith("spilled")) == 2
    none = packer(spill=()).pack(allocation(400, scopes), "x", root=tmp_path, now=NOW)
    assert none.used == {"global": 0, "agent_recent": 90, "agent_patterns": 90}


def test_relevance_ranks_by_lexical_score(tmp_path: Path) -> None:
    write(tmp_path, "patterns/unrelated.md", words(50, "marketing"))
    write(tmp_path, "patterns/incremental.md", "# Incremental models\n\n" + words(40, "incremental"))
    write(tmp_path, "patterns/partly.md", words(40, "merge") + "incremental\n")
    pack = packer("lexical").pack(allocation(90, {"global": 90}), "incremental models", root=tmp_path, now=NOW)
    assert loaded(pack) == ["patterns/incremental.md"]
    assert pack.items[0].score == 1.0


store = st.lists(st.tuples(st.sampled_from(["patterns", "recent", f"{AGENT}/patterns", f"{AGENT}/recent",
                                            f"{AGENT}/intermediate"]),
                           st.integers(0, 400), st.sampled_from(["orders", "model", "slow", "x"]),
                           st.booleans()),
                 min_size=0, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=store, budget=st.integers(0, 3000), weights=st.lists(st.integers(0, 10), min_size=3, max_size=3),
       spill=st.permutations(["global", "agent_recent", "agent_patterns"]).map(tuple) | st.just(()))
def test_never_over_budget(tmp_path_factory, files, budget, weights, spill) -> None:
    from engine.budget import split

    root = tmp_path_factory.mktemp("store")
    for n, (folder, size, word, headed) in enumerate(files):
        text = "".join(f"# Part {k}\n\n{words(size // 4 + 1, word)}" for k in range(4)) if headed else words(size, word)
        write(root, f"{folder}/f{n}.md", text if n % 5 else words(size, "same"))  # some identical files
    total = sum(weights) or 1
    scopes = split(budget, {"global": weights[0] / total, "agent_recent": weights[1] / total,
                            "agent_patterns": weights[2] / total})
    pack = packer(split_above=150, spill=spill).pack(allocation(budget, scopes), "orders slow", root=root, now=NOW)
    assert pack.tokens <= budget
    assert sum(pack.used.values()) == pack.tokens
    for scope, used in pack.used.items():
        assert used <= scopes.get(scope, 0) + pack.spilled[scope]
        assert pack.spilled[scope] == 0 or scope in spill
    assert len({i.text for i in pack.items}) == len(pack.items)


# -- the index ----------------------------------------------------------------------------------------

def make_index(root: Path, location: str | None = None, counter=estimate) -> MemoryIndex:
    return MemoryIndex(str(root), counter, "estimate", 2000, 1024 * 1024, location=location)


def test_the_index_is_incremental(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    for i in range(5):
        write(root, f"patterns/p{i}.md", words(20 + i))
    index = make_index(root, str(tmp_path / "i.sqlite"))
    assert index.refresh().changed == 5
    assert index.refresh()[1:3] == (0, 0)
    write(root, "patterns/p1.md", words(99))
    (root / "patterns/p2.md").unlink()
    stats = index.refresh()
    assert (stats.changed, stats.removed, stats.files) == (1, 1, 4)
    write(root, "patterns/p3.md", words(23), meta={"use_count": 7})  # same text, a sidecar appears
    os.utime(root / "patterns/p3.md", ns=(1, index.db.execute(
        "SELECT mtime_ns FROM files WHERE path = 'patterns/p3.md'").fetchone()[0]))
    assert index.refresh().changed == 1
    assert index.db.execute("SELECT use_count FROM files WHERE path = 'patterns/p3.md'").fetchone() == (7,)
    assert index.count()[0] == 4


def test_a_corrupt_index_is_rebuilt(tmp_path: Path, caplog) -> None:
    root = tmp_path / "memory"
    write(root, "patterns/a.md", words(10))
    location = tmp_path / "i.sqlite"
    location.write_bytes(b"this is not a database at all\0" * 200)
    with caplog.at_level(logging.WARNING, "engine.pack"):
        index = make_index(root, str(location))
    assert index.rebuilt and "rebuilt" in caplog.text
    assert index.refresh().files == 1 and index.count()[0] == 1


def test_the_index_survives_concurrent_readers_and_a_busy_writer(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    write(root, "patterns/a.md", words(10, "alpha"))
    location = str(tmp_path / "i.sqlite")
    first, second = make_index(root, location), make_index(root, location)
    first.refresh()
    write(root, "patterns/b.md", words(10, "beta"))
    holder = sqlite3.connect(location, timeout=0.1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing
    first.db.execute("PRAGMA busy_timeout = 50")
    stats = first.refresh()  # uses the index as it stands
    assert stats.changed == 0 and first.lexical(["alpha"])
    holder.execute("ROLLBACK")
    holder.close()
    assert second.refresh().changed == 1 and first.lexical(["beta"])


def test_cache_trust_rules(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    place = index_location("/some/root")
    assert place.startswith(str(tmp_path / "cache" / "memory")) and place.endswith(".sqlite")
    os.symlink(tmp_path / "elsewhere.sqlite", place)
    assert index_location("/some/root") == ":memory:"  # a symlink is not trusted
    os.unlink(place)
    os.chmod(tmp_path / "cache" / "memory", 0o777)
    assert not trusted(str(tmp_path / "cache" / "memory"))
    assert index_location("/some/root") == ":memory:"
    monkeypatch.setenv("CTXBUDGET_NO_CACHE", "1")
    assert index_location("/some/root") == ":memory:"


def test_sections_split_at_headings_outside_code() -> None:
    text = "intro\n# One\nbody\n```\n# not a heading\n```\n## Two ##\nmore\n"
    assert [h for h, _ in split_sections(text)] == ["", "One", "Two"]
    assert "".join(t for _, t in split_sections(text)) == text


# -- bad input ----------------------------------------------------------------------------------------

def test_bad_files_are_skipped_with_reasons(tmp_path: Path, caplog, monkeypatch) -> None:
    root = tmp_path / "memory"
    write(root, "patterns/good.md", words(10, "orders"))
    (root / "patterns/binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0data")
    (root / "patterns/latin1.md").write_bytes("caf\xe9 orders\n".encode("latin-1"))
    write(root, "patterns/unreadable.md", words(5))
    (root / "patterns/empty.md").write_text("\n\n", encoding="utf-8")
    with open(root / "patterns/huge.md", "wb") as handle:  # 50 MB, sparse: bounded, never read whole
        handle.truncate(50 * 1024 * 1024)
    write(root, "patterns/sidecar.md", words(10, "sidecar"))
    (root / "patterns/sidecar.metadata.json").write_text("{not json", encoding="utf-8")
    outside = write(tmp_path, "outside/secret.md", words(10, "secret"))
    os.symlink(outside, root / "patterns/link-out.md")
    os.symlink(root / "patterns/good.md", root / "patterns/link-in.md")
    os.symlink(tmp_path / "outside", root / "patterns/folder-link")

    import engine.pack.index as index_module

    real_open = open

    def failing_open(path, *args, **kwargs):
        if str(path).endswith("unreadable.md"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(index_module, "open", failing_open, raising=False)
    import tracemalloc

    tracemalloc.start()
    with caplog.at_level(logging.WARNING, "engine.pack"):
        pack = packer(max_file_bytes=4 * 1024 * 1024).pack(allocation(5000, {"global": 5000}), "orders secret",
                                                           root=root, now=NOW)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024
    reasons = {s.path: s.reason for s in pack.skipped}
    assert reasons == {
        "patterns/binary.md": "binary", "patterns/latin1.md": "not UTF-8 text",
        "patterns/unreadable.md": "unreadable (Permission denied)", "patterns/empty.md": "empty",
        "patterns/huge.md": "too large (over 4,194,304 bytes)",
        "patterns/link-out.md": "symlink leaving the memory root (not followed)",
        "patterns/link-in.md": "duplicate of content already loaded"}
    assert sorted(loaded(pack)) == ["patterns/good.md", "patterns/sidecar.md"]
    assert pack.stats.corrupt_sidecars == ("patterns/sidecar.md",)
    assert "corrupt sidecar" in caplog.text
    assert "secret" not in "".join(i.text for i in pack.items)
    # the manifest writes the skipped items as to_dict writes each Skipped record (it builds the dicts itself)
    from engine.records import to_dict

    assert pack.manifest()["skipped"] == [to_dict(s) for s in pack.skipped]

    big = tmp_path / "big"
    write(big, "patterns/large.md", "# Large\n\n" + "\n\n".join(f"## Part {i}\n\n" + words(120, "orders")
                                                                for i in range(4)))
    write(big, "patterns/small.md", words(30, "orders"))
    tight = packer(split_above=200).pack(allocation(150, {"global": 150}), "orders", root=big, now=NOW)
    assert any("does not fit" in s.reason for s in tight.skipped) and any(s.section for s in tight.skipped)
    assert tight.manifest()["skipped"] == [to_dict(s) for s in tight.skipped]


def test_names_that_are_not_utf8_are_skipped_with_reasons(tmp_path: Path, capsys) -> None:
    """A memory file or folder whose name is not UTF-8 (the index holds names as text) is skipped and named
    with its odd bytes as \\xNN; the rest packs, and `index` and `pack --format json` print it."""
    from engine.cli import main

    root = tmp_path / "memory"
    write(root, "patterns/good.md", words(10, "orders"))
    base = os.fsencode(root / "patterns")
    with open(os.path.join(base, b"odd\xff.md"), "w", encoding="utf-8") as handle:
        handle.write(words(10, "orders"))
    os.mkdir(os.path.join(base, b"dir\xfe"))
    with open(os.path.join(base, b"dir\xfe", b"inner.md"), "w", encoding="utf-8") as handle:
        handle.write(words(10, "orders"))
    pack = packer().pack(allocation(5000, {"global": 5000}), "orders", root=root, now=NOW)
    assert {s.path: s.reason for s in pack.skipped} == {
        "patterns/odd\\xff.md": "name is not UTF-8 text (not indexed)",
        "patterns/dir\\xfe": "name is not UTF-8 text (not indexed)"}
    assert loaded(pack) == ["patterns/good.md"]
    assert main(["index", "--root", str(root), "--json"]) == 0
    assert {s["path"] for s in json.loads(capsys.readouterr().out)["skipped"]} == {"patterns/odd\\xff.md",
                                                                                 "patterns/dir\\xfe"}


def test_a_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    from engine.diagnostics import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        packer().pack(allocation(10, {"global": 10}), "x", root=tmp_path / "nope")


# -- the policy API and closing the loop ------------------------------------------------------------------

def test_policy_pack_records_provenance(tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "usage.jsonl"
    root = tmp_path / "memory"
    write(root, f"{AGENT}/patterns/incremental.md", words(30, "incremental"), meta={"use_count": 2})
    policy = load_policy("default")
    pack = policy.pack("dbt-expert", task="Why did last night's dbt run fail?", root=root, log=log)
    assert pack.allocation.tier == "complex" and pack.budget == 30000
    [record] = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["tier_source"] == "detected" and 0 < record["confidence"] <= 1
    assert "dbt" in record["signals"] and record["items"] == 1 and record["task"] is None
    assert record["task_hash"].startswith("sha256:") and len(record["task_hash"]) == 23
    assert record["scopes"] == {"agent_patterns": pack.tokens} and record["tokens_loaded"] == pack.tokens
    given = policy.pack("dbt-expert", tier="simple", root=root, log=log, budget=100)
    record = json.loads(log.read_text().splitlines()[-1])
    assert (record["tier_source"], record["confidence"], record["budget"]) == ("given", None, 100)
    assert given.allowances == {"global": 20, "agent_recent": 30, "agent_patterns": 50}


def test_log_task_writes_the_text(tmp_path: Path) -> None:
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text("version: 1\nextends: default\nmemory: {log_task: true}\n", encoding="utf-8")
    write(tmp_path / "m", "patterns/a.md", words(5))
    log = tmp_path / "usage.jsonl"
    load_policy(str(policy_file)).pack("dbt-expert", task="List all models", root=tmp_path / "m", log=log)
    assert json.loads(log.read_text())["task"] == "List all models"


# Sidecars come from many hands: every value a JSON parser accepts, and some it should not (Python's reads
# NaN and Infinity), is either read or the sidecar is corrupt (ignored, counted, its file still loads).
# tests/data/memory-sidecars-hostile.txt: "read" or "corrupt", a tab, the sidecar's text (one a line).
HOSTILE_SIDECARS = [(text, outcome == "corrupt") for outcome, text in (
    line.split("\t", 1) for line in (Path(__file__).parent / "data" / "memory-sidecars-hostile.txt")
    .read_text(encoding="utf-8").splitlines())]


@pytest.mark.parametrize(("text", "corrupt"), HOSTILE_SIDECARS, ids=[t[:40] for t, _ in HOSTILE_SIDECARS])
def test_hostile_sidecars_are_read_or_corrupt_never_a_crash(tmp_path: Path, text: str, corrupt: bool) -> None:
    write(tmp_path, "patterns/a.md", words(10, "orders"))
    (tmp_path / "patterns/a.metadata.json").write_text(text, encoding="utf-8")
    pack = packer().pack(allocation(5000, {"global": 5000}), "orders", root=tmp_path, now=NOW)
    assert loaded(pack) == ["patterns/a.md"]
    assert pack.stats.corrupt_sidecars == (("patterns/a.md",) if corrupt else ())
    if not corrupt:
        assert touch_sidecars(str(tmp_path), ["patterns/a.md"]) == ["patterns/a.md"]
        again = packer().pack(allocation(5000, {"global": 5000}), "orders", root=tmp_path, now=NOW)
        assert again.stats.corrupt_sidecars == ()  # what touch wrote back is still a good sidecar


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/null", "symlink to /dev/zero"])
def test_a_sidecar_that_is_not_a_regular_file_is_corrupt_not_a_hang(tmp_path: Path, kind: str) -> None:
    # A FIFO named foo.metadata.json used to block `pack` and `index` forever in open() (and a hook until its
    # timeout); a device was opened, which may act on being opened. Neither is read now: the sidecar is corrupt.
    write(tmp_path, "patterns/a.md", words(10, "orders"))
    sidecar = tmp_path / "patterns/a.metadata.json"
    if kind == "fifo":
        os.mkfifo(sidecar)
    else:
        sidecar.symlink_to(kind.rsplit(" ", 1)[1])
    pack = packer().pack(allocation(5000, {"global": 5000}), "orders", root=tmp_path, now=NOW)
    assert loaded(pack) == ["patterns/a.md"]
    assert pack.stats.corrupt_sidecars == ("patterns/a.md",)
    assert touch_sidecars(str(tmp_path), ["patterns/a.md"]) == []  # left alone, not waited on
    assert not sidecar.is_file()


def test_touch_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    # Anyone who can write to a shared memory root could plant foo.metadata.json.<pid>.tmp -> a file of yours;
    # --touch opened that name with open(..., "w") and wrote the sidecar over the symlink's target.
    write(tmp_path, "patterns/a.md", words(5), meta={"use_count": 1})
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    sidecar = tmp_path / "patterns/a.metadata.json"
    (tmp_path / f"patterns/a.metadata.json.{os.getpid()}.tmp").symlink_to(victim)
    assert touch_sidecars(str(tmp_path), ["patterns/a.md"]) == ["patterns/a.md"]
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert json.loads(sidecar.read_text())["use_count"] == 2 and not sidecar.is_symlink()


def test_touch_saturates_use_count_at_what_the_index_holds(tmp_path: Path) -> None:
    from engine.pack.index import MAX_USE_COUNT

    write(tmp_path, "patterns/a.md", words(5), meta={"use_count": MAX_USE_COUNT})
    assert touch_sidecars(str(tmp_path), ["patterns/a.md"]) == ["patterns/a.md"]
    assert json.loads((tmp_path / "patterns/a.metadata.json").read_text())["use_count"] == MAX_USE_COUNT


def test_touch_updates_sidecars_atomically(tmp_path: Path) -> None:
    write(tmp_path, "patterns/a.md", words(5), meta={"use_count": 4, "confidence": 0.9})
    write(tmp_path, "patterns/b.md", words(5, "b"))
    (tmp_path / "patterns/c.metadata.json").write_text("[]", encoding="utf-8")
    write(tmp_path, "patterns/c.md", words(5, "c"))
    from datetime import datetime, timezone

    touched = touch_sidecars(str(tmp_path), ["patterns/a.md", "patterns/b.md", "patterns/c.md"],
                             datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc))
    assert touched == ["patterns/a.md", "patterns/b.md"]  # c's sidecar is not an object: left alone
    assert json.loads((tmp_path / "patterns/a.metadata.json").read_text()) == {
        "use_count": 5, "confidence": 0.9, "last_used": "2026-11-30T12:00:00Z"}
    assert json.loads((tmp_path / "patterns/b.metadata.json").read_text())["use_count"] == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_policy_without_a_memory_section_packs_with_the_defaults(tmp_path: Path) -> None:
    policy_file = tmp_path / "p.yaml"
    text = Path(load_policy("default").files[0][0]).read_text(encoding="utf-8")
    start = text.index("\nmemory:")
    end = text.index("\n# Profile recommendations")
    policy_file.write_text(text[:start] + text[end:], encoding="utf-8")
    write(tmp_path / "m", "patterns/a.md", words(5))
    pack = load_policy(str(policy_file)).pack("dbt-expert", tier="simple", root=tmp_path / "m")
    assert loaded(pack) == ["patterns/a.md"]


def test_the_estimator_is_close_to_an_exact_counter() -> None:
    bpe = pytest.importorskip("bpe_openai")
    from engine.resources import sample_memory_dir

    encoding = bpe.get_encoding("cl100k_base")
    errors = []
    for path in Path(sample_memory_dir()).rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        exact = len(encoding.encode_ordinary(text))
        errors.append(abs(estimate(text) - exact) / exact)
    assert len(errors) >= 30
    assert sum(errors) / len(errors) < 0.10 and max(errors) < 0.25


def test_exact_counters_count_offline(monkeypatch) -> None:
    pytest.importorskip("bpe_openai")
    from engine.pack.tokens import counter

    assert counter("cl100k")("hello world") == 2
    assert counter("o200k")("hello world") == 2


def test_an_index_that_turns_corrupt_in_use_is_rebuilt(tmp_path: Path, monkeypatch, caplog) -> None:
    write(tmp_path, "patterns/a.md", words(10, "orders"))
    p = packer()
    index = p.index(tmp_path)
    real = type(index).candidates
    calls = []

    def corrupt_once(self, prefixes):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return real(self, prefixes)

    monkeypatch.setattr(type(index), "candidates", corrupt_once)
    with caplog.at_level(logging.WARNING, "engine.pack"):
        pack = p.pack(allocation(100, {"global": 100}), "orders", root=tmp_path, now=NOW)
    assert loaded(pack) == ["patterns/a.md"] and pack.stats.rebuilt
    assert "malformed" in caplog.text


@pytest.mark.parametrize("where", ["commit", "open"])
def test_a_full_disk_moves_the_index_into_memory(tmp_path: Path, monkeypatch, caplog, where: str) -> None:
    """The index's file cannot be written (a full disk): when opening it, or when a refresh commits — SQLite
    then rolls back by itself. The index is built in memory for the process, with a warning, and the pack is
    the pack the file would have given."""
    root = tmp_path / "memory"
    write(root, "patterns/a.md", words(10, "orders"))
    if where == "commit":
        p = packer()
        p.pack(allocation(100, {"global": 100}), "orders", root=root, now=NOW)  # the file exists, then fills up
        write(root, "patterns/b.md", words(8, "orders") + " refunds")
        real = sqlite3.Connection.execute

        class Full(sqlite3.Connection):
            def execute(self, sql, *args):
                if sql == "COMMIT":
                    real(self, "ROLLBACK")  # as SQLite does when it cannot write the commit
                    raise sqlite3.OperationalError("database or disk is full")
                return real(self, sql, *args)

        index = p.index(root)
        index.db.close()
        index.db = sqlite3.connect(index.location, isolation_level=None, factory=Full)
    else:
        import engine.pack.index as index_module

        real_connect = sqlite3.connect

        def full(location, *args, **kwargs):
            if location != ":memory:":
                raise sqlite3.OperationalError("database or disk is full")
            return real_connect(location, *args, **kwargs)

        monkeypatch.setattr(index_module.sqlite3, "connect", full)
        p = packer()
    with caplog.at_level(logging.WARNING, "engine.pack"):
        pack = p.pack(allocation(100, {"global": 100}), "orders", root=root, now=NOW)
    assert pack.stats.location == ":memory:" and pack.stats.rebuilt
    assert sorted(loaded(pack)) == (["patterns/a.md", "patterns/b.md"] if where == "commit" else ["patterns/a.md"])
    assert "in memory" in caplog.text and "full" in caplog.text


def test_the_first_refresh_indexes_the_whole_root(tmp_path: Path) -> None:
    """BM25's statistics are the whole store's: the first pack reads every file, later ones only the agent's."""
    write(tmp_path, "patterns/a.md", words(10, "orders"))
    write(tmp_path, "specialists/other/patterns/b.md", words(10, "orders"))
    p = packer()
    first = p.pack(allocation(100, {"global": 100}), "orders", root=tmp_path, now=NOW)
    assert first.stats.files == 2
    write(tmp_path, "specialists/other/patterns/c.md", words(10, "other"))
    second = p.pack(allocation(100, {"global": 100}), "orders", root=tmp_path, now=NOW)
    assert (second.stats.files, second.stats.changed) == (1, 0)  # patterns/ and the agent's folders only


def test_refresh_reports_progress_in_bytes(tmp_path: Path) -> None:
    for i in range(3):
        write(tmp_path, f"patterns/p{i}.md", words(100 + i))
    calls: list[tuple[int, int]] = []
    make_index(tmp_path, ":memory:").refresh(lambda done, total: calls.append((done, total)))
    total = sum(p.stat().st_size for p in tmp_path.rglob("*.md"))
    assert len(calls) == 3 and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_pack_is_a_record_that_says_why_its_usage_record_was_not_written(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    write(root, f"{AGENT}/patterns/incremental.md", words(30, "incremental"))
    write(root, f"{AGENT}/patterns/huge.md", words(3000, "incremental"))
    (tmp_path / "folder.jsonl").mkdir()  # not a file: the record cannot be written, the pack stands
    policy = load_policy("default")
    pack = policy.pack("dbt-expert", tier="simple", root=root, log=tmp_path / "folder.jsonl", budget=200)
    assert pack.log_error.startswith(f"cannot write the usage record to {tmp_path / 'folder.jsonl'}: ")
    assert loaded(pack) == [f"{AGENT}/patterns/incremental.md"]
    with pytest.raises(AttributeError):
        pack.log_error = None  # type: ignore[misc]
    [skipped] = pack.skipped
    assert skipped.path == f"{AGENT}/patterns/huge.md" and skipped.section is None
    assert skipped.reason.startswith("does not fit (") and "left of agent_patterns's " in skipped.reason
    assert pack.manifest()["skipped"] == [{"path": skipped.path, "section": None, "reason": skipped.reason}]
    written = policy.pack("dbt-expert", tier="simple", root=root, log=tmp_path / "usage.jsonl")
    assert written.log_error is None and written._replace(log_error="x").items == written.items


# -- token estimates: the byte-level path counts what the expression counts --------------------------------

ESTIMATE_CASES = (Path(__file__).parent / "data" / "token-estimate-hostile.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("line", ESTIMATE_CASES.splitlines(), ids=range(len(ESTIMATE_CASES.splitlines())))
def test_the_fast_estimate_counts_what_the_expression_counts(line: str) -> None:
    from engine.pack.tokens import _estimate_pieces

    assert estimate(line) == _estimate_pieces(line)


def test_the_fast_estimate_agrees_on_whole_files() -> None:
    from engine.pack.tokens import _estimate_pieces
    from engine.resources import sample_memory_dir

    texts = [p.read_text(encoding="utf-8") for p in sorted(Path(sample_memory_dir()).rglob("*.md"))]
    texts += [ESTIMATE_CASES, "x" * 100_000 + " " + "7" * 5000, "", " ", "    " * 9]
    assert [estimate(t) for t in texts] == [_estimate_pieces(t) for t in texts]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("aZ9_ \t\n.,-—’é²①٣\u00a0\x1c") + ["abcdefghij", "0123456789", "    "]),
                max_size=60).map("".join) | st.text(max_size=80))
def test_the_fast_estimate_agrees_on_random_text(text: str) -> None:
    from engine.pack.tokens import _estimate_pieces

    assert estimate(text) == _estimate_pieces(text)


# -- a refresh within a deadline ---------------------------------------------------------------------------

class FileClock:
    """A clock that advances by one each time a file is counted (``counter``): deadlines in files, not seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def counter(self, text: str) -> int:
        self.now += 1
        return estimate(text)


def big_root(root: Path, agent_files: int = 6, other_files: int = 30) -> None:
    for i in range(other_files):
        write(root, f"recent/{i % 3}/note{i:03d}.md", words(20, f"other{i}"))
        write(root, f"specialists/snowflake-expert/patterns/s{i:03d}.md", words(20, f"snow{i}"))
    for i in range(agent_files):
        write(root, f"{AGENT}/patterns/incremental{i}.md", words(30 + i, "incremental"))


def test_a_refresh_past_its_deadline_keeps_what_it_read_and_the_next_goes_on(tmp_path: Path) -> None:
    from engine.pack.index import Deadline

    root = tmp_path / "memory"
    big_root(root)
    clock = FileClock()
    location = str(tmp_path / "i.sqlite")
    index = make_index(root, location, counter=clock.counter)
    stats = index.refresh(deadline=Deadline(10.5, clock))  # time for 11 files of 66
    assert stats.partial and (stats.changed, stats.pending, stats.files) == (11, 55, 66)
    assert index.count()[0] == 11
    again = make_index(root, location, counter=clock.counter)  # another process: continues where it stopped
    stats = again.refresh(deadline=Deadline(20.5, clock))
    assert stats.partial and (stats.changed, stats.pending) == (21, 34) and again.count()[0] == 32
    stats = again.refresh()  # no deadline: to the end
    assert not stats.partial and (stats.changed, stats.pending) == (34, 0)
    whole = make_index(root, str(tmp_path / "whole.sqlite"))
    whole.refresh()
    query = "SELECT f.path, f.tokens, f.hash, s.ord, s.tokens, s.hash FROM files f JOIN sections s ON s.file_id = f.id"
    assert sorted(again.db.execute(query)) == sorted(whole.db.execute(query))
    assert again.lexical(["incremental", "snow3"]) == pytest.approx(whole.lexical(["incremental", "snow3"]))
    assert again.db.execute("SELECT value FROM meta WHERE key = 'complete'").fetchone() == ("1",)


def test_a_refresh_interrupted_mid_chunk_keeps_the_chunks_it_committed(tmp_path: Path, monkeypatch) -> None:
    import engine.pack.index as index_module

    class Interrupted(BaseException):  # as the hook's alarm is: no `except Exception` swallows it
        pass

    root = tmp_path / "memory"
    big_root(root)
    monkeypatch.setattr(index_module, "CHUNK_BYTES", 1)  # one file a transaction
    counted = []

    def counter(text: str) -> int:
        if len(counted) == 7:
            raise Interrupted()
        counted.append(text)
        return estimate(text)

    location = str(tmp_path / "i.sqlite")
    with pytest.raises(Interrupted):
        make_index(root, location, counter=counter).refresh()
    resumed = make_index(root, location)
    assert resumed.count()[0] == 7  # the eighth file's transaction was rolled back
    assert resumed.refresh().changed == 59 and resumed.count()[0] == 66


def test_another_writer_between_two_chunks_is_taken_into_account(tmp_path: Path, monkeypatch) -> None:
    # A refresh commits chunk by chunk; another process (a second hook) may index the same files in between.
    # Inserting them again broke the path's uniqueness: IntegrityError, and the index was rebuilt from nothing.
    import engine.pack.index as index_module

    root = tmp_path / "memory"
    big_root(root)
    monkeypatch.setattr(index_module, "CHUNK_BYTES", 1)  # one file a transaction
    location = str(tmp_path / "i.sqlite")
    first, other = make_index(root, location), make_index(root, location)
    begins = []

    class Connection:  # the first index's connection: the other process writes before its third transaction
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *args):
            if sql == "BEGIN IMMEDIATE":
                begins.append(sql)
                if len(begins) == 3:
                    assert other.refresh().changed == 64
            return self.db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.db, name)

    first.db = Connection(first.db)
    stats = first.refresh()
    assert (stats.changed, stats.pending, stats.partial) == (2, 0, False)  # the rest was the other's
    assert first.count()[0] == 66 and len(begins) == 3
    assert make_index(root, location).refresh().changed == 0


def test_a_walk_past_its_deadline_removes_nothing_it_did_not_see(tmp_path: Path) -> None:
    from engine.pack.index import Deadline

    root = tmp_path / "memory"
    big_root(root)
    location = str(tmp_path / "i.sqlite")
    make_index(root, location).refresh()
    ticks = iter(range(10_000))
    clock = lambda: float(next(ticks))  # noqa: E731 - one tick a folder walked (and a file read)
    stats = make_index(root, location).refresh(deadline=Deadline(4, clock))  # the walk may take 2 ticks
    assert stats.partial and stats.removed == 0 and stats.files < 66
    assert make_index(root, location).count()[0] == 66


def agent_prefixes() -> list[str]:
    return [prefix for spec in packer()._scope_patterns(AGENT)[0] for prefix in spec[2]]


def full_rows(index: MemoryIndex) -> list[tuple]:
    return sorted(index.db.execute("SELECT f.path, f.size, f.mtime_ns, f.sidecar, f.tokens, f.hash, f.status, s.ord, "
                                   "s.heading, s.tokens, s.hash FROM files f JOIN sections s ON s.file_id = f.id"))


@pytest.mark.parametrize("clock_kind", ["files", "calls"])
def test_bounded_refreshes_complete_any_root_a_little_each_time(tmp_path: Path, clock_kind: str) -> None:
    # A hook's refresh of a cold root has a deadline: each one reads the pack's own folders, then goes on
    # walking and reading the rest of the root where the last one stopped. With "calls" the clock ticks at
    # every folder walked and every file read, so even a walk that could never finish in one refresh
    # completes over several.
    from engine.pack.index import Deadline

    root = tmp_path / "memory"
    big_root(root)
    (root / "specialists/snowflake-expert/patterns/s007.md").write_text("\n", encoding="utf-8")  # empty: skipped
    location = str(tmp_path / "i.sqlite")
    clock = FileClock()
    ticks = iter(range(1_000_000))
    refreshes = []
    while len(refreshes) < 60:
        index = make_index(root, location, counter=clock.counter)  # a new process each time
        if clock_kind == "files":
            deadline = Deadline(9.5, clock)  # ten files a refresh
        else:
            deadline = Deadline(24, lambda: float(next(ticks)))
        stats = index.refresh(prefixes=agent_prefixes(), deadline=deadline)
        refreshes.append(stats)
        if not stats.partial:
            break
    assert 3 < len(refreshes) < 60 and all(s.partial for s in refreshes[:-1])
    assert sum(s.changed for s in refreshes) == 66  # each file read once
    whole = make_index(root, str(tmp_path / "whole.sqlite"))
    whole.refresh()
    assert full_rows(index) == full_rows(whole)
    assert index.db.execute("SELECT key FROM meta ORDER BY key").fetchall() == [("complete",), ("settings",)]
    assert index.refresh(prefixes=agent_prefixes(), deadline=Deadline(0.5, clock)).partial is False  # complete


@pytest.mark.parametrize("cursor", ["not json", "{}", '[["../../etc", true]]', '[["/etc", true]]', '[[1, true]]',
                                    '[["recent", "yes"]]'])
def test_a_walk_cursor_that_is_not_one_walks_the_root_again(tmp_path: Path, cursor: str) -> None:
    from engine.pack.index import Deadline

    root = tmp_path / "memory"
    big_root(root)
    location = str(tmp_path / "i.sqlite")
    clock = FileClock()
    index = make_index(root, location, counter=clock.counter)
    assert index.refresh(prefixes=agent_prefixes(), deadline=Deadline(40.5, clock)).partial
    index.db.execute("INSERT OR REPLACE INTO meta VALUES ('walk', ?)", (cursor,))
    stats = make_index(root, location).refresh(prefixes=agent_prefixes(), deadline=Deadline(60))
    assert not stats.partial and stats.changed == 25 and make_index(root, location).count()[0] == 66


def test_a_walk_sees_the_folders_it_is_given_first_first_and_every_file_once(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    big_root(root)
    index = make_index(root, ":memory:")
    plain = index.scan()
    first = f"{AGENT}/patterns"
    found, skipped, listed, walked = index.scan(None, None, [first, "patterns"])
    assert walked and found == plain[0] and skipped == plain[1]
    assert listed == plain[2] | {"patterns"}  # (a folder that does not exist is listed empty)
    assert sorted(list(found)[:6]) == [f"{first}/incremental{i}.md" for i in range(6)]
    assert index.scan([""], None, [""])[0] == plain[0]  # a first folder that is the root: walked once


def test_a_pack_past_its_deadline_loads_from_the_agents_files_first_and_says_so(tmp_path: Path) -> None:
    from engine.pack.index import Deadline
    from engine.pack.result import partial_warning

    root = tmp_path / "memory"
    big_root(root)
    clock = FileClock()
    p = packer()
    p.index(root).counter = clock.counter
    budget = allocation(1000, {"agent_patterns": 1000})
    pack = p.pack(budget, "incremental", root=root, now=NOW, deadline=Deadline(5.5, clock))
    # the pack's own folders are walked first (the agent's, then the global ones), and read until the deadline
    assert pack.partial and (pack.stats.files, pack.stats.changed, pack.stats.pending) == (36, 6, 30)
    # the files this pack can load were walked and read first
    assert sorted(loaded(pack)) == [f"{AGENT}/patterns/incremental{i}.md" for i in range(6)]
    warning = partial_warning(pack.stats)
    assert warning.startswith("memory index incomplete (30 changed files not read yet")
    assert pack.manifest()["warnings"] == [warning]
    done = p.pack(budget, "incremental", root=root, now=NOW)  # no deadline: the index is completed
    assert not done.partial and done.stats.changed == 60 and done.manifest()["warnings"] == []
    fresh = packer().pack(budget, "incremental", root=root, now=NOW)
    assert done.manifest() == fresh.manifest()


def test_the_hook_packs_within_its_deadline(tmp_path: Path) -> None:
    from engine.claude_code.packing import INDEX_SECONDS, index_deadline, pack_items
    from engine.pack.index import Deadline

    project = tmp_path / "project"
    big_root(project / ".claude" / "memory")
    policy = load_policy("default")
    limit = index_deadline(policy)
    assert 0 < limit.at - limit.clock() <= INDEX_SECONDS
    packed = pack_items(policy, "dbt-expert", "incremental", str(project), None, deadline=Deadline(0))
    assert packed.partial and packed.items == ()  # nothing read yet: nothing to load, and said so
    packed = pack_items(policy, "dbt-expert", "incremental", str(project), None)
    assert not packed.partial and packed.items


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)],
                         ids=["022", "027", "077", "002"])
def test_a_new_sidecar_gets_the_mode_the_umask_gives(tmp_path: Path, umask: int, mode: int) -> None:
    write(tmp_path, "patterns/a.md", words(5))
    write(tmp_path, "patterns/b.md", words(5), meta={"use_count": 1})
    os.chmod(tmp_path / "patterns/b.metadata.json", 0o604)
    old = os.umask(umask)
    try:
        assert touch_sidecars(str(tmp_path), ["patterns/a.md", "patterns/b.md"]) == ["patterns/a.md", "patterns/b.md"]
    finally:
        os.umask(old)
    assert (tmp_path / "patterns/a.metadata.json").stat().st_mode & 0o777 == mode  # as open() would make it
    assert (tmp_path / "patterns/b.metadata.json").stat().st_mode & 0o777 == 0o604  # an existing one keeps its own
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_token_estimate_remembers_a_bounded_number_of_characters() -> None:
    """The fast estimate remembers each non-ASCII character's class; a store holding every code point (a hostile
    or a generated one) must not grow that without bound — and counts the same past the bound."""
    from engine.pack import tokens

    text = " ".join(chr(c) * 3 for c in range(0x4E00, 0x4E00 + tokens._STANDINS_MAX + 5000))
    assert tokens.estimate(text) == tokens._estimate_pieces(text)
    assert len(tokens._STANDINS) <= tokens._STANDINS_MAX
