"""Packing: choose the memory that fills an allocation, scope by scope, by relevance.

For each scope the packer takes the indexed sections whose paths match the scope's sources (with the agent
filled in), computes each one's features, scores it with the policy's relevance expression, and fills the
scope's allowance: pinned items first, then by score, skipping (not stopping at) an item that does not fit.
Content already loaded (the same text under another path) is loaded once. What a scope leaves unused then
spills, in the policy's spill order, to the scopes that still have candidates. The total never exceeds the
budget and a scope never exceeds its allowance plus the spill it received.
"""

from __future__ import annotations

import os
import time
from operator import itemgetter

TYPE_CHECKING = False  # not typing's: importing typing costs every start (a hook is a new process)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Mapping

from engine.diagnostics import UsageError
from engine.model import Allocation
from engine.pack.index import Deadline, IndexStats, MemoryIndex
from engine.pack.result import Pack, PackItem
from engine.pack.settings import MemorySettings, fill, glob_regex, literal_prefix
from engine.pack.tokens import compiled
from engine.pack.tokens import counter as get_counter

_DUPLICATE = "duplicate of content already loaded"
# (`re` only for what needs it, a task not in ASCII or a glob with wildcards: see engine.pack.tokens.compiled)
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NOT_WORD = str.maketrans({chr(c): " " for c in range(128) if chr(c) not in _WORD_CHARS})
_STOP = frozenset("""a an and are as at be but by can could do does for from had has have how i if in into is it its
me my no not of on or our should so that the their them then there these this to was we what when where which who
why will with would you your""".split())
MAX_TERMS = 48


def query_terms(task: str | None, context: Mapping[str, Any] | None = None) -> list[str]:
    """The words of the task (and of the context's string values), lower-cased, without stop words."""
    texts = [task or ""]
    for value in (context or {}).values():
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, (list, tuple)):
            texts += [v for v in value if isinstance(v, str)]
    words = dict.fromkeys(w for t in texts for w in _words(t.lower()) if w not in _STOP)
    return list(words)[:MAX_TERMS]


def _words(text: str) -> list[str]:
    """The runs of two or more letters or digits (``[^\\W_]{2,}``: a character ``str.isalnum`` accepts) in
    ``text``, in order. ASCII text is cut without ``re`` (each other character made a space)."""
    if text.isascii():
        return [w for w in text.translate(_NOT_WORD).split() if len(w) > 1]
    return compiled(r"[^\W_]{2,}").findall(text)


def _wild(text: str) -> bool:
    """Whether ``text`` holds a glob wildcard (``*``, ``?`` or ``[``)."""
    return "*" in text or "?" in text or "[" in text


