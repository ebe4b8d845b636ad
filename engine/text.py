"""Text from many hands, made safe to show: names in a usage log, a memory root or a policy reach terminals
and Markdown documents."""

from __future__ import annotations

# Characters a terminal acts on rather than shows: C0 and C1 controls and DEL (an ESC starts a sequence that can
# clear the screen, set the window title or write a link), and the bidirectional overrides and isolates, which
# reorder what is shown. Names in a usage log, a memory root or a policy come from many hands, so text output
# shows these as escapes (``\x1b``, ``\u202e``), as ``ls`` does; JSON output escapes C0 controls itself.
_UNSAFE = frozenset([*range(0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
                     *range(0x2066, 0x206A)])


def printable(text: str, newlines: bool = False) -> str:
    """``text`` with the characters a terminal would act on written as escapes (``newlines``: keep ``\\n``)."""
    if text.isprintable() or (newlines and text.replace("\n", "").isprintable()):
        return text  # almost always: one C call
    return "".join(_escaped(ch) if ord(ch) in _UNSAFE and not (newlines and ch == "\n") else ch for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


_MARKDOWN = str.maketrans({ch: "\\" + ch for ch in "\\`*[]<>|~"})


def markdown_text(text: str) -> str:
    """``text`` (a name) as Markdown that shows it as it is: the characters that would start code, emphasis, a
    link, HTML or a table cell escaped with a backslash (``_`` only where it could start or end emphasis, not
    inside a word: ``agent_patterns`` stays as it is), line breaks as spaces, and :func:`printable`."""
    import re

    text = printable(text.replace("\r\n", " ").replace("\n", " ")).translate(_MARKDOWN)
    return re.sub(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", r"\\_", text)
