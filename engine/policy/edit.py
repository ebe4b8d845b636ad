"""Round-trip edits of a policy file: change a few values, keep every other byte.

    editor = PolicyEditor.open(path)
    editor.set_agent_profile("specialists/dbt-expert", "specialist-broad")
    editor.set_weights("specialist-broad", {"global": 0.3, "agent_recent": 0.2, "agent_patterns": 0.5})
    editor.text()

ruamel.yaml's round-trip loader says where every value is written. A value the file already sets is replaced
in place — the scalar's own characters, in its own quoting — so a change touches only its line, whatever the
layout around it (flow or block, wrapped lists, comments). A value the file does not set (it comes from the
policy it ``extends``) is added through ruamel.yaml's round-trip dumper, and only the top-level sections that
gain keys are taken from the dump (in the file's own indentation); every other section stays as written.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping

from engine.diagnostics import UsageError
from engine.records import Record

# (mapping, sequence, offset) indentation styles: the common ones first, then every other plausible one
_COMMON = ((2, 4, 2), (2, 2, 0), (4, 4, 0), (4, 6, 4), (4, 6, 2), (4, 4, 2))
_STYLES = _COMMON + tuple((m, o + d, o) for m in (2, 4, 3) for o in range(0, m + 1) for d in (2, 1, 3, 4)
                          if (m, o + d, o) not in _COMMON)

# a plain scalar ends at a comment, or in flow context at , ] }
_PLAIN_END = re.compile(r"\s+#|[,\]}]|\s*$")


class _Insert(Record):
    path: tuple[str, ...]  # mappings leading to the key (created when missing)
    key: str
    value: Any
    flow: bool = False  # a new innermost mapping is written {a: 1, b: 2}


class PolicyEditor:
    """A policy file loaded for round-trip editing.

    ``raw`` is the file's bytes as read (what ``apply`` compares before it replaces the file) and ``original``
    their text, line endings and all. A file whose every line ends in CRLF is edited as LF text and written
    back with CRLF, so the result keeps the file's line endings, inserted lines included.
    """

    # A stateful editor (edits accumulate until the file is written), so a plain class, not a record.
    __slots__ = ("path", "original", "data", "raw", "newline", "_source", "_replacements", "_inserts", "reformatted")

    def __init__(self, path: Path, original: str, data: Any, raw: bytes = b"", newline: str = "\n",
                 _source: str = "") -> None:
        self.path = path
        self.original = original
        self.data = data  # ruamel.yaml's round-trip document of the text being edited
        self.raw = raw or original.encode("utf-8")
        self.newline = newline
        # ``original`` with CRLF line ends as LF (when ``newline`` is CRLF): what the edits address
        self._source = _source or original
        self._replacements: dict[tuple[int, int], tuple[int, str]] = {}  # (line, col) → end, text
        self._inserts: list[_Insert] = []
        self.reformatted = 0  # lines outside the edits that the dumper rewrote (0 unless a section it dumps differs)

    @classmethod
    def open(cls, path: str | Path) -> "PolicyEditor":
        """Load ``path`` (a regular file, read without blocking); UsageError when it cannot be read or parsed."""
        from engine.policy.locate import read_bytes

        path = Path(path)
        try:
            raw = read_bytes(path)
            original = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        newline = "\r\n" if "\r\n" in original and original.count("\r\n") == original.count("\n") else "\n"
        source = original.replace("\r\n", "\n") if newline == "\r\n" else original
        data = _load(_yaml(_COMMON[0]), source, path)
        return cls(path, original, data, raw, newline, source)

    # -- edits ----------------------------------------------------------------------------------------------

    def set_agent_profile(self, agent: str, profile: str) -> None:
        """Assign ``agent`` to ``profile``."""
        self._set(("agents",), agent, profile)

    def set_weights(self, profile: str, weights: Mapping[str, float]) -> None:
        """Set the scope weights of ``profile`` (two decimals each); unchanged values stay as written."""
        current = _get(self.data, ("profiles", profile, "weights"))
        for scope, value in weights.items():
            old = current.get(scope) if isinstance(current, dict) else None
            if isinstance(old, (int, float)) and abs(float(old) - value) < 1e-9:
                continue
            self._set(("profiles", profile, "weights"), scope, round(value, 2), flow=True)

    def _set(self, path: tuple[str, ...], key: str, value: Any, flow: bool = False) -> None:
        parent = _get(self.data, path)
        if isinstance(parent, dict) and key in parent and not isinstance(parent[key], (dict, list)):
            line, col = parent.lc.value(key)
            written = self._source.splitlines()[line]
            end = _scalar_end(written, col)
            self._replacements[(line, col)] = (end, _render(written[col:end], value))
        else:
            self._inserts.append(_Insert(path, key, value, flow))

    # -- the result -----------------------------------------------------------------------------------------

    def text(self) -> str:
        """The edited file, in the file's own line endings."""
        lines = self._source.splitlines(keepends=True)
        for (line, col), (end, new) in sorted(self._replacements.items(), reverse=True):
            lines[line] = lines[line][:col] + new + lines[line][end:]
        text = "".join(lines)
        text = self._insert(text) if self._inserts else text
        return text.replace("\n", self.newline) if self.newline != "\n" else text

    def _insert(self, text: str) -> str:
        """``text`` with the inserted keys: the sections that gain keys come from ruamel.yaml's dump."""
        yaml = _best_yaml(text, self.path)
        data = _load(yaml, text, self.path)
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        # YAML's document end marker ("..." at the start of a line) and what follows it (comments) stay last:
        # a section added or rewritten after it would not be part of the document
        end = next((i for i, line in enumerate(lines) if line.rstrip("\r\n") == "..." or line.startswith("... ")
                    or line.startswith("...#") or line.startswith("...\t")), len(lines))
        lines, tail = lines[:end], lines[end:]
        before = _section_lines(data, len(lines))
        if len({start for start, _ in before.values()}) < len(before):  # keys share a line: a flow document
            for insert in self._inserts:
                _put(data, insert)
            return _dump(yaml, data)
        noop = _dump(yaml, data)
        noop_lines = noop.splitlines(keepends=True)
        noop_ranges = _section_lines(_load(yaml, noop, self.path), len(noop_lines))
        touched = list(dict.fromkeys(insert.path[0] for insert in self._inserts))
        for insert in self._inserts:
            _put(data, insert)
        dumped = _dump(yaml, data).splitlines(keepends=True)
        after = _section_lines(_load(yaml, "".join(dumped), self.path), len(dumped))
        out = []
        for key, (start, end) in before.items():
            if key in touched:
                new_start, new_end = after[key]
                out += dumped[new_start:new_end]
                old_start, old_end = noop_ranges[key]
                self.reformatted += _changed_lines("".join(lines[start:end]), "".join(noop_lines[old_start:old_end]))
            else:
                out += lines[start:end]
        first = min((start for start, _ in before.values()), default=len(lines))
        out = lines[:first] + out  # the comments before the first key
        for key in touched:
            if key not in before:
                new_start, new_end = after[key]
                out += dumped[new_start:new_end]
        return "".join(out + tail)