class Packer:
    """The compiled ``memory:`` section: ``pack(allocation, task, ...)`` → :class:`Pack`."""

    def __init__(self, settings: MemorySettings, relevance: Any, scopes: tuple[str, ...]):
        self.settings = settings
        self.relevance = relevance  # the compiled relevance expression (engine.expr Program)
        self.scopes = scopes
        self._indexes: dict[str, MemoryIndex] = {}
        self._patterns: dict[str, tuple] = {}

    def root_path(self, root: str | os.PathLike | None = None) -> str:
        """The memory root (``root``, else the policy's ``memory.root``, relative to the working folder);
        UsageError when it is not a folder."""
        path = os.path.expanduser(os.fspath(root if root is not None else self.settings.root))
        if not os.path.isdir(path):
            raise UsageError(f"memory root {path} does not exist or is not a folder "
                             "(--root DIR, or the policy's memory.root)")
        return path

    def index(self, root: str | os.PathLike | None = None) -> MemoryIndex:
        """The (cached) index of the memory root, opened but not refreshed."""
        real = os.path.realpath(self.root_path(root))
        found = self._indexes.get(real)
        if found is None:
            s = self.settings
            found = MemoryIndex(real, get_counter(s.counter), s.counter, s.split_above, s.max_file_bytes)
            self._indexes[real] = found
        return found

    def refresh(self, root: str | os.PathLike | None = None, progress: Any = None) -> IndexStats:
        return self.index(root).refresh(progress)

    def _scope_patterns(self, agent: str) -> tuple:
        found = self._patterns.get(agent)
        if found is None:
            scopes = []
            for scope, templates in self.settings.sources.items():
                filled = [fill(t, agent) for t in templates]
                # "folder/**" templates need no pattern: the index's range scan by prefix selects exactly them
                plain = all(f.endswith("/**") and not _wild(f[:-3]) for f in filled)
                regex = None if plain else compiled("|".join(f"(?:{glob_regex(f)})" for f in filled))
                specific = any("{agent_name}" in t or "{agent_type}" in t for t in templates)
                scopes.append((scope, regex, [literal_prefix(f) for f in filled], specific))
            pinned = [compiled(glob_regex(fill(t, agent))) for t in self.settings.pinned]
            found = self._patterns[agent] = (tuple(scopes), tuple(pinned))
        return found

    def pack(self, allocation: Allocation, task: str | None = None, *, root: str | os.PathLike | None = None,
             context: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None,
             now: float | None = None, deadline: Deadline | None = None,
             progress: Callable[[int, int], None] | None = None) -> Pack:
        """Fill ``allocation`` (its budget and per-scope split) with the most relevant memory for ``task``.

        The index is refreshed first; past ``deadline`` (an :class:`~engine.pack.index.Deadline`) the refresh
        stops, keeps what it read, and the pack is made from what is indexed (:attr:`Pack.partial`).
        ``progress(done, total)`` is told the bytes read."""
        from engine.pack.index import sqlite3  # (the C module: engine.pack.index says why)

        index = self.index(root)
        try:
            return self._pack(index, allocation, task, context, provenance, now, deadline, progress)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                raise
            index.reset(str(exc))  # corrupt under our feet: rebuild once
            return self._pack(index, allocation, task, context, provenance, now, deadline, progress)

    def _pack(self, index: MemoryIndex, allocation: Allocation, task: str | None, context: Mapping[str, Any] | None,
              provenance: Mapping[str, Any] | None, now: float | None, deadline: Deadline | None = None,
              progress: Callable[[int, int], None] | None = None) -> Pack:
        started = time.perf_counter()
        scope_specs, pinned_patterns = self._scope_patterns(allocation.agent)
        stats = index.refresh(progress, prefixes=[p for spec in scope_specs for p in spec[2]], deadline=deadline)
        now = time.time() if now is None else now
        lexical = index.lexical(query_terms(task, context))

        by_scope: dict[str, list[tuple]] = {}
        claimed: set[str] = set()
        skipped: list[tuple] = [(p, None, r) for p, r in stats.skipped.items()]
        evaluate = self.relevance.evaluate
        # Scores by the values of the features the expression reads: the sections of one file, and items
        # alike in what the expression sees, are scored once.
        with_tokens = "tokens" in self.relevance.names
        scores: dict[tuple, tuple[float, str | None]] = {}
        scoped = []
        for scope, regex, prefixes, specific in scope_specs:
            rows = [r for r in index.candidates(prefixes) if r[1] not in claimed]
            if regex is not None:
                rows = [r for r in rows if regex.fullmatch(r[1])]
            for path, reason in index.unloadable(prefixes):
                if path not in claimed and (regex is None or regex.fullmatch(path)):
                    skipped.append((path, None, reason))
            claimed.update(r[1] for r in rows)
            scoped.append((scope, specific, rows))
        # lexical is scaled to the best match among the items this pack can load
        top = max([lexical.get(r[0], 0.0) for _, _, rows in scoped for r in rows], default=0.0) or 1.0
        get_lexical = lexical.get
        for scope, specific, rows in scoped:
            choices = []
            append = choices.append
            for r in rows:
                pinned = any(p.fullmatch(r[1]) for p in pinned_patterns) if pinned_patterns else False
                lex = get_lexical(r[0], 0.0) / top
                key = (scope, r[7], r[8], lex, r[9], r[4] if with_tokens else 0, pinned)
                found = scores.get(key)
                if found is None:
                    recency = round(max(0.0, (now - r[7]) / 86400.0), 3)
                    features = {"recency_days": recency, "use_count": r[8], "lexical": lex, "agent_specific": specific,
                                "scope": scope, "tokens": r[4], "pinned": pinned, "confidence": r[9]}
                    try:
                        score, failed = evaluate(features), None
                    except Exception as exc:  # noqa: BLE001 - an expression error scores 0, it does not fail the pack
                        score, failed = 0.0, f"relevance failed: {exc}"
                    else:
                        if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
                            score, failed = 0.0, "relevance is not a number"
                    found = scores[key] = (float(score), failed)
                append(((not pinned, -found[0], r[1], r[2]), found[0], pinned, r, found[1] or lex))
            choices.sort(key=itemgetter(0))
            by_scope[scope] = choices
        return self._select(allocation, by_scope, skipped, index, stats, provenance, started, now)

    def _select(self, allocation: Allocation, by_scope: dict[str, list[tuple]], skipped: list[tuple],
                index: MemoryIndex, stats: IndexStats, provenance: Mapping[str, Any] | None,
                started: float, now: float) -> Pack:
        allowances = {s: int(allocation.scopes.get(s, 0)) for s in dict.fromkeys([*allocation.scopes, *by_scope])}
        left = dict(allowances)
        used = dict.fromkeys(allowances, 0)
        spilled = dict.fromkeys(allowances, 0)
        seen: set[str] = set()
        taken: list[tuple[str, tuple, bool]] = []  # (scope, choice, spilled)
        waiting: dict[str, list[tuple]] = {}
        for scope, choices in by_scope.items():
            rest = waiting[scope] = []
            room = left[scope]
            for ch in choices:
                r = ch[3]
                if r[6] in seen:
                    skipped.append((r[1], r[3] or None, _DUPLICATE))
                elif r[4] <= room:
                    seen.add(r[6])
                    room -= r[4]
                    taken.append((scope, ch, False))
                else:
                    rest.append(ch)
            used[scope] = left[scope] - room
            left[scope] = room
        pool = sum(left.values())
        for scope in self.settings.spill:
            for ch in waiting.get(scope, ()):
                r = ch[3]
                if r[4] > pool or r[6] in seen:
                    continue
                seen.add(r[6])
                pool -= r[4]
                used[scope] += r[4]
                spilled[scope] += r[4]
                taken.append((scope, ch, True))
        loaded_ids = {ch[3][0] for _, ch, _ in taken}
        for scope, rest in waiting.items():
            for ch in rest:
                r = ch[3]
                if r[0] in loaded_ids:
                    continue
                # the reason is written when the manifest asks (most packs never show their skipped items)
                skipped.append((r[1], r[3] or None, _DUPLICATE if r[6] in seen else (r[4], left[scope], scope,
                                                                                     allowances[scope])))
        texts = index.texts([ch[3][0] for _, ch, _ in taken])
        items = tuple(
            PackItem(r[1], r[3] or None, scope, r[4], r[5], round(ch[1], 4),
                     (ch[4] if isinstance(ch[4], str) else _why(r, ch[4], ch[2], now)) + ("; spilled" if spill else ""),
                     texts.get(r[0], ""), ch[2])
            for scope, ch, spill in taken for r in (ch[3],))
        return Pack(allocation=allocation, root=index.root, allowances=allowances, used=used, spilled=spilled,
                    items=items, passed_over=tuple(skipped), provenance=dict(provenance or {}), stats=stats,
                    seconds=time.perf_counter() - started)


def _why(row: tuple, lexical: float, pinned: bool, now: float) -> str:
    parts = ["pinned"] if pinned else []
    parts.append(f"lexical {lexical:.2f}")
    parts.append(f"{max(0.0, (now - row[7]) / 86400.0):.0f}d old")
    if row[8]:
        parts.append(f"used {row[8]}×")
    return ", ".join(parts)
