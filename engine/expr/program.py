"""A compiled expression: :class:`Program`."""

from __future__ import annotations

import warnings

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Mapping

from engine.expr.errors import ExprError


_HELPER_MODULES = ("engine.expr.runtime", "engine.expr.macros", "engine.expr.functions")


def _import_helpers_only(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0):
    """The only imports generated code may do: the modules of run-time helpers."""
    if name not in _HELPER_MODULES or level != 0:
        raise ImportError(f"generated expression code may not import {name!r}")
    return __import__(name, globals, locals, fromlist, level)


# Generated code runs without Python's builtins: it sees these type names (for its checks) and what it
# imports from the helper modules. (Identifiers from an expression never become Python names anyway.)
_BUILTINS = {"__import__": _import_helpers_only, "bool": bool, "int": int, "dict": dict, "list": list, "str": str,
             "Exception": Exception}


# Generated source → its code object: each distinct program is compiled by Python once per process (about
# 0.25 ms a program). The compiled-policy cache does not keep it (it holds data only: caches never run code);
# benchmarks/bench_cache.py measures what restoring it would save.
_CODE: dict[str, Any] = {}


def code_table() -> dict[str, Any]:
    """The process's table of compiled generated code (``benchmarks/bench_cache.py`` fills it from a file)."""
    return _CODE


class Program:
    """A compiled expression. Call ``evaluate(bindings)`` as often as you like; it is safe to share.

    ``source``: the expression's text. ``names``: the free variables it reads from the bindings.
    ``python_source``: the generated Python module; :meth:`from_python` rebuilds the program from it
    without parsing (for a cache of compiled policies).
    """

    __slots__ = ("source", "names", "python_source", "evaluate")

    source: str
    names: frozenset[str]
    python_source: str
    #: ``evaluate(bindings: Mapping[str, Any]) -> Any``: the value of the expression, or
    #: :class:`~engine.expr.EvaluationError`. (An instance attribute holding the generated function, so a
    #: call costs one Python call.)
    evaluate: Callable[[Mapping[str, Any]], Any]

    def __init__(self, source: str, python_source: str):
        from engine.expr import runtime

        namespace: dict[str, Any] = {"__builtins__": _BUILTINS, "__name__": "engine.expr.generated",
                                     "_SOURCE": source}
        try:
            with warnings.catch_warnings():
                # e.g. "'int' object is not subscriptable" for 1.x: a run-time error in the language
                warnings.simplefilter("ignore", SyntaxWarning)
                code = _CODE.get(python_source)
                if code is None:
                    code = _CODE[python_source] = compile(python_source, "<expression>", "exec")
            exec(code, namespace)
        except SyntaxError as e:
            raise ExprError(f"generated code does not compile: {e}") from None
        except (RecursionError, MemoryError):
            raise ExprError("expression too complex for Python to compile") from None
        except Exception as e:
            raise ExprError(f"cannot load the compiled expression: {e}") from None
        if namespace.get("FORMAT") != runtime.FORMAT:
            raise ExprError("compiled expression is from another version of engine.expr; compile it again")
        self.source = source
        self.names = frozenset(namespace["NAMES"])
        self.python_source = python_source
        self.evaluate = namespace["evaluate"]

    @classmethod
    def from_python(cls, source: str, python_source: str) -> "Program":
        """Rebuild a program from ``source`` and the ``python_source`` that compiling it produced.

        Does not import the parser. Raises :class:`~engine.expr.ExprError` when ``python_source`` comes
        from an incompatible version (a cache should then compile ``source`` again). ``python_source`` is
        executed: only load it from a cache you trust as much as the code itself.
        """
        return cls(source, python_source)

    def __repr__(self) -> str:
        return f"Program({self.source!r})"

    def __getstate__(self):
        return (self.source, self.python_source)

    def __setstate__(self, state):
        source, python_source = state
        Program.__init__(self, source, python_source)
