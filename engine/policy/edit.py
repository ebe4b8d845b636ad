"""Round-trip edits of a policy file: change a few values, keep every comment, key order and format.

    editor = PolicyEditor.open(path)
    editor.set_agent_profile("specialists/dbt-expert", "specialist-broad")
    editor.set_weights("specialist-broad", {"global": 0.3, "agent_recent": 0.2, "agent_patterns": 0.5})
    editor.text()

ruamel.yaml's round-trip mode keeps comments and order; the indentation it writes is chosen among the common
styles as the one that reproduces the unedited file exactly, so only the edited lines change. A value the file
does not set (it comes from the policy it ``extends``) is added as an override.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from engine.diagnostics import UsageError

# (mapping, sequence, offset) indentation styles: the common ones first, then every other plausible one
_COMMON = ((2, 4, 2), (2, 2, 0), (4, 4, 0), (4, 6, 4), (4, 6, 2), (4, 4, 2))
_STYLES = _COMMON + tuple((m, o + d, o) for m in (2, 4, 3) for o in range(0, m + 1) for d in (2, 1, 3, 4)
                          if (m, o + d, o) not in _COMMON)


@dataclass
class PolicyEditor:
    """A policy file loaded for round-trip editing."""

    path: Path
    original: str
    data: Any
    yaml: Any
    reformatted: int = 0  # lines ruamel.yaml rewrites even without an edit (0 for usual files)

    @classmethod
    def open(cls, path: str | Path) -> "PolicyEditor":
        """Load ``path``; UsageError when it cannot be read or parsed."""
        from ruamel.yaml.error import YAMLError

        path = Path(path)
        try:
            original = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        best: tuple[int, Any, Any] | None = None
        for style in _STYLES:
            yaml = _yaml(style)
            try:
                data = yaml.load(original)
            except YAMLError as exc:
                raise UsageError(f"{path}: cannot edit: {str(exc).splitlines()[0]}") from None
            if not isinstance(data, dict):
                raise UsageError(f"{path}: cannot edit: the policy is not a YAML mapping")
            changed = _changed_lines(original, _dump(yaml, data))
            if best is None or changed < best[0]:
                best = (changed, yaml, data)
            if changed == 0:
                break
        assert best is not None
        return cls(path, original, best[2], best[1], best[0])

    def set_agent_profile(self, agent: str, profile: str) -> None:
        """Assign ``agent`` to ``profile`` (adding the assignment when the file does not make it)."""
        agents = self._mapping(self.data, "agents")
        agents[agent] = _like(agents.get(agent), profile)

    def set_weights(self, profile: str, weights: Mapping[str, float]) -> None:
        """Set the scope weights of ``profile`` (each with two decimals), leaving unchanged values alone."""
        profiles = self._mapping(self.data, "profiles")
        entry = self._mapping(profiles, profile)
        current = self._mapping(entry, "weights", flow=True)
        for scope, value in weights.items():
            if scope in current and abs(float(current[scope]) - value) < 1e-9:
                continue
            current[scope] = _two_decimals(value)

    def text(self) -> str:
        return _dump(self.yaml, self.data)

    @staticmethod
    def _mapping(parent: Any, key: str, flow: bool = False) -> Any:
        from ruamel.yaml.comments import CommentedMap

        found = parent.get(key)
        if found is None:
            found = CommentedMap()
            if flow:
                found.fa.set_flow_style()
            parent[key] = found
        return found


def _yaml(style: tuple[int, int, int]) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    yaml.indent(mapping=style[0], sequence=style[1], offset=style[2])
    return yaml


def _dump(yaml: Any, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _changed_lines(before: str, after: str) -> int:
    import difflib

    return sum(1 for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-")


def _like(old: Any, new: str) -> Any:
    """``new`` in the quoting style of ``old``."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    for style in (DoubleQuotedScalarString, SingleQuotedScalarString):
        if isinstance(old, style):
            return style(new)
    return new


def _two_decimals(value: float) -> Any:
    from ruamel.yaml.scalarfloat import ScalarFloat

    return ScalarFloat(round(value, 2), width=4, prec=1, m_lead0=0)  # 0.30, 0.05, 1.00


def unified_diff(path: str, before: str, after: str) -> str:
    import difflib

    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))
