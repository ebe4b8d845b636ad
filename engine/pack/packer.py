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
import re
import time
from typing import Any, Mapping, NamedTuple

from engine.diagnostics import UsageError
from engine.model import Allocation
from engine.pack.index import Candidate, IndexStats, MemoryIndex
from engine.pack.result import Pack, PackItem, Skipped
from engine.pack.settings import MemorySettings, fill, glob_regex, literal_prefix
from engine.pack.tokens import counter as get_counter

_WORD = re.compile(r"[^\W_]{2,}")
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
    words = dict.fromkeys(w for t in texts for w in _WORD.findall(t.lower()) if w not in _STOP)
    return list(words)[:MAX_TERMS]


class _Choice(NamedTuple):
    score: float
    pinned: bool
    scope: str
    candidate: Candidate
    why: str


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
                regex = re.compile("|".join(f"(?:{glob_regex(f)})" for f in filled)) if filled else None
                specific = any("{agent_name}" in t or "{agent_type}" in t for t in templates)
                scopes.append((scope, regex, [literal_prefix(f) for f in filled], specific))
            pinned = [re.compile(glob_regex(fill(t, agent))) for t in self.settings.pinned]
            found = self._patterns[agent] = (tuple(scopes), tuple(pinned))
        return found

    def pack(self, allocation: Allocation, task: str | None = None, *, root: str | os.PathLike | None = None,
             context: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None,
             now: float | None = None) -> Pack:
        """Fill ``allocation`` (its budget and per-scope split) with the most relevant memory for ``task``."""
        started = time.perf_counter()
        index = self.index(root)
        stats = index.refresh()
        now = time.time() if now is None else now
        scope_specs, pinned_patterns = self._scope_patterns(allocation.agent)
        lexical = index.lexical(query_terms(task, context))

        by_scope: dict[str, list[_Choice]] = {}
        claimed: set[str] = set()
        skipped: list[Skipped] = [Skipped(p, None, r) for p, r in stats.skipped.items()]
        evaluate = self.relevance.evaluate
        for scope, regex, prefixes, specific in scope_specs:
            rows = [c for c in index.candidates(prefixes) if c.path not in claimed and regex.fullmatch(c.path)]
            for path, reason in index.unloadable(prefixes):
                if regex.fullmatch(path) and path not in claimed:
                    skipped.append(Skipped(path, None, reason))
            best = max((lexical.get(c.id, 0.0) for c in rows), default=0.0) or 1.0
            choices = []
            for c in rows:
                pinned = any(p.fullmatch(c.path) for p in pinned_patterns)
                used = c.last_used if c.last_used is not None else c.mtime
                lex = lexical.get(c.id, 0.0) / best
                features = {"recency_days": max(0.0, (now - used) / 86400.0), "use_count": c.use_count,
                            "lexical": lex, "agent_specific": specific, "scope": scope, "tokens": c.tokens,
                            "pinned": pinned, "confidence": 0.5 if c.confidence is None else c.confidence}
                try:
                    score = evaluate(features)
                except Exception as exc:  # noqa: BLE001 - an expression error scores 0, it does not fail the pack
                    score, why = 0.0, f"relevance failed: {exc}"
                else:
                    if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
                        score, why = 0.0, "relevance is not a number"
                    else:
                        why = _why(features, pinned)
                choices.append(_Choice(float(score), pinned, scope, c, why))
            claimed.update(c.path for c in rows)
            choices.sort(key=lambda ch: (not ch.pinned, -ch.score, ch.candidate.path, ch.candidate.ord))
            by_scope[scope] = choices
        return self._select(allocation, by_scope, skipped, index, stats, provenance, started)

    def _select(self, allocation: Allocation, by_scope: dict[str, list[_Choice]], skipped: list[Skipped],
                index: MemoryIndex, stats: IndexStats, provenance: Mapping[str, Any] | None,
                started: float) -> Pack:
        allowances = {s: int(allocation.scopes.get(s, 0)) for s in dict.fromkeys([*allocation.scopes, *by_scope])}
        left = dict(allowances)
        used = dict.fromkeys(allowances, 0)
        spilled = dict.fromkeys(allowances, 0)
        seen: set[str] = set()
        taken: list[tuple[_Choice, bool]] = []
        waiting: dict[str, list[_Choice]] = {}
        for scope, choices in by_scope.items():
            rest = waiting[scope] = []
            for ch in choices:
                c = ch.candidate
                if c.hash in seen:
                    skipped.append(Skipped(c.path, c.heading or None, "duplicate of content already loaded"))
                elif c.tokens <= left[scope]:
                    seen.add(c.hash)
                    left[scope] -= c.tokens
                    used[scope] += c.tokens
                    taken.append((ch, False))
                else:
                    rest.append(ch)
        pool = sum(left.values())
        for scope in [*self.settings.spill, *(s for s in waiting if s not in self.settings.spill)]:
            if scope not in self.settings.spill:
                break  # scopes not named in the spill order get no spill
            for ch in waiting.get(scope, ()):
                c = ch.candidate
                if c.hash in seen or c.tokens > pool:
                    continue
                seen.add(c.hash)
                pool -= c.tokens
                used[scope] += c.tokens
                spilled[scope] += c.tokens
                taken.append((ch, True))
        loaded_ids = {ch.candidate.id for ch, _ in taken}
        for scope, rest in waiting.items():
            for ch in rest:
                c = ch.candidate
                if c.id in loaded_ids:
                    continue
                if c.hash in seen and c.id not in loaded_ids:
                    reason = "duplicate of content already loaded"
                else:
                    reason = (f"does not fit ({c.tokens:,} tokens; {left[scope]:,} left of {scope}'s "
                              f"{allowances[scope]:,})")
                skipped.append(Skipped(c.path, c.heading or None, reason))
        texts = index.texts([ch.candidate.id for ch, _ in taken])
        items = tuple(
            PackItem(ch.candidate.path, ch.candidate.heading or None, ch.scope, ch.candidate.tokens,
                     ch.candidate.file_tokens, round(ch.score, 4), ch.why + ("; spilled" if spill else ""),
                     texts.get(ch.candidate.id, ""), ch.pinned)
            for ch, spill in taken)
        return Pack(allocation=allocation, root=index.root, allowances=allowances, used=used, spilled=spilled,
                    items=items, skipped=tuple(skipped), provenance=dict(provenance or {}), stats=stats,
                    seconds=time.perf_counter() - started)


def _why(features: Mapping[str, Any], pinned: bool) -> str:
    parts = []
    if pinned:
        parts.append("pinned")
    parts.append(f"lexical {features['lexical']:.2f}")
    parts.append(f"{features['recency_days']:.0f}d old")
    if features["use_count"]:
        parts.append(f"used {features['use_count']}×")
    return ", ".join(parts)
