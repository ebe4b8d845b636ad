"""The sections of a compiled-policy cache entry: what a warm start reads only when a task needs it.

An entry (:mod:`engine.policy.cache`) is a small head — what ``budget`` and ``evaluate`` need up front — and a
*body* of sections the head's tables point into. The body holds, in chunks, the parts that grow with the
number of signals:

- the policy's signals (``data.detection.signals``), :data:`CHUNK` per chunk, each chunk a JSON array;
- the detection plan's head (one JSON object: the derived signals, the groups, the gates, the entries the RE2
  set screens — ``rest`` — and the tables below);
- the plan's entries and their set patterns, :data:`CHUNK` per chunk (``[[entries], [patterns]]``);
- the plan's word index, in buckets by a stable hash of the word form (:func:`bucket_of`), each a JSON object
  of the forms it holds.

A table is ``{"at": [offsets], "sums": checksums}``: chunk ``i`` is the body's bytes ``at[i]:at[i + 1]`` (so
chunks cannot overlap: the offsets must not decrease and must lie within the body), and its checksum is the
first 16 hexadecimal digits of their SHA-256, ``sums[16 i:16 i + 16]``. The head's own checksum (the entry's
first line) covers the tables, so every byte read is covered by a checksum chain.

A chunk is checked — checksum, then shape (types, every index in range) — and decoded the first time it is
read; a task that fires three signals decodes the buckets of its words, the chunks of the entries that fired and
of their signals. A chunk that fails is never used: the policy is compiled afresh from its files (the
:class:`Recovery` of the entry, once per process), the chunk is served from that compilation — the same
answer — and the entry is removed and rewritten. Nothing here raises for bad bytes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

from engine.digest import sha256
from engine.jsonio import loads_own

CHUNK = 64
"""Signals, or plan entries, per chunk: a chunk of signals is about 8 KB of JSON for the benchmark's policy."""
FORMS_PER_BUCKET = 32
"""Word forms per bucket of the word index, on average (a bucket is about 1 KB)."""
SUM_DIGITS = 16
"""Hexadecimal digits of SHA-256 kept per chunk (64 bits: against damage; the trust rules keep others out)."""
MAX_CHUNKS = 1 << 20
"""The most chunks a table may list (a policy is at most 1 MiB: far fewer)."""
_HEX = "0123456789abcdef"
_ENTRY_KINDS = ("literal", "exact", "regex")


def checksum(part: bytes | memoryview) -> str:
    """The checksum of a chunk's bytes, as a table lists it."""
    return sha256(part).hexdigest()[:SUM_DIGITS]


def bucket_of(form: str, buckets: int) -> int:
    """The bucket of a word form among ``buckets``: a hash that is the same in every process and version of
    Python (``hash()`` of a string is not)."""
    return int.from_bytes(sha256(form.encode("utf-8", "surrogatepass")).digest()[:4], "little") % buckets


# -- writing ------------------------------------------------------------------------------------------------------

