"""Normalisation of a task: Unicode NFKC, then case folding, once per task, with a way back to the original.

Matching happens on the normalised text; spans are reported in the original. ASCII text (the common case) is
its own NFKC form and folds to ``str.lower()`` without changing length, so its offsets map one to one. Other
text is normalised segment by segment — a segment is a starter (canonical combining class 0) followed by its
combining marks — and every character of a segment's output maps back to the whole segment.
"""

from __future__ import annotations

from engine.records import Record


class Normalized(Record):
    """A task's normalised text and, when offsets differ, where each of its characters came from."""

    text: str
    original: str
    starts: tuple[int, ...] | None = None  # original start index of the segment of each normalised char
    ends: tuple[int, ...] | None = None  # original end index of that segment

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span in the original text covering normalised ``[start, end)``."""
        if self.starts is None:
            return start, end
        if start >= len(self.starts):
            return len(self.original), len(self.original)
        if end <= start:
            return self.starts[start], self.starts[start]
        return self.starts[start], self.ends[end - 1]


def fold(text: str) -> str:
    """NFKC then case folding: how policy literals and task text are compared."""
    if text.isascii():
        return text.lower()
    import unicodedata  # 5-10 ms to load: only for text that needs it

    return unicodedata.normalize("NFKC", text).casefold()


def normalize(text: str) -> Normalized:
    """The normalised form of ``text`` with the offset map back to it."""
    if text.isascii():
        return Normalized(text.lower(), text)
    import unicodedata

    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    begin = 0
    for i in range(1, len(text) + 1):
        if i < len(text) and unicodedata.combining(text[i]):
            continue
        piece = unicodedata.normalize("NFKC", text[begin:i]).casefold()
        pieces.append(piece)
        starts.extend([begin] * len(piece))
        ends.extend([i] * len(piece))
        begin = i
    return Normalized("".join(pieces), text, tuple(starts), tuple(ends))
