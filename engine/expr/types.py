"""The types of the variables an expression sees, for checking it before it runs (:func:`engine.expr.check`).

Declare them next to the code that builds the values, so the two cannot drift::

    STATS = Object("stats", {"samples": INT, "exceedance_rate": DOUBLE, "drift": Map(DOUBLE, size=16)})

Types: :data:`INT` :data:`DOUBLE` :data:`STRING` :data:`BOOL` :data:`NULL` :data:`DYN` (anything: not
checked), :func:`String` (with a size bound), :func:`List`, :func:`Map` (string keys), :func:`Object` (a map
with known fields: selecting another field is an error). ``size`` bounds the characters of a string and the
elements of a list or map, for the static cost bound; ``None`` means unknown
(:data:`~engine.expr.limits.UNKNOWN_SIZE` is assumed). Importing this module is cheap.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Mapping

from engine.records import Record


class Type(Record):
    """``kind``: int double string bool null list map object dyn. ``item``: the element type of a list, the
    value type of a map. ``fields``: an object's fields. ``size``: an upper bound on its size, or None."""

    kind: str
    item: "Type | None" = None
    fields: Mapping[str, "Type"] | None = None
    size: int | None = None
    name: str = ""

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list({self.item})"
        if self.kind == "map":
            return f"map(string, {self.item})"
        if self.kind == "object":
            return self.name or "map"
        if self.kind == "double":
            return "double"
        return self.kind


INT = Type("int")
DOUBLE = Type("double")
STRING = Type("string")
BOOL = Type("bool")
NULL = Type("null")
DYN = Type("dyn")


def String(size: int | None = None) -> Type:  # noqa: N802 - a type constructor
    return Type("string", size=size)


def List(item: Type = DYN, size: int | None = None) -> Type:  # noqa: N802
    return Type("list", item=item, size=size)


def Map(value: Type = DYN, size: int | None = None) -> Type:  # noqa: N802
    """A map with string keys (its fields are not known in advance: any key may be selected)."""
    return Type("map", item=value, size=size)


def Object(name: str, fields: Mapping[str, Type]) -> Type:  # noqa: N802
    """A map whose keys are known: ``name`` is how messages call it (``stats``)."""
    return Type("object", fields=dict(fields), size=len(fields), name=name)