class BodyWriter:
    """Builds an entry's body: :meth:`add` appends one JSON value and returns its ``[start, end, checksum]``;
    :meth:`table` appends a list of values as one table."""

    def __init__(self, dumps: Callable[[Any], str]):
        self.parts: list[bytes] = []
        self.size = 0
        self._dumps = dumps

    def add(self, value: Any) -> list:
        raw = self._dumps(value).encode("utf-8")
        start = self.size
        self.parts.append(raw)
        self.size += len(raw)
        return [start, self.size, checksum(raw)]

    def table(self, values: Sequence[Any]) -> dict:
        at, sums = [self.size], []
        for value in values:
            _, end, digest = self.add(value)
            at.append(end)
            sums.append(digest)
        return {"at": at, "sums": "".join(sums)}

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def chunks(items: Sequence[Any]) -> list[list]:
    """``items`` cut into chunks of :data:`CHUNK`."""
    return [list(items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]


def plan_sections(plan: dict, signals: int, body: BodyWriter) -> list:
    """Write the detection plan ``plan`` (:func:`engine.detect.plan.plan_detection`'s, conditions left out) into
    ``body`` in sections; the ``[start, end, checksum]`` of its head."""
    entries, patterns, index = plan["entries"], plan["patterns"], plan["index"]
    covered = {i for listed in index.values() for i in listed}
    gated = {entry for entry, _ in plan["gates"]}
    rest = [[i, patterns[i]] for i in range(len(entries)) if i not in covered and i not in gated]
    table = body.table([[part, patterns[i * CHUNK:(i + 1) * CHUNK]]
                        for i, part in enumerate(chunks(entries))])
    count = max(1, len(index) // FORMS_PER_BUCKET)
    buckets: list[dict] = [{} for _ in range(count)]
    for form, listed in index.items():
        buckets[bucket_of(form, count)][form] = listed
    head = {key: plan[key] for key in ("format", "derived", "quiet", "groups", "scoped", "asks", "digest", "gates")}
    head.update(conditions={}, signals=signals, size=len(entries), forms=len(index), rest=rest, entries=table,
                index=body.table(buckets))
    return body.add(head)


# -- reading ------------------------------------------------------------------------------------------------------

def table_ok(table: Any, chunks_: int, size: int) -> bool:
    """Whether ``table`` lists ``chunks_`` chunks within a body of ``size`` bytes (offsets that do not decrease,
    a checksum each)."""
    if type(table) is not dict or table.keys() != {"at", "sums"} or not 0 <= chunks_ <= MAX_CHUNKS:
        return False
    at, sums = table["at"], table["sums"]
    return (type(at) is list and len(at) == chunks_ + 1 and set(map(type, at)) == {int}
            and 0 <= at[0] and at[-1] <= size and all(a <= b for a, b in zip(at, at[1:]))
            and type(sums) is str and len(sums) == SUM_DIGITS * chunks_ and not sums.strip(_HEX))


def span_ok(span: Any, size: int) -> bool:
    """Whether ``span`` is ``[start, end, checksum]`` within a body of ``size`` bytes."""
    return (type(span) is list and len(span) == 3 and type(span[0]) is int and type(span[1]) is int
            and 0 <= span[0] <= span[1] <= size and type(span[2]) is str and len(span[2]) == SUM_DIGITS
            and not span[2].strip(_HEX))


def chunk_count(items: int) -> int:
    return -(-items // CHUNK)


class Recovery:
    """What a damaged chunk of one entry is served from: the policy compiled afresh from its files, once per
    process, by ``recompile(entry, source, files)`` → (data, detection plan) — :func:`engine.policy._recompiled`,
    passed down by the loader (this layer does not import the one above it), which writes a good entry in
    place of the damaged one. It imports the YAML and schema machinery: a damaged entry costs one full check.
    Without ``recompile`` (the cache read on its own) a damaged chunk is a usage error."""

    __slots__ = ("entry", "source", "files", "recompile", "discard", "_fresh")

    def __init__(self, entry: str | None, source: str, files: list, recompile: Callable | None = None,
                 discard: Callable[[str], None] | None = None):
        """``discard(entry)`` removes the damaged entry (:func:`engine.policy.cache.discard`)."""
        self.entry, self.source, self.files, self.recompile = entry, source, files, recompile
        self.discard = discard
        self._fresh: tuple[dict, dict] | None = None

    def fresh(self) -> tuple[dict, dict]:
        """The policy's data and its detection plan, compiled afresh (the damaged entry is removed first)."""
        if self._fresh is None:
            if self.entry is not None and self.discard is not None:
                self.discard(self.entry)
            if self.recompile is None:
                from engine.diagnostics import UsageError

                raise UsageError(f"the compiled-policy cache entry of {self.source} was damaged (now removed); "
                                 f"run the command again")
            self._fresh = self.recompile(self.entry, self.source, self.files)
        return self._fresh


def pread(fd: int, offset: int, size: int) -> bytes | None:
    """``size`` bytes of the open file at ``offset`` (None when it has fewer, or cannot be read)."""
    try:
        data = os.pread(fd, size, offset)
        while 0 < len(data) < size:  # a short read (not seen on regular files; allowed by POSIX)
            more = os.pread(fd, size - len(data), offset + len(data))
            if not more:
                break
            data += more
    except OSError:
        return None
    return data if len(data) == size else None


MAX_OPEN_BODIES = 64
"""The most entry descriptors a process keeps open (:class:`OpenBody`): past that, a policy loaded from the
cache has its body read whole and its descriptor closed, so a service that keeps thousands of policies alive
does not run out of descriptors (each open body is one; the usual limit is 1,024)."""


class OpenBody:
    """The body of an entry, as ``size`` bytes at ``offset`` of its open (and checked) descriptor, which it owns
    and closes when it is collected (or :meth:`whole` is read): a section is read when first needed — an entry
    of 0.9 MB is not read whole (reading it cost a 3,000-signal policy's warm start 1.2 ms, most of it paging in
    fresh memory). :attr:`live` counts the open ones (see :data:`MAX_OPEN_BODIES`)."""

    __slots__ = ("fd", "offset", "size")
    live = 0

    def __init__(self, fd: int, offset: int, size: int):
        self.fd, self.offset, self.size = fd, offset, size
        type(self).live += 1

    def read(self, start: int, end: int) -> bytes | None:
        if not 0 <= start <= end <= self.size:
            return None
        return pread(self.fd, self.offset + start, end - start)

    def whole(self) -> bytes | None:
        """The whole body (None when it cannot be read), its descriptor closed."""
        try:
            return self.read(0, self.size)
        finally:
            self.close()

    def close(self) -> None:
        if self.fd < 0:
            return
        type(self).live -= 1  # not the module's global name: at interpreter exit it may be gone
        fd, self.fd = self.fd, -1
        try:
            os.close(fd)
        except OSError:
            pass

    def __del__(self) -> None:
        try:
            self.close()
        except (TypeError, AttributeError):  # at interpreter exit
            pass


class Body:
    """An entry's body (an :class:`OpenBody`, or its bytes) and its :class:`Recovery`: :meth:`part` gives a
    section's decoded JSON when its checksum holds, else None."""

    __slots__ = ("source", "size", "recovery")

    def __init__(self, source: OpenBody | bytes, recovery: Recovery):
        self.source, self.recovery = source, recovery
        self.size = source.size if type(source) is OpenBody else len(source)

    def part(self, start: int, end: int, digest: str) -> Any:
        source = self.source
        part = source.read(start, end) if type(source) is OpenBody else source[start:end]
        if part is None or checksum(part) != digest:
            return None
        try:
            return loads_own(part)
        except (ValueError, RecursionError):
            return None


class Chunked(Sequence):
    """A sequence stored in chunks of :data:`CHUNK` (see the module's docstring), each decoded and checked when
    one of its items is first read. ``check(value, chunk)`` gives the chunk's items when ``value`` (the decoded
    chunk) has the right shape, else None; ``fresh(recovery, chunk)`` gives them from a fresh compilation."""

    __slots__ = ("_body", "_at", "_sums", "_size", "_check", "_fresh", "_chunks")

    def __init__(self, body: Body, table: dict, size: int, check: Callable[[Any, int], list | None],
                 fresh: Callable[[Recovery, int], list]):
        self._body, self._at, self._sums, self._size = body, table["at"], table["sums"], size
        self._check, self._fresh = check, fresh
        self._chunks: dict[int, list] = {}

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:
        if type(index) is slice:
            return [self[i] for i in range(*index.indices(self._size))]
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError("index out of range")
        chunk, at = divmod(index, CHUNK)
        found = self._chunks.get(chunk)
        if found is None:
            found = self._load(chunk)
        return found[at]

    def _load(self, chunk: int) -> list:
        start, end = self._at[chunk], self._at[chunk + 1]
        value = self._body.part(start, end, self._sums[SUM_DIGITS * chunk:SUM_DIGITS * (chunk + 1)])
        found = self._check(value, chunk) if value is not None else None
        if found is None or len(found) != min(CHUNK, self._size - chunk * CHUNK):
            found = self._fresh(self._body.recovery, chunk)
        self._chunks[chunk] = found
        return found


class Column(Sequence):
    """One column of a :class:`Chunked` of rows (the plan's patterns, beside its entries)."""

    __slots__ = ("_rows", "_column")

    def __init__(self, rows: Chunked, column: int):
        self._rows, self._column = rows, column

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        if type(index) is slice:
            return [self[i] for i in range(*index.indices(len(self._rows)))]
        return self._rows[index][self._column]


class Buckets:
    """The plan's word index (word form → entries), stored in buckets by :func:`bucket_of`: :meth:`find` looks
    words up, decoding (and checking) only their buckets."""

    __slots__ = ("_body", "_at", "_sums", "_count", "_size", "_forms", "_loaded", "_entries")

    def __init__(self, body: Body, table: dict, forms: int, entries: int):
        self._body, self._at, self._sums = body, table["at"], table["sums"]
        self._count = len(table["at"]) - 1
        self._forms, self._entries = forms, entries
        self._loaded: dict[int, dict] = {}

    def __len__(self) -> int:
        """How many word forms the index holds."""
        return self._forms

    @property
    def complete(self) -> bool:
        """Whether every bucket has been decoded."""
        return len(self._loaded) == self._count

    def bucket(self, number: int) -> dict:
        found = self._loaded.get(number)
        if found is None:
            start, end = self._at[number], self._at[number + 1]
            found = self._body.part(start, end, self._sums[SUM_DIGITS * number:SUM_DIGITS * (number + 1)])
            if not self._bucket_ok(found, number):
                found = self._recovered(number)
            self._loaded[number] = found
        return found

    def _bucket_ok(self, found: Any, number: int) -> bool:
        if type(found) is not dict:
            return False
        listed = list(found.values())
        if set(map(type, listed)) - {list} or not all(listed):
            return False
        indices = [i for entries in listed for i in entries]
        return (not indices or (set(map(type, indices)) == {int} and min(indices) >= 0
                                and max(indices) < self._entries)) and all(
            bucket_of(form, self._count) == number for form in found)

    def _recovered(self, number: int) -> dict:
        plan = self._body.recovery.fresh()[1]
        return {form: entries for form, entries in (plan.get("index") or {}).items()
                if bucket_of(form, self._count) == number}

    def find(self, forms: Any) -> dict[str, list[int]]:
        """The entries of each of ``forms`` the index holds."""
        count = self._count
        found = {}
        for form in forms:
            bucket = self.bucket(bucket_of(form, count))
            entries = bucket.get(form)
            if entries is not None:
                found[form] = entries
        return found

    def whole(self) -> dict[str, list[int]]:
        """Every form and its entries (every bucket decoded)."""
        merged: dict[str, list[int]] = {}
        for number in range(self._count):
            merged.update(self.bucket(number))
        return merged


# -- the checks of each kind of chunk -------------------------------------------------------------------------------

def _is_str_list(value: Any) -> bool:
    return type(value) is list and set(map(type, value)) <= {str}


def quiet_ok(quiet: Any) -> bool:
    """Per condition source, what decides it when none of its inputs fired (engine.detect.plan.quiet_inputs):
    [groups, signal ids, value] — names and a boolean, data only."""
    return type(quiet) is dict and all(
        type(v) is list and len(v) == 3 and _is_str_list(v[0]) and all(v[0]) and _is_str_list(v[1])
        and all(v[1]) and type(v[2]) is bool for v in quiet.values())


_SIGNAL_TEXT = {"description": str, "group": str, "in": str, "when": str}
_NUMBERS = frozenset({int, float})
_STR = frozenset({str})
_NO_WEIGHTS: dict = {}  # an item without weights (read, never written)


def signals_check(tiers: set[str]) -> Callable[[Any, int], list | None]:
    """The check of a chunk of signals: each an object with an id, words or patterns (strings), weights of these
    ``tiers`` (numbers) — the fields the detector reads, with the types validation gave them. Written for speed
    (every start that detects checks the chunks it reads): type sets compared in C, only the keys an item has
    looked at."""
    text_keys = _SIGNAL_TEXT.keys()

    def check(value: Any, chunk: int) -> list | None:
        if type(value) is not list:
            return None
        for item in value:
            if type(item) is not dict or type(item.get("id")) is not str:
                return None
            for key in text_keys & item.keys():
                if item[key] is not None and type(item[key]) is not _SIGNAL_TEXT[key]:
                    return None
            for key in ("words", "pattern"):
                part = item.get(key)
                if part is not None and type(part) is not str and not (
                        type(part) is list and part and set(map(type, part)) <= _STR):
                    return None
            weights = item.get("weights", _NO_WEIGHTS)
            if type(weights) is not dict or not tiers.issuperset(weights) or not set(
                    map(type, weights.values())) <= _NUMBERS:
                return None
            if type(item.get("boost", 0)) is not int or type(item.get("inflect", True)) is not bool:
                return None
        return value

    return check


def signals_fresh(recovery: Recovery, chunk: int) -> list:
    signals = ((recovery.fresh()[0].get("detection") or {}).get("signals")) or []
    return list(signals[chunk * CHUNK:(chunk + 1) * CHUNK])


def entries_check(signals: int) -> Callable[[Any, int], list | None]:
    """The check of a chunk of plan entries: ``[[signal, kind, text], ...]`` (a signal below ``signals``) and
    their patterns (strings, "" only for a literal), as rows ``(entry, pattern)``."""

    def check(value: Any, chunk: int) -> list | None:
        if type(value) is not list or len(value) != 2:
            return None
        entries, patterns = value
        if type(entries) is not list or type(patterns) is not list or len(entries) != len(patterns):
            return None
        for entry, pattern in zip(entries, patterns):
            if (type(entry) is not list or len(entry) != 3 or type(entry[0]) is not int
                    or not 0 <= entry[0] < signals or entry[1] not in _ENTRY_KINDS or type(entry[2]) is not str
                    or not entry[2] or type(pattern) is not str or (not pattern and entry[1] == "regex")):
                return None
        return list(zip(entries, patterns))

    return check


def entries_fresh(recovery: Recovery, chunk: int) -> list:
    plan = recovery.fresh()[1]
    part = slice(chunk * CHUNK, (chunk + 1) * CHUNK)
    return list(zip(plan.get("entries", [])[part], plan.get("patterns", [])[part]))


def plan_head_ok(head: Any, signals: int, size: int) -> bool:
    """Whether a plan's head (:func:`plan_sections`) has its shape, for ``signals`` signals, in a body of
    ``size`` bytes. (The detector's own check, :func:`engine.detect.plan.usable`, then ties it to the format.)"""
    if type(head) is not dict or head.keys() != _PLAN_HEAD_KEYS:
        return False
    entries = head["size"]
    if (type(entries) is not int or not 0 <= entries <= MAX_CHUNKS * CHUNK or type(head["signals"]) is not int
            or head["signals"] != signals):
        return False
    derived, scoped, gates, rest = head["derived"], head["scoped"], head["gates"], head["rest"]
    return (type(derived) is list and _indices_below(derived, signals)
            and type(scoped) is list and _indices_below(scoped, entries)
            and type(gates) is list and all(type(g) is list and len(g) == 2 and type(g[1]) is str and g[1]
                                            for g in gates)
            and _indices_below([g[0] for g in gates], entries)
            and type(rest) is list and all(type(r) is list and len(r) == 2 and type(r[1]) is str and r[1]
                                           for r in rest)
            and _indices_below([r[0] for r in rest], entries)
            and head["conditions"] == {} and quiet_ok(head["quiet"])
            and _is_str_list(head["groups"]) and all(head["groups"])
            and type(head["asks"]) is bool and type(head["digest"]) is str
            and type(head["forms"]) is int and head["forms"] >= 0
            and table_ok(head["entries"], chunk_count(entries), size)
            and type(head["index"]) is dict and type(head["index"].get("at")) is list
            and table_ok(head["index"], len(head["index"]["at"]) - 1, size) and len(head["index"]["at"]) >= 2)


_PLAN_HEAD_KEYS = {"format", "derived", "quiet", "groups", "scoped", "asks", "digest", "gates", "conditions",
                   "signals", "size", "forms", "rest", "entries", "index"}


def _indices_below(values: list, size: int) -> bool:
    return not values or (set(map(type, values)) == {int} and min(values) >= 0 and max(values) < size)


def lazy_plan(head: dict, body: Body) -> dict:
    """The detection plan of a checked head (:func:`plan_head_ok`): a dict of the shape the detector reads, its
    ``entries`` and ``patterns`` :class:`Chunked`, its ``index`` :class:`Buckets`, and ``rest`` — the entries
    the RE2 set screens, with their patterns — which only a plan read from sections has."""
    rows = Chunked(body, head["entries"], head["size"], entries_check(head["signals"]), entries_fresh)
    plan = {key: head[key] for key in ("format", "derived", "quiet", "groups", "scoped", "asks", "digest",
                                       "gates", "conditions", "rest")}
    plan["entries"] = Column(rows, 0)
    plan["patterns"] = Column(rows, 1)
    plan["index"] = Buckets(body, head["index"], head["forms"], head["size"])
    return plan


def whole_plan(plan: dict) -> dict:
    """A plan read from sections (:func:`lazy_plan`) as the plain plan it was written from, every chunk read."""
    found = {key: value for key, value in plan.items() if key != "rest"}
    found["entries"] = list(plan["entries"])
    found["patterns"] = list(plan["patterns"])
    found["index"] = plan["index"].whole()
    return found
