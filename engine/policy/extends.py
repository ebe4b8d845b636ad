"""Read a policy and the chain of parents it ``extends:``, and merge them child-over-parent.

Merge rules (documented in docs/policy.md): mappings merge key by key, recursively; any other value (lists
included) replaces the parent's; ``null`` removes the parent's key. Positions follow the values, so a problem
in a merged policy points into the file that wrote the offending value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.diagnostics import PolicyError, Problem, UsageError, suggest
from engine.digest import sha256
from engine.policy.locate import NotRegularFile, display_path, read_bytes
from engine.policy.rules import register
from engine.policy.yamlsource import Document, read_document
from engine.records import Record
from engine.resources import bundled_policy

MAX_CHAIN = 16

for _id, _summary in (
    ("extends-missing", "the parent named by `extends` does not exist"),
    ("extends-cycle", "policies extend each other in a cycle (or a chain longer than 16)"),
    ("extends-path", "the parent is not a regular `.yaml`, `.yml` or `.json` file (another suffix, a FIFO, a "
                     "device, a folder)"),
    ("extends-not-policy", "the parent is not a ctxbudget policy (a mapping with `version` or `extends`); the "
                           "error quotes none of it"),
):
    register(_id, _summary, "extends")
PARENT_SUFFIXES = (".yaml", ".yml", ".json")
"""What a parent policy file's name may end with."""


class Loaded(Record):
    """A merged policy document and the files it came from (label, sha256 of the bytes)."""

    doc: Document
    files: list[tuple[str, str]]


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
    return _load(path.resolve(), read_document(label, raw), raw, chain=[])


def resolve_parent(name: str, child: str | os.PathLike) -> Path | None:
    """The file the ``extends: name`` written in the policy file ``child`` refers to, or None when there is none.

    A bare name (letters, digits, ``-`` and ``_`` only: ``default``) names a bundled policy and nothing else, so
    a local file can never shadow ``default``. Anything else is a path relative to ``child``'s folder (or
    absolute). The result is resolved (symlinks followed) but not yet checked: :func:`load_chain` refuses a
    parent that is not a regular policy file. Stable: the compiled-policy cache keys entries on the chain as
    this resolves it now.
    """
    if is_bundled_name(name):
        bundled = bundled_policy(name)
        return Path(bundled).resolve() if bundled is not None else None
    candidate = (Path(child).parent / name).resolve()
    try:
        os.stat(candidate)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:  # there, but unreadable: reading it says why
        pass
    return candidate


_resolve_parent = resolve_parent  # the name before it was public


def is_bundled_name(name: str) -> bool:
    """Whether ``extends: name`` names a bundled policy rather than a file."""
    return _BUNDLED_NAME.fullmatch(name) is not None


_BUNDLED_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _load(path: Path, doc: Document, raw: bytes, chain: list[Path]) -> Loaded:
    digest = sha256(raw).hexdigest()
    label = doc.file
    data = doc.data
    parent_name = data.get("extends") if isinstance(data, dict) else None
    if not isinstance(parent_name, str) or not parent_name:
        return Loaded(doc, [(str(path), digest)])

    where = doc.pos(("extends",))

    def fail(rule: str, message: str) -> PolicyError:
        return PolicyError([Problem(label, where.line, where.col, rule, message, "$.extends")])

    parent = resolve_parent(parent_name, path)
    if parent is None:
        raise fail("extends-missing", f"cannot find the parent policy {parent_name!r} ({_hint(parent_name, path)})")
    shown = display_path(parent)
    named = repr(parent_name) if shown == parent_name else f"{parent_name!r} ({shown})"
    if parent.suffix.lower() not in PARENT_SUFFIXES:
        raise fail("extends-path", f"the parent policy {named} is not a .yaml, .yml or .json file")
    seen = chain + [path]
    if parent in seen:
        cycle = " → ".join(display_path(p) for p in seen[seen.index(parent):] + [parent])
        raise fail("extends-cycle", f"'extends' forms a cycle: {cycle}")
    if len(seen) >= MAX_CHAIN:
        raise fail("extends-cycle", f"'extends' chains more than {MAX_CHAIN} policies")
    try:
        parent_raw = read_bytes(parent)
    except (NotRegularFile, IsADirectoryError) as exc:
        raise fail("extends-path", f"the parent policy {named} {exc.strerror}") from None
    except OSError as exc:
        raise fail("extends-missing", f"cannot read the parent policy {named}: "
                                      f"{exc.strerror or exc}") from None
    not_policy = fail("extends-not-policy", f"the parent policy {named} is not a ctxbudget policy (a YAML or "
                                            f"JSON mapping with 'version' or 'extends'); none of it is shown")
    try:
        parent_doc = read_document(shown, parent_raw)
    except PolicyError:
        if _POLICY_KEY.search(parent_raw):  # a policy with a mistake in it: show where
            raise
        raise not_policy from None
    if not is_policy_data(parent_doc.data):
        raise not_policy
    base = _load(parent, parent_doc, parent_raw, seen)
    merged = merge(base.doc, doc)
    return Loaded(merged, [(str(path), digest)] + base.files)


def _hint(name: str, child: Path) -> str:
    if is_bundled_name(name):
        for suffix in PARENT_SUFFIXES:
            if (child.parent / (name + suffix)).is_file():
                return "a bare name is a bundled policy" + suggest([name + suffix])
        return "not a bundled policy; a file is named with its .yaml, .yml or .json suffix"
    return "a path relative to this file, or a bundled policy such as 'default'"


def is_policy_data(data: Any) -> bool:
    """Whether parsed data is a ctxbudget policy: a mapping with ``version``, or one that ``extends`` another
    (a middle file of a chain need not repeat the version it inherits)."""
    return isinstance(data, dict) and ("version" in data or isinstance(data.get("extends"), str))


# A top-level ``version`` or ``extends`` key, in YAML or JSON: a file that does not parse, but says it is a policy.
_POLICY_KEY = re.compile(rb"""(?m)^(?:(?:version|extends)|"(?:version|extends)"|'(?:version|extends)')[ \t]*:"""
                         rb"""|"(?:version|extends)"\s*:""")


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
