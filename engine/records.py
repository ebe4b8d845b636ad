"""The one record style: value types are named tuples declared as ``class X(Record)``, and their JSON form is
generated here.

Measured on this machine (Python 3.11, `python /tmp/rs.py` in the session that chose it): defining a four-field
NamedTuple costs 70 µs against 581 µs for ``@dataclass(frozen=True, slots=True)``; building one 288 ns against
647 ns; and ``typing`` costs 3 ms to import against 9 ms for ``dataclasses`` (it imports ``inspect``). Every hook
is a new process, so the record style is a start-up cost; NamedTuples are just as immutable and typed.

A record's JSON form is its fields in order, converted recursively (records, tuples and lists → lists,
mappings → dicts). A class shapes it with class-level data, never with a hand-written ``to_dict``:

- ``_json_omit``: field names left out (internal fields such as a tier's ``rank``);
- ``_json_names``: a field's name in JSON when it differs from the attribute (``{"signal": "id"}``);
- ``_json_skip_none``: field names left out when their value is ``None``;
- ``_json_convert``: a field's conversion, applied to its value unless it is ``None`` (``{"usage": rounded(6)}``,
  ``{"timestamp": format_timestamp}``);
- ``_json_fields``: the names written, in order, when they are not the fields in order: fields, and properties
  or methods without arguments (their result) for a value derived from the fields.

A record class offers the generated form as its own method with ``to_dict = to_dict`` in its body, so callers
write ``record.to_dict()`` whatever the record. The class data is read once per class (its first ``to_dict``).

Stateful runtime objects (a ``Detector``, a ``Run``, a ``Packer``) are plain classes, not records.

**Record** is ``typing.NamedTuple``'s class syntax without ``typing``: the same class statement (annotated fields,
trailing defaults, methods and class data) makes the class ``collections.namedtuple`` would make (built without
it, in a fifth of its time: :func:`_tuple_class`), and type checkers see ``typing.NamedTuple`` itself. Two
start-up costs go: importing ``typing`` (about 5 ms of a whole process here, which a warm ``budget`` otherwise
paid for nothing else), and typing's check of every annotation, which
compiles each string annotation of a module with ``from __future__ import annotations`` (about 0.4 ms a class
against 0.08 ms). The annotations are kept as written (strings), as that module would have them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import FunctionType, MappingProxyType

__all__ = ["Record", "rounded", "to_dict", "to_json"]

TYPE_CHECKING = False  # not typing's: importing typing is what Record saves
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable
    from typing import NamedTuple as Record
else:
    # What a namedtuple class has of its own: a class body may not set these (as typing.NamedTuple refuses).
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                             "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__", "__qualname__", "__doc__"})

    class _RecordMeta(type):
        """Builds a named-tuple class (:func:`_tuple_class`) from a ``class X(Record)`` statement, as typing's
        ``NamedTupleMeta`` does, without evaluating the annotations."""

        def __new__(mcls, name: str, bases: tuple, namespace: dict) -> type:
            if namespace.get("_record_root"):
                return super().__new__(mcls, name, bases, namespace)
            if bases != (_RecordBase,):
                raise TypeError("a Record class can only inherit from Record")
            fields = namespace.get("__annotations__", {})
            defaults = []
            for field in fields:
                if field in namespace:
                    defaults.append(namespace[field])
                elif defaults:
                    raise TypeError(f"non-default record field {field!r} cannot follow default fields")
            cls = _tuple_class(name, tuple(fields), tuple(defaults), namespace["__module__"])
            cls.__annotations__ = dict(fields)
            cls.__doc__ = namespace.get("__doc__") or cls.__doc__
            cls.__qualname__ = namespace.get("__qualname__", name)
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"cannot overwrite record attribute {key}")
                if key not in _SPECIAL and key not in fields:
                    setattr(cls, key, value)
                    setter = getattr(type(value), "__set_name__", None)
                    if setter is not None:
                        setter(value, cls, key)
            return cls

    try:
        from _collections import _tuplegetter
    except ImportError:  # pragma: no cover - another Python than CPython (collections' own fallback)
        from operator import itemgetter as _itemgetter

        def _tuplegetter(index: int, doc: str) -> property:
            return property(_itemgetter(index), doc=doc)

    _NEW_CODE: dict[int, Any] = {}  # a number of fields → the code of a __new__ taking that many, by position
    _NEW_GLOBALS = {"_tuple_new": tuple.__new__, "__builtins__": {}}

    def _tuple_class(name: str, fields: tuple[str, ...], defaults: tuple, module: str) -> type:
        """The class ``collections.namedtuple(name, fields, defaults=defaults, module=module)`` makes — the same
        ``__new__`` signature, field properties, ``_fields``, ``_field_defaults``, ``_make``, ``_replace``,
        ``_asdict``, ``__repr__``, ``__getnewargs__`` and ``__match_args__`` — in about a fifth of its time (12
        against 60 µs for six fields, quiet machine): namedtuple compiles each class's ``__new__`` from source
        (``eval``) and writes five more
        functions and a docstring per field; here one compiled ``__new__`` per number of fields is given the
        field names (``CodeType.replace``: the body reads its arguments by position) and the other methods are
        shared. Every process builds a record class per type it imports (17 for an ``evaluate``: 2.1 ms with
        namedtuple)."""
        for field in fields:
            if field.startswith("_"):
                raise ValueError(f"record field names cannot start with an underscore: {field!r}")
        size = len(fields)
        code = _NEW_CODE.get(size)
        if code is None:
            names = ", ".join(f"_{i}" for i in range(size))
            tail = "," if size == 1 else ""
            code = _NEW_CODE[size] = eval(  # noqa: S307 - our own constant text, names made of digits
                f"lambda _cls{', ' if size else ''}{names}: _tuple_new(_cls, ({names}{tail}))", _NEW_GLOBALS).__code__
        new = FunctionType(code.replace(co_varnames=("_cls", *fields), co_name="__new__",
                                        co_qualname=f"{name}.__new__"), _NEW_GLOBALS, "__new__", defaults or None)
        arguments = repr(fields).replace("'", "")[1:-1]  # as namedtuple writes them ("a," for one)
        new.__doc__ = f"Create new instance of {name}({arguments})"
        namespace = {"__doc__": f"{name}({arguments})", "__slots__": (), "_fields": fields,
                     "_field_defaults": dict(zip(fields[size - len(defaults):], defaults)) if defaults else {},
                     "__new__": new, "_make": _make, "_replace": _replace, "__repr__": _repr, "_asdict": _asdict,
                     "__getnewargs__": _getnewargs, "__match_args__": fields, "__module__": module}
        for index, field in enumerate(fields):
            namespace[field] = _tuplegetter(index, _FIELD_DOCS[index] if index < len(_FIELD_DOCS) else
                                            f"Alias for field number {index}")
        return type(name, (tuple,), namespace)

    _FIELD_DOCS = tuple(f"Alias for field number {index}" for index in range(32))

    @classmethod  # type: ignore[misc]
    def _make(cls, iterable):  # namedtuple's, for every record class
        """Make a new object from a sequence or iterable"""
        result = tuple.__new__(cls, iterable)
        if len(result) != len(cls._fields):
            raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(result)}")
        return result

    def _replace(self, /, **kwds):
        """Return a new record replacing specified fields with new values"""
        result = self._make(map(kwds.pop, self._fields, self))
        if kwds:
            raise ValueError(f"Got unexpected field names: {list(kwds)!r}")
        return result

    def _repr(self):
        """Return a nicely formatted representation string"""
        return f"{self.__class__.__name__}({', '.join(f'{n}={v!r}' for n, v in zip(self._fields, self))})"

    def _asdict(self):
        """Return a new dict which maps field names to their values."""
        return dict(zip(self._fields, self))

    def _getnewargs(self):
        """Return self as a plain tuple.  Used by copy and pickle."""
        return tuple(self)

    class _RecordBase(metaclass=_RecordMeta):
        _record_root = True

    def Record(*args, **kwargs):  # noqa: N802 - a class-like name, as typing.NamedTuple
        """Only a base class: ``class X(Record): field: type = default`` (see the module's documentation)."""
        raise TypeError("Record is a base class: write `class X(Record): ...`")

    Record.__mro_entries__ = lambda bases: (_RecordBase,)


def to_dict(record: Any) -> dict:
    """The JSON form of one record, shaped by its class's ``_json_*`` data: a :class:`Record` instance, or an
    object that reads like one (``_fields``, and iteration yielding their values in that order)."""
    plan = _plans.get(type(record))
    if plan is None:
        plan = _plans[type(record)] = _plan(type(record))
    values = record if isinstance(record, tuple) else tuple(record)  # a class that reads like a record: iterated
    out: dict = {}
    for key, index, name, convert, skip_none in plan:
        value = values[index] if index is not None else _attribute(record, name)
        if value is None:
            if not skip_none:
                out[key] = None
            continue
        if convert is not None:
            value = convert(value)
        out[key] = value if type(value) in _PLAIN else to_json(value)
    return out


_PLAIN = frozenset({str, int, float, bool})
_plans: dict[type, tuple] = {}


def _plan(cls: type) -> tuple:
    """What :func:`to_dict` writes of a record of ``cls``, read once from its class data: (JSON key, field index
    or None, attribute name, conversion or None, left out when None) for each key, in order."""
    fields = cls._fields  # type: ignore[attr-defined]
    omit = getattr(cls, "_json_omit", ())
    names = getattr(cls, "_json_names", {})
    skip_none = getattr(cls, "_json_skip_none", ())
    convert = getattr(cls, "_json_convert", {})
    chosen = getattr(cls, "_json_fields", fields)
    return tuple((names.get(name, name), fields.index(name) if name in fields else None, name, convert.get(name),
                  name in skip_none) for name in chosen if name not in omit)


def _attribute(record: Any, name: str) -> Any:
    """A property's value, or a no-argument method's result (``_json_fields``)."""
    value = getattr(record, name)
    return value() if callable(value) else value


def rounded(digits: int) -> Callable[[float], float]:
    """A ``_json_convert`` entry: the number rounded to ``digits`` decimals."""
    def convert(value: float) -> float:
        return round(value, digits)

    return convert


def to_json(value: Any) -> Any:
    """``value`` as plain JSON data: records through :func:`to_dict`, their own ``to_dict`` if they keep one."""
    kind = type(value)
    if value is None or kind in _PLAIN:
        return value
    if kind is list or kind is tuple:  # the common containers first: the checks below cost more
        return [v if v is None or type(v) in _PLAIN else to_json(v) for v in value]
    if kind is dict or kind is MappingProxyType:
        return {str(k): v if v is None or type(v) in _PLAIN else to_json(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        method = getattr(value, "to_dict", None)
        return method() if method is not None else to_dict(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, frozenset, set)):
        items = sorted(value) if isinstance(value, (frozenset, set)) else value
        return [to_json(v) for v in items]
    if isinstance(value, (str, bool, int, float)):  # subclasses of the plain types
        return value
    method = getattr(value, "to_dict", None)
    if method is not None:
        return method()
    raise TypeError(f"{type(value).__name__} has no JSON form")
