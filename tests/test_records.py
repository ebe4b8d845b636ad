"""engine/records.py: the generated JSON form of records."""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import pytest

from engine.records import to_dict, to_json


class Inner(NamedTuple):
    a: int
    b: tuple = ()


class Outer(NamedTuple):
    signal: str
    rank: int
    span: tuple | None
    inner: Inner
    weights: MappingProxyType = MappingProxyType({})
    note: str | None = None

    _json_omit = ("rank",)
    _json_names = {"signal": "id"}
    _json_skip_none = ("note",)


def test_fields_in_order_shaped_by_class_data():
    record = Outer("s", 3, (1, 2), Inner(1, (Inner(2),)), MappingProxyType({"x": 0.5}))
    assert to_dict(record) == {"id": "s", "span": [1, 2], "inner": {"a": 1, "b": [{"a": 2, "b": []}]},
                               "weights": {"x": 0.5}}
    assert list(to_dict(record)) == ["id", "span", "inner", "weights"]
    assert to_dict(record._replace(note="n", span=None))["note"] == "n"
    assert to_dict(record._replace(span=None))["span"] is None


def test_sets_sorted_and_unknown_types_refused():
    assert to_json(frozenset({"b", "a"})) == ["a", "b"]
    with pytest.raises(TypeError, match="object has no JSON form"):
        to_json(object())


def test_to_dict_kept_by_a_class_is_used_inside_others():
    class Custom(NamedTuple):
        x: int

        def to_dict(self) -> dict:
            return {"custom": self.x}

    assert to_json([Custom(1)]) == [{"custom": 1}]
