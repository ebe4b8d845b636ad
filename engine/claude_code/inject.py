"""Fitting a pack into the context a hook may inject.

Claude Code replaces hook output over its cap (10,000 characters) with a preview and a file path. The
adapter never lets that happen: a pack that fits is injected whole; a larger one is written to a file named
per session and agent, and what is injected is a compact index — the file's path and one line per item —
cut to the cap, so the agent reads the memory it needs on demand.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Sequence

from engine.records import Record


class Item(Record):
    """One piece of memory to inject: where it came from, its scope and size, and its text."""

    path: str
    section: str | None
    scope: str
    tokens: int
    text: str


def render(items: Sequence[Item], header: str) -> str:
    """The markdown of a pack: a header line, then each item under a heading naming its path (and section)."""
    parts = [header]
    for item in items:
        where = item.path if not item.section else f"{item.path} § {item.section}"
        parts.append(f"### {where} ({item.scope}, {item.tokens:,} tokens)\n\n{item.text.strip()}")
    return "\n\n".join(parts) + "\n"


def fit(items: Sequence[Item], header: str, cap: int, spill_path: str) -> tuple[str, str | None]:
    """The text to inject (at most ``cap`` characters) and the file the whole pack went to (None if it fit).

    Raises OSError when the spill file cannot be written (the hook then injects nothing)."""
    whole = render(items, header)
    if len(whole) <= cap:
        return whole, None
    _write(spill_path, whole)
    total = sum(i.tokens for i in items)
    intro = (f"{header}\n\nThe selected memory ({len(items)} items, {total:,} tokens) is longer than a hook may "
             f"inject, so it is in `{spill_path}`. Read that file (or the items you need, searching for their "
             f"headings) before relying on memory. Its items, most relevant first:\n")
    lines = [intro]
    used = len(intro)
    for n, item in enumerate(items):
        where = item.path if not item.section else f"{item.path} § {item.section}"
        line = f"- {where} ({item.scope}, {item.tokens:,} tokens)\n"
        rest = f"- … and {len(items) - n} more in the file\n"
        if used + len(line) + len(rest) > cap:
            if used + len(rest) <= cap:
                lines.append(rest)
            break
        lines.append(line)
        used += len(line)
    return "".join(lines)[:cap], spill_path


def spill_file(folder: str, session_id: str, label: str) -> str:
    """Where a pack too large to inject goes: one file per session and agent (``label``)."""
    from engine.digest import sha256_hex

    session = sha256_hex(session_id)[:16]
    safe = label
    if safe.strip(_NAME_CHARACTERS):  # some other character: runs of them become "-" (importing re only then)
        import re

        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", safe)
    return os.path.join(folder, "packs", session, f"{safe.strip('-.')[:80] or 'main'}.md")


_NAME_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"


def _write(path: str, text: str) -> None:
    from engine.claude_code.files import write_atomically

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_atomically(path, text, 0o600, ".pack-")
