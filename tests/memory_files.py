"""Memory files for the packing tests: a markdown file under a root (with its sidecar), and filler text."""

from __future__ import annotations

import json
from pathlib import Path


def write(root: Path, rel: str, text: str, meta: dict | None = None) -> Path:
    """``root/rel`` holding ``text`` (folders made as needed), with ``meta`` as its ``.metadata.json`` sidecar."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if meta is not None:
        path.with_suffix(".metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return path


def words(n: int, word: str = "lorem") -> str:
    """``n`` times ``word``, a line."""
    return " ".join([word] * n) + "\n"
