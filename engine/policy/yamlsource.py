"""Read a YAML file into plain Python data plus the source position of every key and value.

Policies come from many hands, so this is the trust boundary. Everything is bounded before ruamel sees it or
while its events stream past: file size, encoding, control characters, nesting depth, alias expansion (the
"billion laughs"), duplicate keys. The composer here is iterative (no recursion, so 20,000 nested brackets
stop at the first bracket past the limit) and builds plain ``dict``/``list``/scalars — nothing downstream
ever sees a ruamel node.

Positions are keyed by JSON path tuples (``("profiles", "role-architect", "max")``); lines and columns are
1-based.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.diagnostics import PolicyError, Problem
from engine.policy.locate import MAX_BYTES
from engine.policy.rules import register
from engine.records import Record

for _id, _summary in (
    ("file-too-large", "the file is larger than a policy may be (1 MiB)"),
    ("yaml-encoding", "the file is not UTF-8 text"),
    ("yaml-control-character", "a control character (a binary file?)"),
    ("empty-policy", "the file holds no YAML document"),
    ("yaml-syntax", "the file is not valid YAML"),
    ("yaml-tab", "a tab character where YAML needs spaces"),
    ("yaml-duplicate-key", "a mapping key written twice"),
    ("yaml-too-deep", "mappings and lists nested more than 64 levels"),
    ("yaml-alias-expansion", 'aliases expanding to more than 200,000 nodes (a "billion laughs")'),
    ("yaml-multiple-documents", "more than one YAML document in the file"),
    ("yaml-tag", "an unsupported or mismatched YAML tag"),
    ("yaml-complex-key", "a mapping or list used as a mapping key"),
    ("yaml-number", "a number no setting can hold: an integer beyond 64 bits, or `.nan` / `.inf`"),
):
    register(_id, _summary, "reading")

MAX_DEPTH = 64  # nesting of mappings and sequences
MAX_NODES = 200_000  # nodes after alias expansion

Path = tuple  # of str | int


class Pos(Record):
    """Where something is written: file label, 1-based line and column."""

    file: str
    line: int
    col: int


class Document:
    """A YAML document as plain data, with the positions of values (``values``) and mapping keys (``keys``).

    Filled while the YAML is composed (and merged along ``extends``), so a plain class, not a record."""

    __slots__ = ("file", "data", "values", "keys", "lines")

    def __init__(self, file: str, data: Any, values: dict[Path, Pos] | None = None,
                 keys: dict[Path, Pos] | None = None, lines: dict[str, list[str]] | None = None) -> None:
        self.file = file
        self.data = data
        self.values: dict[Path, Pos] = {} if values is None else values
        self.keys: dict[Path, Pos] = {} if keys is None else keys
        self.lines: dict[str, list[str]] = {} if lines is None else lines  # file → its source lines

    def __repr__(self) -> str:
        return f"Document(file={self.file!r}, {len(self.values)} values)"

    def pos_in_scalar(self, path: Path, line: int, column: int) -> Pos:
        """The file position of (1-based) ``line``/``column`` inside the string scalar at ``path``.

        Exact for one-line plain and quoted scalars (the usual way to write an expression); for block scalars
        and escapes, the position of the scalar itself.
        """
        start = self.pos(path)
        value = self.data
        for part in path:
            value = value[part]
        text = self.lines.get(start.file, [])
        written = text[start.line - 1][start.col - 1:] if 0 < start.line <= len(text) else ""
        if line == 1 and isinstance(value, str):
            if written.startswith(value):
                return Pos(start.file, start.line, start.col + column - 1)
            if written[:1] in "'\"" and written[1:].startswith(value):
                return Pos(start.file, start.line, start.col + column)
        return start

    def pos(self, path: Path, key: bool = False) -> Pos:
        """The position of ``path`` (of its key when ``key``), else of its nearest ancestor that has one."""
        path = tuple(path)
        if path in self.keys and (key or (path in self.values and self.values[path].line > self.keys[path].line)):
            return self.keys[path]  # the key, or a block collection's key line rather than its first entry
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Pos(self.file, 1, 1))


def read_document(file: str, raw: bytes) -> Document:
    """Parse ``raw`` (the bytes of ``file``) into a :class:`Document`, or raise :class:`PolicyError`."""
    if len(raw) > MAX_BYTES:
        _fail(file, 1, 1, "file-too-large",
              f"file is {len(raw):,} bytes; a policy may be at most {MAX_BYTES:,} bytes")
    text = _decode(file, raw)
    bad = _CONTROL.search(text)
    if bad:
        line, col = _line_col(text, bad.start())
        _fail(file, line, col, "yaml-control-character",
              f"control character U+{ord(bad.group()):04X} is not allowed in YAML (is this a binary file?)")
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        _fail(file, 1, 1, "empty-policy", "the file is empty; a policy is a YAML mapping (see docs/policy.md)")
    return _Composer(file).compose(text)


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


def _decode(file: str, raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        _fail(file, 1, 1, "yaml-encoding", "the file is UTF-16; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        _fail(file, line, col, "yaml-encoding",
              f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}; is this a binary file?)")
    raise AssertionError  # unreachable


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _fail(file: str, line: int, col: int, rule: str, message: str) -> None:
    raise PolicyError([Problem(file, line, col, rule, message)])


# YAML 1.2 core schema, for plain (unquoted) scalars.
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_STD_TAG = "tag:yaml.org,2002:"


class BadNumber(ValueError):
    """A number no policy setting can hold: beyond 64-bit integers, or not finite (``.nan``, ``.inf``)."""


_INT_RANGE = (-(1 << 63), (1 << 64) - 1)


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 24 else f"'{text[:12]}…{text[-6:]}' ({len(text)} characters)"


def _plain_scalar(value: str) -> Any:
    if _NULL.fullmatch(value):
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT.fullmatch(value):
        if len(value) > 24:  # before converting: Python refuses to convert more than 4,300 digits
            raise BadNumber(f"the integer {_shown(value)} is too large (policy numbers fit in 64 bits)")
        if value.startswith("0o"):
            number = int(value[2:], 8)
        elif value.startswith("0x"):
            number = int(value[2:], 16)
        else:
            number = int(value)
        if not _INT_RANGE[0] <= number <= _INT_RANGE[1]:
            raise BadNumber(f"the integer {_shown(value)} is too large (policy numbers fit in 64 bits)")
        return number
    if _FLOAT.fullmatch(value):
        lowered = value.lower()
        if lowered.endswith((".inf", ".nan")):
            raise BadNumber(f"{value} is not a number a policy can use (numbers must be finite)")
        number = float(value)
        if number in (float("inf"), float("-inf")):
            raise BadNumber(f"the number {_shown(value)} is too large (beyond the range of a double)")
        return number
    return value


class _Frame:
    """A mapping or sequence under construction."""

    __slots__ = ("path", "container", "key", "key_pos", "anchor", "nodes", "merges", "first_keys")

    def __init__(self, path: Path, container: Any, anchor: str | None):
        self.path = path
        self.container = container
        self.key: Any = _NO_KEY  # for mappings: the key waiting for its value
        self.key_pos: Pos | None = None
        self.anchor = anchor
        self.nodes = 1  # expanded node count, for the alias budget
        self.merges: list[tuple[Any, Pos]] = []  # `<<` merge-key values, applied at the end
        self.first_keys: dict[str, Pos] = {}


_NO_KEY = object()
_MERGE = object()


class _Composer:
    """Builds plain data from ruamel's event stream, iteratively, within the limits above."""

    def __init__(self, file: str):
        self.file = file
        self.doc = Document(file, None)
        self.problems: list[Problem] = []
        self.nodes = 0
        # anchor -> (value, expanded node count, [(relative path, Pos, is_key)])
        self.anchors: dict[str, tuple[Any, int, list]] = {}

    def pos(self, mark: Any) -> Pos:
        return Pos(self.file, mark.line + 1, mark.column + 1)

    def compose(self, text: str) -> Document:
        self.doc.lines[self.file] = text.splitlines()
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        try:
            yaml = YAML(typ="safe", pure=False)  # the C parser (ruamel.yaml.clib) when installed
        except Exception:  # pragma: no cover - clib missing
            yaml = YAML(typ="safe", pure=True)
        try:
            self._consume(yaml.parse(text))
        except PolicyError:
            raise
        except MarkedYAMLError as exc:
            raise PolicyError([self._syntax_problem(exc, text)]) from None
        except YAMLError as exc:  # ReaderError and friends carry an index, not a mark
            index = getattr(exc, "position", 0) or 0
            line, col = _line_col(text, min(index, len(text)))
            raise PolicyError([Problem(self.file, line, col, "yaml-syntax", str(exc).splitlines()[0])]) from None
        except RecursionError:  # pragma: no cover - guarded by MAX_DEPTH
            raise PolicyError([Problem(self.file, 1, 1, "yaml-too-deep", "the document nests too deeply")]) from None
        if self.problems:
            raise PolicyError(self.problems)
        return self.doc

    def _syntax_problem(self, exc: Any, text: str) -> Problem:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        lines = text.splitlines()
        at = lines[line - 1][col - 1:col] if 0 < line <= len(lines) else ""
        if at == "\t" or "tab" in problem:
            return Problem(self.file, line, col, "yaml-tab",
                           "a tab character in indentation; YAML indents with spaces")
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context.strip()})"
        return Problem(self.file, line, col, "yaml-syntax", problem)

    def _consume(self, events: Any) -> None:
        stack: list[_Frame] = []
        documents = 0
        for event in events:
            kind = type(event).__name__
            if kind == "ScalarEvent":
                self._value(stack, self._scalar(event), self.pos(event.start_mark), event.anchor, 1, [])
            elif kind in ("MappingStartEvent", "SequenceStartEvent"):
                if len(stack) >= MAX_DEPTH:
                    p = self.pos(event.start_mark)
                    _fail(self.file, p.line, p.col, "yaml-too-deep",
                          f"the document nests more than {MAX_DEPTH} levels deep")
                path = self._child_path(stack)
                container: Any = {} if kind == "MappingStartEvent" else []
                if event.tag and event.tag not in (_STD_TAG + "map", _STD_TAG + "seq", "!"):
                    p = self.pos(event.start_mark)
                    self.problems.append(Problem(self.file, p.line, p.col, "yaml-tag",
                                                 f"unsupported YAML tag {event.tag!r}"))
                self._count(1, event)
                stack.append(_Frame(path, container, event.anchor))
                self._record(path, self.pos(event.start_mark))
            elif kind in ("MappingEndEvent", "SequenceEndEvent"):
                frame = stack.pop()
                if frame.merges:
                    self._apply_merges(frame)
                rel = self._relative_positions(frame.path) if frame.anchor else []
                if frame.anchor:
                    self.anchors[frame.anchor] = (frame.container, frame.nodes, rel)
                self._attach(stack, frame.container, self.doc.values[frame.path], frame.nodes)
            elif kind == "AliasEvent":
                p = self.pos(event.start_mark)
                if event.anchor not in self.anchors:
                    _fail(self.file, p.line, p.col, "yaml-syntax", f"unknown alias *{event.anchor}")
                value, nodes, rel = self.anchors[event.anchor]
                self._count(nodes, event)
                self._value(stack, _copy(value), p, None, nodes, rel)
            elif kind == "DocumentStartEvent":
                documents += 1
                if documents > 1:
                    p = self.pos(event.start_mark)
                    _fail(self.file, p.line, p.col, "yaml-multiple-documents",
                          "a policy file holds one YAML document; found a second")

    # -- building -------------------------------------------------------------------------------------

    def _scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag and tag[len(_STD_TAG):] in ("str", "int", "float", "bool", "null") and tag.startswith(_STD_TAG):
            name = tag[len(_STD_TAG):]
            text = event.value
            try:
                if name == "str":
                    return text
                if name in ("int", "float", "bool", "null"):
                    value = _plain_scalar(text)
                    expected = {"int": int, "float": (int, float), "bool": bool, "null": type(None)}[name]
                    if isinstance(value, expected) and not (name != "bool" and isinstance(value, bool)):
                        return float(value) if name == "float" else value
            except ValueError:
                pass
            p = self.pos(event.start_mark)
            self.problems.append(Problem(self.file, p.line, p.col, "yaml-tag", f"{text!r} is not a valid !!{name}"))
            return text
        if tag and tag != "!":
            p = self.pos(event.start_mark)
            self.problems.append(Problem(self.file, p.line, p.col, "yaml-tag", f"unsupported YAML tag {tag!r}"))
            return event.value
        if event.style or tag == "!":  # quoted or block scalars are strings
            return event.value
        try:
            return _plain_scalar(event.value)
        except BadNumber as exc:
            p = self.pos(event.start_mark)
            self.problems.append(Problem(self.file, p.line, p.col, "yaml-number", str(exc)))
            return event.value

    def _child_path(self, stack: list[_Frame]) -> Path:
        if not stack:
            return ()
        top = stack[-1]
        if isinstance(top.container, list):
            return top.path + (len(top.container),)
        if top.key is _NO_KEY:  # a mapping or sequence used as a key
            return top.path + ("?",)
        return top.path + (top.key,)

    def _count(self, nodes: int, event: Any) -> None:
        self.nodes += nodes
        if self.nodes > MAX_NODES:
            p = self.pos(event.start_mark)
            _fail(self.file, p.line, p.col, "yaml-alias-expansion",
                  f"the document expands to more than {MAX_NODES:,} nodes (aliases of aliases?)")

    def _record(self, path: Path, pos: Pos) -> None:
        self.doc.values[path] = pos

    def _value(self, stack: list[_Frame], value: Any, pos: Pos, anchor: str | None, nodes: int, rel: list) -> None:
        if not stack:  # the document's root is a scalar or an alias
            self.doc.data = value
            self._record((), pos)
            return
        if nodes == 1 and not rel:
            self._count(1, _MarkAt(pos))
        top = stack[-1]
        if isinstance(top.container, dict) and top.key is _NO_KEY:
            self._key(top, value, pos)
            return
        path = self._child_path(stack)
        self._record(path, pos)
        for sub, sub_pos, is_key in rel:
            (self.doc.keys if is_key else self.doc.values)[path + sub] = sub_pos
        if anchor:
            self.anchors[anchor] = (value, nodes, [])
        self._attach(stack, value, pos, nodes)

    def _key(self, top: _Frame, key: Any, pos: Pos) -> None:
        if key == "<<":
            top.key, top.key_pos = _MERGE, pos
            return
        if isinstance(key, (dict, list)):
            self.problems.append(Problem(self.file, pos.line, pos.col, "yaml-complex-key",
                                         "a mapping key must be a plain value, not a mapping or list"))
            key = "?"
        key = _key_text(key)
        if key in top.first_keys:
            first = top.first_keys[key]
            self.problems.append(Problem(self.file, pos.line, pos.col, "yaml-duplicate-key",
                                         f"duplicate key {key!r} (first defined at line {first.line})",
                                         _json_path(top.path + (key,))))
        else:
            top.first_keys[key] = pos
        top.key, top.key_pos = key, pos
        self.doc.keys[top.path + (key,)] = pos

    def _attach(self, stack: list[_Frame], value: Any, pos: Pos, nodes: int) -> None:
        if not stack:
            self.doc.data = value
            return
        top = stack[-1]
        top.nodes += nodes
        if isinstance(top.container, list):
            top.container.append(value)
        elif top.key is _MERGE:
            top.merges.append((value, pos))
            top.key = _NO_KEY
        elif top.key is _NO_KEY:  # a collection used as a key
            self._key(top, value, pos)
        else:
            top.container[top.key] = value
            top.key = _NO_KEY

    def _apply_merges(self, frame: _Frame) -> None:
        """YAML merge keys (``<<: *base``): keys written in the mapping win over merged ones."""
        for value, pos in frame.merges:
            sources = value if isinstance(value, list) else [value]
            for source in sources:
                if not isinstance(source, dict):
                    self.problems.append(Problem(self.file, pos.line, pos.col, "yaml-syntax",
                                                 "a merge key (<<) takes a mapping or a list of mappings"))
                    continue
                for key, item in source.items():
                    if key not in frame.container:
                        frame.container[key] = _copy(item)
                        self.doc.values.setdefault(frame.path + (key,), pos)
                        self.doc.keys.setdefault(frame.path + (key,), pos)

    def _relative_positions(self, root: Path) -> list:
        n = len(root)
        rel = [(p[n:], pos, False) for p, pos in self.doc.values.items() if p[:n] == root and len(p) > n]
        rel += [(p[n:], pos, True) for p, pos in self.doc.keys.items() if p[:n] == root and len(p) > n]
        return rel


class _MarkAt:
    """Adapts a :class:`Pos` to the ``start_mark`` shape ``_count`` reports from."""

    def __init__(self, pos: Pos):
        self.start_mark = _Mark(pos.line - 1, pos.col - 1)


class _Mark:
    def __init__(self, line: int, column: int):
        self.line, self.column = line, column


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _copy(value: Any) -> Any:
    """A deep copy of plain data, iterative (aliases may be deep)."""
    if not isinstance(value, (dict, list)):
        return value
    root: Any = {} if isinstance(value, dict) else []
    todo = [(value, root)]
    while todo:
        src, dst = todo.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for k, v in items:
            if isinstance(v, (dict, list)):
                new: Any = {} if isinstance(v, dict) else []
                todo.append((v, new))
                v = new
            if isinstance(dst, dict):
                dst[k] = v
            else:
                dst.append(v)
    return root


def _json_path(path: Path) -> str:
    """``("profiles", "role-architect", "max")`` → ``$.profiles['role-architect'].max``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}"
        else:
            out += "[" + repr(str(part)) + "]"
    return out


json_path = _json_path
