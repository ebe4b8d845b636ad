"""A quick reading of simple command lines, so that a warm ``ctxbudget budget`` never imports argparse.

argparse, its gettext and building even one command's parser cost a hook ~6 ms on every start (measured:
``python -c "import re, json, typing"`` against the same plus ``build_parser('budget').parse_args(...)``).
Most command lines are simple: the command's name, its positionals in one run, exact option names. For
those, :func:`parse` reads the command's options from its own ``configure(parser)`` — recorded by
:class:`Spec`, a stand-in with the few ``add_argument`` features the commands use — and builds the same
Namespace argparse would. It never *repairs* a command line: anything else (``--help``, an abbreviation, a
clustered short flag, ``--``, an unknown option, a bad value, a missing or an extra argument, two options of
one exclusive group, a command whose ``configure`` uses an argparse feature not recorded here) returns
``None`` before anything runs, and :func:`engine.cli.main` hands the command line to argparse, which
accepts it or prints its usual error. So there is one meaning of a command line: argparse's.
``tests/test_cli_quick.py`` checks the Namespaces are equal on a table of command lines and on generated ones.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Sequence


class Unsupported(Exception):
    """``configure`` used an argparse feature :class:`Spec` does not record: argparse parses that command."""


class Action:
    """One recorded ``add_argument``."""

    __slots__ = ("names", "dest", "kind", "const", "default", "type", "choices", "required", "group")

    def __init__(self, names: tuple, dest: str, kind: str, const: Any, default: Any, type: Any, choices: Any,
                 required: bool, group: int | None) -> None:
        self.names, self.dest, self.kind, self.const, self.default = names, dest, kind, const, default
        self.type, self.choices, self.required, self.group = type, choices, required, group


_KEYS = frozenset({"action", "nargs", "const", "default", "type", "choices", "required", "help", "metavar", "dest"})


class Spec:
    """Records what ``configure(parser)`` adds: the stand-in for an ``argparse.ArgumentParser``."""

    def __init__(self) -> None:
        self.positionals: list[Action] = []
        self.options: dict[str, Action] = {}
        self.actions: list[Action] = []
        self.defaults: dict[str, Any] = {}
        self._groups = 0
        self._group_id: int | None = None

    def add_argument(self, *names: str, **kw: Any) -> Action:
        if not names or set(kw) - _KEYS:
            raise Unsupported(names)
        action = kw.get("action") or "store"
        nargs = kw.get("nargs")
        optional = names[0].startswith("-")
        if action not in ("store", "store_true", "store_const") or nargs not in (None, "?", "*") or \
                (action != "store" and nargs is not None) or (optional and nargs is not None) or \
                (nargs == "*" and (kw.get("default") is not None or kw.get("choices") is not None)) or \
                any(len(n) < 2 or n[0] != "-" or (n[1] != "-" and len(n) != 2) for n in names if optional):
            raise Unsupported(names)
        if optional:
            long = next((n for n in names if n.startswith("--")), names[0])
            dest = kw.get("dest") or long.lstrip("-").replace("-", "_")
        else:
            if len(names) != 1 or "dest" in kw or any(p.kind == "many" for p in self.positionals):
                raise Unsupported(names)  # a positional after a nargs="*" one: argparse's
            dest = names[0]
        default = False if action == "store_true" and "default" not in kw else kw.get("default")
        kind_type = kw.get("type")
        if isinstance(default, str) and kind_type is not None:
            default = kind_type(default)  # argparse converts a string default
        required = bool(kw.get("required")) if optional else nargs is None
        if nargs == "*":
            default = []  # argparse's value for a nargs="*" positional given nothing (and no default)
        kind = "many" if nargs == "*" else action
        item = Action(names, dest, kind, True if action == "store_true" else kw.get("const"), default,
                      kind_type, kw.get("choices"), required, self._group_id)
        if optional:
            for name in names:
                self.options[name] = item
        else:
            self.positionals.append(item)
        self.actions.append(item)
        return item

    def add_mutually_exclusive_group(self, required: bool = False) -> _Group:
        if required:
            raise Unsupported("a required exclusive group")
        self._groups += 1
        return _Group(self, self._groups)

    def set_defaults(self, **kw: Any) -> None:
        self.defaults.update(kw)
        for action in self.actions:  # as argparse: a default set here replaces the action's own
            if action.dest in kw:
                action.default = kw[action.dest]


class _Group:
    """A mutually exclusive group: its options are recorded on the spec, tagged with the group."""

    def __init__(self, spec: Spec, number: int) -> None:
        self._spec, self._number = spec, number

    def add_argument(self, *names: str, **kw: Any) -> Action:
        if not names[0].startswith("-"):
            raise Unsupported(names)
        self._spec._group_id = self._number
        try:
            return self._spec.add_argument(*names, **kw)
        finally:
            self._spec._group_id = None


_SPECS: dict[str, Spec | None] = {}


def spec_of(module: Any) -> Spec | None:
    """The recorded options of a command module (None when argparse must parse it)."""
    name = module.__name__
    if name not in _SPECS:
        spec = Spec()
        try:
            module.configure(spec)
        except Unsupported:
            spec = None
        _SPECS[name] = spec
    return _SPECS[name]


def parse(argv: Sequence[str]) -> Any:
    """The Namespace argparse would give for ``argv``, or None when argparse must read it (see above)."""
    if not argv or argv[0].startswith("-") or not _is_command(argv[0]):
        return None
    name = f"engine.cli.commands.{argv[0].replace('-', '_')}"
    __import__(name)  # not importlib.import_module: importlib is a module to import (the console script has not)
    module = sys.modules[name]
    spec = spec_of(module)
    if spec is None:
        return None
    values: dict[str, Any] = {}
    seen: list[Action] = []
    positionals: list[str] = []
    run_ended = False  # the positionals must be one run: argparse reads runs split by options its own way
    words = argv[1:]
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "-" or not word.startswith("-"):
            if positionals and run_ended:
                return None
            positionals.append(word)
            continue
        if positionals:
            run_ended = True
        name, eq, given = word.partition("=")
        action = spec.options.get(name if eq else word)
        if action is None or (eq and (not name.startswith("--") or not given or given == "--")):
            return None
        if action.kind == "store":
            if not eq:
                if i >= len(words) or (words[i].startswith("-") and words[i] != "-"):
                    return None
                given = words[i]
                i += 1
            value = _value(action, given)
            if value is _BAD:
                return None
        elif eq:
            return None
        else:
            value = action.const
        values[action.dest] = value
        seen.append(action)
    slots = spec.positionals
    many = slots[-1].kind == "many" if slots else False
    if (len(positionals) > len(slots) and not many) or any(a.required for a in slots[len(positionals):]):
        return None
    for n, action in enumerate(slots):
        words_for = positionals[n:] if action.kind == "many" else positionals[n:n + 1]
        if not words_for:
            continue
        converted = [_value(action, word) for word in words_for]
        if _BAD in converted:
            return None
        values[action.dest] = converted if action.kind == "many" else converted[0]
    groups = [a.group for a in dict.fromkeys(seen) if a.group is not None]
    if len(groups) != len(set(groups)) or any(a.required and a not in seen for a in spec.options.values()):
        return None
    sub: dict[str, Any] = {}
    for action in spec.actions:  # as argparse: the first action of a dest gives its default
        sub.setdefault(action.dest, action.default)
    for dest, value in spec.defaults.items():
        sub.setdefault(dest, value)
    sub.update(values)
    sub["run"] = module.run
    # as argparse's subparsers: the command's name, then everything its own parser set (init's --command too)
    return Namespace(**{"command": argv[0], **sub})


class Namespace:
    """argparse.Namespace's behaviour (attributes, equality, ``vars``) without importing argparse."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other) if hasattr(other, "__dict__") else NotImplemented

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def __repr__(self) -> str:
        return "Namespace(" + ", ".join(f"{k}={v!r}" for k, v in sorted(self.__dict__.items())) + ")"


_BAD = object()


def _value(action: Action, word: str) -> Any:
    """``word`` converted as argparse would (``_BAD`` when argparse would refuse it: argparse says why)."""
    if action.type is not None:
        try:
            word = action.type(word)
        except Exception:  # noqa: BLE001 - argparse reports a bad value with its own message
            return _BAD
    if action.choices is not None and word not in action.choices:
        return _BAD
    return word


def _is_command(name: str) -> bool:
    """Whether ``name`` is a command: lower-case letters and inner hyphens, naming a module of commands/."""
    module = name.replace("-", "_")
    if not (module.isascii() and module.replace("_", "").isalpha() and module.islower()) or module[0] == "_":
        return False
    return os.path.isfile(os.path.join(os.path.dirname(__file__), "commands", module + ".py"))