def _yaml(style: tuple[int, int, int]) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a line
    yaml.indent(mapping=style[0], sequence=style[1], offset=style[2])
    return yaml


def _load(yaml: Any, text: str, path: Path) -> Any:
    from ruamel.yaml.error import YAMLError

    try:
        data = yaml.load(text)
    except YAMLError as exc:
        raise UsageError(f"{path}: cannot edit: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: cannot edit: the policy is not a YAML mapping")
    return data


def _dump(yaml: Any, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _best_yaml(text: str, path: Path) -> Any:
    """The indentation style whose dump of ``text`` changes the fewest lines (none, for usual files)."""
    best: tuple[int, Any] | None = None
    for style in _STYLES:
        yaml = _yaml(style)
        changed = _changed_lines(text, _dump(yaml, _load(yaml, text, path)))
        if best is None or changed < best[0]:
            best = (changed, yaml)
        if changed == 0:
            break
    assert best is not None
    return best[1]


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _put(data: Any, insert: _Insert) -> None:
    from ruamel.yaml.comments import CommentedMap

    for depth, key in enumerate(insert.path):
        found = data.get(key)
        if not isinstance(found, dict):
            found = CommentedMap()
            if insert.flow and depth == len(insert.path) - 1:
                found.fa.set_flow_style()
            data[key] = found
        data = found
    data[insert.key] = _two_decimals(insert.value) if isinstance(insert.value, float) else insert.value


def _section_lines(data: Any, count: int) -> dict[str, tuple[int, int]]:
    """The lines of each top-level key's section: from its key's line to the next key's (or the end)."""
    starts = [(data.lc.key(key)[0], key) for key in data]
    ends = [line for line, _ in starts[1:]] + [count]
    return {key: (start, end) for (start, key), end in zip(starts, ends)}


def _scalar_end(line: str, col: int) -> int:
    """Where the scalar starting at ``col`` of ``line`` ends (exclusive)."""
    quote = line[col:col + 1]
    if quote in ("'", '"'):
        i = col + 1
        while i < len(line):
            if quote == '"' and line[i] == "\\":
                i += 2
                continue
            if line[i] == quote:
                if quote == "'" and line[i + 1:i + 2] == "'":  # '' inside single quotes
                    i += 2
                    continue
                return i + 1
            i += 1
        return len(line.rstrip("\r\n"))
    match = _PLAIN_END.search(line, col)
    return match.start() if match else len(line)


def _render(old: str, value: Any) -> str:
    """``value`` written the way ``old`` was: the same quotes; a number with as many decimals (two at least)."""
    if isinstance(value, float):
        decimals = len(old.split(".", 1)[1]) if "." in old else 2
        return f"{value:.{max(decimals, 2)}f}"
    if old[:1] in ("'", '"'):
        return old[0] + str(value).replace(old[0], "\\" + old[0] if old[0] == '"' else "''") + old[0]
    return str(value)


def _two_decimals(value: float) -> Any:
    from ruamel.yaml.scalarfloat import ScalarFloat

    return ScalarFloat(round(value, 2), width=4, prec=1, m_lead0=0)  # 0.30, 0.05, 1.00


def _changed_lines(before: str, after: str) -> int:
    import difflib

    return sum(1 for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-")


def unified_diff(path: str, before: str, after: str) -> str:
    import difflib

    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))
