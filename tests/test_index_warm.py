"""A warm refresh of the memory index: the folders' listing digests (the ``folders`` table), what a refresh reads
with them, and the same index and the same packs as a refresh from nothing, whatever changed on disk."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from engine import load_policy
from engine.pack.index import FORMAT, MemoryIndex
from engine.pack.tokens import estimate
from engine.resources import sample_memory_dir
from memory_files import words, write

AGENT = "specialists/dbt-expert"
TASK = "Why is fct_orders slow in the incremental run?"
ROWS_READ = "mtime_ns, sidecar FROM files"  # what a refresh reads to weigh files against their rows


@pytest.fixture(autouse=True)
def _packs_at_one_time(monkeypatch) -> None:
    """The packer's clock stands still: a pack's scores weigh recency against the time it runs, so two packs a
    second apart can round a score differently (0.5156 against 0.5157), which is not what these tests compare."""
    from types import SimpleNamespace

    from engine.pack import packer

    frozen = time.time()
    monkeypatch.setattr(packer, "time", SimpleNamespace(time=lambda: frozen, perf_counter=time.perf_counter))


def make_index(root: Path, location: str) -> MemoryIndex:
    return MemoryIndex(str(root), estimate, "estimate", 2000, 1024 * 1024, location=location)


def dump(index: MemoryIndex) -> tuple[list, list, list]:
    """Everything the index holds about the files, without the row ids."""
    db = index.db
    files = sorted(db.execute("SELECT path, size, mtime_ns, sidecar, sidecar_bad, hash, tokens, sections, use_count, "
                              "last_used, confidence, status FROM files"))
    sections = sorted(db.execute("SELECT f.path, s.ord, s.heading, s.tokens, s.hash FROM sections s "
                                 "JOIN files f ON f.id = s.file_id"))
    texts = sorted(db.execute("SELECT path, heading, body FROM fts"))
    return files, sections, texts


def fresh(root: Path, tmp_path: Path) -> tuple[list, list, list]:
    """The index a refresh from nothing makes of ``root`` now."""
    location = tmp_path / f"fresh-{time.monotonic_ns()}.sqlite"
    index = make_index(root, str(location))
    index.refresh()
    try:
        return dump(index)
    finally:
        index.close()


def folder_rows(index: MemoryIndex) -> dict[str, tuple]:
    return {f: (d, n) for f, d, n in index.db.execute("SELECT folder, digest, files FROM folders")}


def traced(index: MemoryIndex, action, *args, **kwargs) -> tuple[object, list[str]]:
    """``action(*args)`` and the SQL statements ``index`` ran meanwhile (with their arguments)."""
    statements: list[str] = []
    index.db.set_trace_callback(statements.append)
    try:
        return action(*args, **kwargs), statements
    finally:
        index.db.set_trace_callback(None)


def a_root(root: Path) -> Path:
    """The bundled sample store and a few more folders, nested, with sidecars."""
    shutil.copytree(sample_memory_dir(), root)
    for i in range(12):
        write(root, f"{AGENT}/recent/2026/{i % 3:02d}/note{i}.md", f"# Note {i}\n\n" + words(30 + i, f"incremental{i % 4}"),
              meta={"use_count": i, "confidence": 0.5} if i % 4 == 0 else None)
        write(root, f"patterns/deep/{i % 2}/p{i}.md", words(20 + i, f"orders{i % 5}"))
    return root


# -- what a warm refresh reads ---------------------------------------------------------------------------------

def test_a_warm_refresh_of_an_unchanged_root_reads_no_file_rows(tmp_path: Path) -> None:
    root = a_root(tmp_path / "memory")
    index = make_index(root, str(tmp_path / "i.sqlite"))
    index.refresh()
    stats, statements = traced(index, index.refresh)
    assert (stats.changed, stats.removed, stats.files) == (0, 0, index.count()[0])
    assert not [s for s in statements if ROWS_READ in s], statements
    assert not [s for s in statements if s.startswith(("INSERT", "UPDATE", "DELETE", "BEGIN IMMEDIATE"))]


def test_a_warm_refresh_reads_the_rows_of_the_changed_folder_only(tmp_path: Path) -> None:
    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    make_index(root, location).refresh()
    write(root, f"{AGENT}/recent/2026/01/note4.md", words(77, "rewritten"))
    index = make_index(root, location)  # another process, as every hook is
    stats, statements = traced(index, index.refresh)
    assert (stats.changed, stats.removed) == (1, 0)
    reads = [s for s in statements if ROWS_READ in s]
    assert len(reads) == 1 and f"'{AGENT}/recent/2026/01/'" in reads[0], reads
    assert dump(index) == fresh(root, tmp_path)
    # the folder's digest is that of its listing now: the next refresh reads nothing
    _, statements = traced(index, index.refresh)
    assert not [s for s in statements if ROWS_READ in s]


def test_the_pack_of_an_agent_reads_only_its_changed_folders(tmp_path: Path, monkeypatch) -> None:
    root = a_root(tmp_path / "memory")
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    load_policy("default").pack("dbt-expert", task=TASK, root=str(root), log=False)
    write(root, "specialists/snowflake-expert/patterns/new.md", words(40, "warehouse"))  # not the agent's
    write(root, f"{AGENT}/patterns/new.md", words(40, "incremental"))
    policy = load_policy("default")
    index = policy.packer.index(str(root))
    pack, statements = traced(index, policy.pack, "dbt-expert", task=TASK, root=str(root), log=False)
    reads = [s for s in statements if ROWS_READ in s]
    assert len(reads) == 1 and f"'{AGENT}/patterns/'" in reads[0], reads
    assert pack.stats.changed == 1


# -- the same index and the same packs, whatever changed ---------------------------------------------------

def _edit_grows(root: Path) -> None:
    path = root / f"{AGENT}/patterns/incremental-models.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n## Added\n\nlate arriving rows\n", encoding="utf-8")


def _mtime_kept_size_changed(root: Path) -> None:
    path = root / "patterns/deep/1/p3.md"
    before = os.stat(path)
    path.write_text(words(90, "changed"), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _size_kept_mtime_changed(root: Path) -> None:
    path = root / "patterns/deep/0/p2.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("orders2", "ordersX"), encoding="utf-8")
    before = os.stat(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000))


def _folder_mtime_kept_file_changed(root: Path) -> None:
    folder = root / f"{AGENT}/recent/2026/02"
    before = os.stat(folder)
    (folder / "note5.md").write_text(words(51, "snapshot"), encoding="utf-8")
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))


def _clock_behind(root: Path) -> None:  # a file rewritten by a machine whose clock is years behind
    path = write(root, f"{AGENT}/recent/2026/00/note3.md", words(33, "skewed"))
    os.utime(path, (0, 0))


def _clock_ahead(root: Path) -> None:
    path = write(root, f"{AGENT}/recent/2026/00/note0.md", words(30, "future"))
    os.utime(path, (4_102_444_800, 4_102_444_800))  # 2100


def _rename(root: Path) -> None:
    os.rename(root / "patterns/deep/0/p4.md", root / "patterns/deep/0/p4-renamed.md")


def _move(root: Path) -> None:
    os.rename(root / "patterns/deep/0/p6.md", root / "patterns/deep/1/p6.md")


def _delete(root: Path) -> None:
    (root / f"{AGENT}/recent/2026/01/note7.md").unlink()


def _delete_folder(root: Path) -> None:
    shutil.rmtree(root / "patterns/deep")


def _empty_a_folder(root: Path) -> None:
    for path in (root / f"{AGENT}/recent/2026/02").iterdir():
        path.unlink()


def _file_becomes_folder(root: Path) -> None:
    path = root / f"{AGENT}/recent/2026/01/note1.md"
    path.unlink()
    write(root, f"{AGENT}/recent/2026/01/note1.md/inside.md", words(25, "nested"))


def _folder_becomes_file(root: Path) -> None:
    shutil.rmtree(root / "patterns/deep/1")
    write(root, "patterns/deep/1", words(10))  # not markdown: the folder's files are gone
    write(root, "patterns/deep/1.md", words(12, "flat"))


def _new_folder(root: Path) -> None:
    for i in range(3):
        write(root, f"{AGENT}/intermediate/fresh/{i}.md", words(20 + i, "brand"))


def _sidecar_added(root: Path) -> None:
    write(root, f"{AGENT}/recent/2026/01/note1.metadata.json", json.dumps({"use_count": 9}))


def _sidecar_changed(root: Path) -> None:
    write(root, f"{AGENT}/recent/2026/00/note0.metadata.json", json.dumps({"use_count": 3, "confidence": 0.9}))


def _sidecar_corrupt(root: Path) -> None:
    write(root, f"{AGENT}/recent/2026/00/note0.metadata.json", "{not json")


def _binary(root: Path) -> None:
    (root / "patterns/deep/0/p0.md").write_bytes(b"\0\1\2 binary")


def _symlink_target_changed(root: Path) -> None:
    target = write(root, "patterns/deep/target.md", words(20, "target"))
    os.symlink(target, root / f"{AGENT}/patterns/link.md")


def _root_file(root: Path) -> None:
    write(root, "top.md", words(15, "top"))


MUTATIONS = [_edit_grows, _mtime_kept_size_changed, _size_kept_mtime_changed, _folder_mtime_kept_file_changed,
             _clock_behind, _clock_ahead, _rename, _move, _delete, _delete_folder, _empty_a_folder, _file_becomes_folder,
             _folder_becomes_file, _new_folder, _sidecar_added, _sidecar_changed, _sidecar_corrupt, _binary,
             _symlink_target_changed, _root_file]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=[m.__name__.strip("_") for m in MUTATIONS])
def test_a_warm_index_is_a_fresh_one_after(mutate, tmp_path: Path) -> None:
    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    make_index(root, location).refresh()
    before = dump(make_index(root, location))
    mutate(root)
    index = make_index(root, location)
    stats = index.refresh()
    assert stats.changed or stats.removed
    assert dump(index) == fresh(root, tmp_path) != before
    assert make_index(root, location).refresh()[1:3] == (0, 0)  # and the next refresh finds nothing to do


@pytest.mark.parametrize("mutate", [_edit_grows, _mtime_kept_size_changed, _folder_mtime_kept_file_changed, _delete,
                                    _file_becomes_folder, _new_folder, _sidecar_changed, _clock_behind],
                         ids=lambda m: m.__name__.strip("_"))
def test_a_warm_pack_is_a_cold_one_byte_for_byte(mutate, tmp_path: Path, monkeypatch) -> None:
    root = a_root(tmp_path / "memory")

    def manifest(cache: Path) -> str:
        monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(cache))
        pack = load_policy("default").pack("dbt-expert", task=TASK, root=str(root), log=False)
        assert not pack.partial
        return json.dumps(pack.manifest())

    warm = tmp_path / "warm"
    first = manifest(warm)
    assert manifest(warm) == first
    mutate(root)
    after = manifest(warm)
    assert after == manifest(tmp_path / "cold") != first
    assert manifest(warm) == after


@pytest.mark.parametrize("seed", range(4))
def test_random_changes_keep_the_warm_index_a_fresh_one(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    root = tmp_path / "memory"
    folders = ["", "a", "a/b", "a/b/c", "d", f"{AGENT}/recent", f"{AGENT}/recent/x"]
    for i in range(30):
        write(root, f"{rng.choice(folders)}/f{i}.md".lstrip("/"), words(rng.randint(5, 60), f"w{i}"))
    location = str(tmp_path / "i.sqlite")
    make_index(root, location).refresh()

    def files() -> list[Path]:
        return sorted(p for p in root.rglob("*.md") if p.is_file())

    for step in range(25):
        for _ in range(rng.randint(1, 3)):
            present = files()
            kind = rng.choice(["edit", "edit", "keep-mtime", "add", "delete", "move", "rmdir", "sidecar"])
            victim = rng.choice(present) if present else None
            if kind == "add" or victim is None:
                write(root, f"{rng.choice(folders)}/n{step}-{rng.randint(0, 999)}.md".lstrip("/"),
                      words(rng.randint(5, 60), f"s{step}"))
            elif kind == "edit":
                victim.write_text(words(rng.randint(5, 60), f"e{step}"), encoding="utf-8")
            elif kind == "keep-mtime":
                info = victim.stat()
                victim.write_text(words(rng.randint(61, 90), f"k{step}"), encoding="utf-8")
                os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))
            elif kind == "delete":
                victim.unlink()
            elif kind == "move":
                target = root / rng.choice(folders) / f"m{step}-{victim.name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(victim, target)
            elif kind == "rmdir":
                folder = root / rng.choice(folders[1:])
                if folder.is_dir():
                    shutil.rmtree(folder)
            else:
                victim.with_suffix(".metadata.json").write_text(json.dumps({"use_count": step}), encoding="utf-8")
        index = make_index(root, location)
        index.refresh()
        assert dump(index) == fresh(root, tmp_path), (seed, step)
        index.close()


def test_files_changing_during_a_refresh_are_read_by_the_next(tmp_path: Path, monkeypatch) -> None:
    # The digest written is that of the listing the rows were brought up to date with, not of the folder as it is
    # when the refresh ends: a file added, edited or removed after the walk is the next refresh's to read.
    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    make_index(root, location).refresh()
    write(root, f"{AGENT}/recent/2026/00/note0.md", words(31, "first"))  # the refresh below has this to read
    scan = MemoryIndex.scan

    def scan_then_change(self, *args, **kwargs):
        found = scan(self, *args, **kwargs)
        write(root, f"{AGENT}/recent/2026/00/late.md", words(10, "late"))  # appears after its folder was listed
        write(root, f"{AGENT}/recent/2026/00/note0.md", words(32, "second"))  # changes before it is read
        (root / f"{AGENT}/recent/2026/01/note1.md").unlink()  # vanishes (its folder listed with it)
        return found

    monkeypatch.setattr(MemoryIndex, "scan", scan_then_change)
    make_index(root, location).refresh()
    monkeypatch.setattr(MemoryIndex, "scan", scan)
    index = make_index(root, location)
    stats = index.refresh()
    assert stats.changed == 2 and stats.removed == 1
    assert dump(index) == fresh(root, tmp_path)


# -- an index of another format, a folders table that cannot be trusted -------------------------------------

def test_an_index_of_the_previous_format_is_rebuilt(tmp_path: Path) -> None:
    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    index = make_index(root, location)
    index.refresh()
    index.db.execute("DROP TABLE folders")  # what FORMAT 5 wrote: no folders table, its settings
    index.db.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (index.settings.replace(f"{FORMAT}:", "5:", 1),))
    index.close()
    assert FORMAT == 6
    again = make_index(root, location)
    assert again.rebuilt
    stats = again.refresh()
    assert stats.changed == stats.files == again.count()[0]
    assert dump(again) == fresh(root, tmp_path)
    other = make_index(root, str(tmp_path / "other.sqlite"))
    other.refresh()
    assert folder_rows(again) == folder_rows(other) and len(folder_rows(other)) == 24  # one a folder listed


@pytest.mark.parametrize("sql", [
    "DROP TABLE folders",
    "ALTER TABLE folders RENAME TO other",
    "DROP TABLE folders; CREATE TABLE folders (name TEXT)",
], ids=["dropped", "renamed", "other-columns"])
def test_a_folders_table_that_is_not_one_rebuilds_the_index(sql: str, tmp_path: Path) -> None:
    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    index = make_index(root, location)
    index.refresh()
    index.db.executescript(sql)
    index.close()
    again = make_index(root, location)
    assert again.rebuilt
    again.refresh()
    assert dump(again) == fresh(root, tmp_path)


GONE = "patterns/deep/0"  # a folder deleted from the disk before the refresh below


@pytest.mark.parametrize("sql", [
    f"DELETE FROM folders WHERE folder = '{GONE}'",  # a row missing: its folder would never be seen gone
    f"UPDATE folders SET digest = 12345 WHERE folder = '{GONE}'",
    f"UPDATE folders SET digest = x'00ff' WHERE folder = '{GONE}'",
    f"UPDATE folders SET files = 'three' WHERE folder = '{GONE}'",
    f"UPDATE folders SET files = -1 WHERE folder = '{GONE}'",
    f"UPDATE folders SET files = files + 1 WHERE folder = '{GONE}'",
    "UPDATE folders SET files = 0",
    "UPDATE folders SET files = 9223372036854775807 WHERE folder = 'patterns'",
    f"UPDATE folders SET digest = NULL WHERE folder = '{GONE}'",
    f"UPDATE folders SET digest = substr(digest, 2) WHERE folder = '{GONE}'",
    f"UPDATE folders SET digest = zeroblob(64) WHERE folder = '{GONE}'",
    f"UPDATE folders SET digest = digest || printf('%.*c', 5000000, 'x') WHERE folder = '{GONE}'",
    f"UPDATE folders SET folder = x'{'61' * 8}' WHERE folder = '{GONE}'",
    "INSERT INTO folders VALUES ('patterns/' || printf('%.*c', 2000000, 'y'), printf('%.*c', 64, 'a'), 0)",
    "INSERT INTO folders SELECT 'patterns/junk' || value, printf('%.*c', 64, 'a'), 0 FROM generate_series(1, 50000)",
    "INSERT INTO folders VALUES ('patterns/extra', printf('%.*c', 64, 'a'), 5)",
    "DELETE FROM folders",
], ids=["missing-row", "integer-digest", "blob-digest", "text-count", "negative-count", "count-too-high",
        "counts-zero", "huge-count", "null-digest", "short-digest", "zero-blob", "huge-digest", "blob-folder",
        "huge-folder-name", "many-rows", "extra-row", "empty"])
def test_a_folders_table_not_as_written_falls_back_to_a_full_refresh(sql: str, tmp_path: Path) -> None:
    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    index = make_index(root, location)
    index.refresh()
    if "generate_series" in sql:  # (not every SQLite has it)
        index.db.executemany("INSERT INTO folders VALUES (?, ?, 0)",
                             [(f"patterns/junk{i}", "a" * 64) for i in range(50_000)])
    else:
        index.db.executescript(sql)
    index.close()
    shutil.rmtree(root / GONE)
    write(root, "patterns/deep/1/p1.md", words(44, "edited"))
    again = make_index(root, location)
    assert not again.rebuilt
    started = time.perf_counter()
    stats, statements = traced(again, again.refresh)
    assert time.perf_counter() - started < 30  # bounded: not a speed check (quadratic work would take minutes)
    assert stats.removed == 6 and stats.changed == 1
    # the refresh weighed every file against its row, as with no digests at all (the root's rows: one read)
    assert [s for s in statements if ROWS_READ in s] == [
        "SELECT id, path, size, mtime_ns, sidecar FROM files WHERE 1"]
    assert dump(again) == fresh(root, tmp_path)
    # and wrote the folders' rows anew: one a folder listed, as a refresh from nothing writes them
    rebuilt = make_index(root, str(tmp_path / "other.sqlite"))
    rebuilt.refresh()
    assert folder_rows(again) == folder_rows(rebuilt)
    _, statements = traced(again, again.refresh)
    assert not [s for s in statements if ROWS_READ in s]


def test_a_digest_that_is_not_the_listings_rereads_its_folder_only(tmp_path: Path) -> None:
    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    index = make_index(root, location)
    index.refresh()
    index.db.execute("UPDATE folders SET digest = ? WHERE folder = 'patterns/deep/1'", ("0" * 64,))
    stats, statements = traced(index, index.refresh)
    assert stats.changed == 0 and len([s for s in statements if ROWS_READ in s]) == 1
    assert folder_rows(index) == folder_rows(make_index(root, location))
    assert folder_rows(index)["patterns/deep/1"][0] != "0" * 64


# -- digests and the other ways a refresh ends ------------------------------------------------------------------

def test_a_refresh_cut_short_leaves_no_digest_for_what_it_did_not_finish(tmp_path: Path) -> None:
    from engine.pack.index import Deadline

    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    make_index(root, location).refresh()
    for i in range(12):
        write(root, f"{AGENT}/recent/2026/{i % 3:02d}/note{i}.md", words(70 + i, "rewritten"))
    ticks = [0.0]  # a clock that advances by one a file read: a deadline in files

    def counter(text: str) -> int:
        ticks[0] += 1
        return estimate(text)

    index = make_index(root, location)
    index.counter = counter
    stats = index.refresh(deadline=Deadline(5.5, lambda: ticks[0]))
    assert stats.partial and 0 < stats.changed < 12, stats
    held, listing = folder_rows(index), {}
    index.scan(None, digests=listing)
    folders = [f"{AGENT}/recent/2026/{i:02d}" for i in range(3)]
    assert any(f not in held for f in folders)  # the rows changed: their digests dropped
    assert all(held.get(f, (None,))[0] != listing[f][0] for f in folders)  # none says the listing as it is
    again = make_index(root, location)
    stats = again.refresh()
    assert not stats.partial and stats.changed == 12 - 6
    assert dump(again) == fresh(root, tmp_path)
    assert all(folder_rows(again)[f][0] == listing[f][0] for f in folders)


def test_digests_are_not_written_over_another_processs_rows(tmp_path: Path, monkeypatch) -> None:
    # Another process rewrites, between two of a refresh's chunks, the row of a file the refresh read in its
    # first chunk, from the file as it was for a moment; the file then comes back as the refresh listed it. The
    # refresh must not write digests saying its rows are those of its listing: that row is not.
    import engine.pack.index as index_module

    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    make_index(root, location).refresh()
    for i in range(6):
        write(root, f"patterns/deep/{i % 2}/p{i}.md", words(80 + i, "changed"))
    monkeypatch.setattr(index_module, "CHUNK_BYTES", 1)  # one file a transaction
    first, other = make_index(root, location), make_index(root, location)
    begins = []

    class Connection:  # the other process refreshes before the first one's second transaction
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *args):
            if sql == "BEGIN IMMEDIATE":
                begins.append(sql)
                if len(begins) == 2:
                    [(read,)] = other.db.execute("SELECT path FROM files ORDER BY id DESC LIMIT 1")
                    path = root / read
                    kept, info = path.read_bytes(), path.stat()
                    path.write_text(words(120, "meanwhile"), encoding="utf-8")
                    assert other.refresh().changed >= 1
                    path.write_bytes(kept)
                    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
            return self.db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.db, name)

    first.db = Connection(first.db)
    first.refresh()
    assert len(begins) >= 2
    again = make_index(root, location)
    again.refresh()
    assert dump(again) == fresh(root, tmp_path)
    assert again.refresh()[1:3] == (0, 0)


def test_digests_alone_never_wait_for_the_write_lock(tmp_path: Path) -> None:
    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    index = make_index(root, location)
    index.refresh()
    index.db.execute("DELETE FROM folders")  # no file changed, but every digest is to be written again
    holder = sqlite3.connect(location, timeout=0.1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        later = make_index(root, location)
        # a busy timeout of a minute: a refresh that waited for the lock would take it all (not a speed check)
        later.db.execute("PRAGMA busy_timeout = 60000")
        started = time.perf_counter()
        stats = later.refresh()
        assert time.perf_counter() - started < 30
        assert later.db.execute("PRAGMA busy_timeout").fetchone() == (60000,)  # restored as it was found
        assert (stats.changed, stats.removed) == (0, 0)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not folder_rows(index)
    make_index(root, location).refresh()
    assert folder_rows(index)


def test_the_listing_digest_covers_every_files_name_size_mtime_and_sidecar() -> None:
    from engine.pack.index import listing_digest

    listing = [("a.md", (10, 1_000, "")), ("b.md", (20, 2_000, "5:7"))]
    digest = listing_digest(listing)
    assert listing_digest(listing[::-1]) == digest  # in any order
    assert len(digest) == 64 and listing_digest([]) != digest
    others = [[("a.md", (11, 1_000, "")), listing[1]], [("a.md", (10, 1_001, "")), listing[1]],
              [listing[0], ("b.md", (20, 2_000, "5:8"))], [listing[0], ("c.md", (20, 2_000, "5:7"))],
              [listing[0]], [*listing, ("c.md", (0, 0, ""))], [("a.md", (10, 1_000, "")), ("b.md", (20, 2_000, ""))],
              [("a.md", (10, -1_000, "")), listing[1]], [("a.md", (10, 1 << 70, "")), listing[1]]]
    digests = {listing_digest(other) for other in others}
    assert len(digests) == len(others) and digest not in digests


@pytest.mark.parametrize("bound", [None, "DIGEST_ROWS", "DIGEST_NAMES"])
def test_a_walk_cut_short_uses_the_digests_of_the_folders_it_listed(bound, tmp_path: Path, monkeypatch) -> None:
    # A hook's walk may run out of time: the folders it listed are weighed by their digests all the same (a
    # bounded number of rows read, as it cannot know how many folders the root has).
    import engine.pack.index as index_module
    from engine.pack.index import Deadline

    root = a_root(tmp_path / "memory")
    location = str(tmp_path / "i.sqlite")
    make_index(root, location).refresh()
    if bound:
        monkeypatch.setattr(index_module, bound, 3)
    ticks = iter(range(100_000))
    index = make_index(root, location)
    stats, statements = traced(index, index.refresh, deadline=Deadline(12, lambda: float(next(ticks))))
    assert stats.partial and stats.files < index.count()[0] and (stats.changed, stats.removed) == (0, 0)
    full = [s for s in statements if ROWS_READ in s and "instr" not in s]
    assert full if bound else not full
    assert dump(index) == fresh(root, tmp_path)


# -- paths whose next character is the last code point ---------------------------------------------------------

LAST = "\U0010ffff"  # a file name can hold it; `prefix + LAST` as a range's upper bound left such a path out


def test_a_file_whose_name_starts_with_the_last_code_point_is_found_under_its_prefix(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    write(root, f"agents/dbt-expert/{LAST}a.md", "# A\n\nincremental models slow\n")
    write(root, f"global/{LAST}g.md", "# G\n\nglobal text\n")
    write(root, "agents/dbt-expert/patterns/b.md", "# B\n\nother text\n")
    (root / f"global/{LAST}bin.md").write_bytes(b"\xff\xfe not text")
    index = make_index(root, str(tmp_path / "i.sqlite"))
    index.refresh()
    paths = sorted(c[1] for c in index.candidates(["agents/dbt-expert/", "global/"]))
    assert paths == ["agents/dbt-expert/patterns/b.md", f"agents/dbt-expert/{LAST}a.md", f"global/{LAST}g.md"]
    assert [p for p, _ in index.unloadable(["global/"])] == [f"global/{LAST}bin.md"]
    index.db.execute("DELETE FROM folders")  # no digests: every file weighed against its row
    stats = index.refresh()
    assert (stats.changed, stats.removed) == (0, 0)
    assert dump(index) == fresh(root, tmp_path)


def test_the_prefix_condition_selects_exactly_the_paths_that_start_with_the_prefix() -> None:
    from engine.pack.index import _starting_with

    rng = random.Random(7)
    alphabet = ["a", "/", "0", ".", "\ud7ff", "\ue000", "\uffff", "\U00010000", LAST]
    paths = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4))) for _ in range(400)})
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE files (path TEXT PRIMARY KEY)")
    db.executemany("INSERT INTO files VALUES (?)", [(p,) for p in paths])
    for prefix in ["", *paths[:150]]:
        under, args = _starting_with("path", prefix)
        got = sorted(p for (p,) in db.execute(f"SELECT path FROM files WHERE {under}", args))
        assert got == [p for p in paths if p.startswith(prefix)], prefix
