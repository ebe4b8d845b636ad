"""One problem record for every finding, and its renderings.

A :class:`Problem` says where (file, line, column, JSON path), how bad (severity), which rule and what.
Lines and columns are 1-based, as editors show them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Iterable, Sequence

from engine.records import Record, to_dict


class Problem(Record):
    """A finding about a policy (or any input file) at a source position."""

    path: str
    line: int
    col: int
    rule: str
    message: str
    json_path: str = "$"
    severity: str = "error"

    def format(self) -> str:
        """``path:line:col: severity: message [rule]`` — the format editors and CI understand (a message quotes
        values from a policy or a task file: what a terminal would act on is shown as escapes)."""
        from engine.text import printable

        return printable(f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message} [{self.rule}]")

    _json_fields = ("path", "line", "col", "severity", "rule", "message", "json_path")
    to_dict = to_dict

    def github(self) -> str:
        """A GitHub Actions workflow command that annotates the line in a pull request."""
        level = "error" if self.severity == "error" else "warning"
        message = _gh_escape(f"{self.message} [{self.rule}]")
        path = _gh_escape(self.path, prop=True)
        return f"::{level} file={path},line={self.line},col={self.col},title={self.rule}::{message}"


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


class PolicyError(Exception):
    """A policy could not be loaded; ``problems`` says why, best first."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.format() for p in self.problems) or "invalid policy")


class UsageError(Exception):
    """A command-line mistake or an unreadable input (exit code 2)."""


class OutputError(UsageError):
    """The output could not be written (a full disk, a device that refuses writes): said on stderr only (exit
    code 2)."""


class LookupFailed(Exception):
    """A name (agent, tier, profile) that does not resolve; carries close matches (exit code 1)."""

    def __init__(self, kind: str, name: str, suggestions: Iterable[str] = (), detail: str = ""):
        self.kind = kind
        self.name = name
        self.suggestions = list(suggestions)
        super().__init__((detail or f"unknown {kind} {name!r}") + suggest(self.suggestions))


def close_matches(name: object, options: Iterable[object], n: int = 1, cutoff: float = 0.6,
                  spread: float | None = None) -> list[str]:
    """The options closest to ``name`` (at most ``n``, at least ``cutoff`` similar), best first; with
    ``spread``, only those within ``spread`` of the best one's similarity (one clear guess beats three vague
    ones). Names and options are compared as text."""
    import difflib

    text = str(name)
    found = difflib.get_close_matches(text, [str(o) for o in options], n=n, cutoff=cutoff)
    if spread is None or not found:
        return found
    ratios = [difflib.SequenceMatcher(None, text, option).ratio() for option in found]
    return [option for option, ratio in zip(found, ratios) if ratio >= ratios[0] - spread]


def suggest(suggestions: Sequence[str], otherwise: str = "") -> str:
    """``"; did you mean 'a'?"`` (or ``'a', 'b'``) for a message's end; ``otherwise`` when there are none."""
    if not suggestions:
        return otherwise
    return "; did you mean " + ", ".join(repr(s) for s in suggestions) + "?"


def did_you_mean(name: object, options: Iterable[object], otherwise: str = "") -> str:
    """The one "did you mean" of every message: ``"; did you mean 'x'?"`` with the option closest to
    ``name``, or ``otherwise`` when none is close."""
    return suggest(close_matches(name, options), otherwise)
