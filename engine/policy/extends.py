"""Read a policy and the chain of parents it ``extends:``, and merge them child-over-parent.

Merge rules (documented in docs/policy.md): mappings merge key by key, recursively; any other value (lists
included) replaces the parent's; ``null`` removes the parent's key. Positions follow the values, so a problem
in a merged policy points into the file that wrote the offending value.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.diagnostics import PolicyError, Problem, UsageError
from engine.policy.locate import display_path, read_bytes
from engine.policy.yamlsource import Document, read_document
from engine.resources import bundled_policy

MAX_CHAIN = 16


@dataclass
class Loaded:
    """A merged policy document and the files it came from (label, sha256 of the bytes)."""

    doc: Document
    files: list[tuple[str, str]] = field(default_factory=list)


def load_chain(path: str | os.PathLike, label: str | None = None) -> Loaded:
    """Load ``path`` and its ``extends`` ancestors; raise PolicyError or UsageError (file unreadable)."""
    path = Path(path)
    label = label or display_path(path)
    try:
        raw = read_bytes(path)
    except IsADirectoryError:
        raise UsageError(f"{label}: is a directory, not a policy file") from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot read: {exc.strerror or exc}") from None
    return _load(path.resolve(), label, raw, chain=[])


def _load(path: Path, label: str, raw: bytes, chain: list[Path]) -> Loaded:
    doc = read_document(label, raw)
    digest = hashlib.sha256(raw).hexdigest()
    data = doc.data
    parent_name = data.get("extends") if isinstance(data, dict) else None
    if not isinstance(parent_name, str) or not parent_name:
        return Loaded(doc, [(str(path), digest)])

    where = doc.pos(("extends",))
    parent = _resolve_parent(parent_name, path)
    if parent is None:
        raise PolicyError([Problem(label, where.line, where.col, "extends-missing",
                                   f"cannot find the parent policy {parent_name!r} (a path relative to this "
                                   f"file, or a bundled policy such as 'default')", "$.extends")])
    seen = chain + [path]
    if parent in seen:
        cycle = " → ".join(display_path(p) for p in seen[seen.index(parent):] + [parent])
        raise PolicyError([Problem(label, where.line, where.col, "extends-cycle",
                                   f"'extends' forms a cycle: {cycle}", "$.extends")])
    if len(seen) >= MAX_CHAIN:
        raise PolicyError([Problem(label, where.line, where.col, "extends-cycle",
                                   f"'extends' chains more than {MAX_CHAIN} policies", "$.extends")])
    try:
        parent_raw = read_bytes(parent)
    except OSError as exc:
        raise PolicyError([Problem(label, where.line, where.col, "extends-missing",
                                   f"cannot read the parent policy {parent_name!r}: {exc.strerror or exc}",
                                   "$.extends")]) from None
    base = _load(parent, display_path(parent), parent_raw, seen)
    merged = merge(base.doc, doc)
    return Loaded(merged, [(str(path), digest)] + base.files)


def _resolve_parent(name: str, child: Path) -> Path | None:
    candidate = (child.parent / name).resolve()
    if candidate.is_file():
        return candidate
    if "/" not in name and "\\" not in name and not name.endswith((".yaml", ".yml")):
        bundled = bundled_policy(name)
        if bundled is not None:
            return Path(bundled).resolve()
    return None


def merge(parent: Document, child: Document) -> Document:
    """``child`` over ``parent``; the result's positions point into whichever file wrote each value.

    Positions are the union of both files' with the child's winning: a path in the merged data is either
    written by the child (its position) or inherited untouched from the parent (the parent's). Entries for
    paths the merge dropped are never looked up.
    """
    data = _merge_value(parent.data, child.data)
    if isinstance(data, dict):
        data.pop("extends", None)
    return Document(child.file, data, {**parent.values, **child.values}, {**parent.keys, **child.keys},
                    {**parent.lines, **child.lines})


def _merge_value(base: Any, over: Any) -> Any:
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return over
    result = dict(base)
    for key, value in over.items():
        if value is None:
            result.pop(key, None)
        elif key in result:
            result[key] = _merge_value(result[key], value)
        else:
            result[key] = value
    return result
