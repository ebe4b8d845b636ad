"""The code generator: one function per expression, each operation run once, errors absorbed where CEL says."""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping

import pytest

from engine.expr import EvaluationError, ExprError, Program, compile
from engine.expr import runtime


class Counting(Mapping):
    """A map that counts the reads of each key."""

    def __init__(self, data: dict, reads: dict):
        self.data = data
        self.reads = reads

    def __getitem__(self, key):
        self.reads[key] = self.reads.get(key, 0) + 1
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_one_function_per_expression():
    program = compile("l.all(x, x.v > 0 || x.w) && (a ? b.c : [1, 2].exists(y, y == 2))")
    tree = ast.parse(program.python_source)
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert functions == ["evaluate"]


def test_an_error_does_not_evaluate_the_expression_again():
    """Each element's body runs once, also when some elements fail (`||` absorbs their errors)."""
    reads: dict = {}
    elements = [Counting({"v": 1}, reads), Counting({"w": True}, reads), Counting({"v": 0, "w": True}, reads)]
    assert compile("l.all(x, x.v > 0 || x.w)").evaluate({"l": elements}) is True
    # `w` is read only by the elements whose `v` does not decide, once each
    assert reads["w"] == 2


@pytest.mark.parametrize("text, bindings, expected", [
    ("a.x > 1 || a.y", {"a": {"y": True}}, True),  # the error of a.x is absorbed
    ("a.y || a.x > 1", {"a": {"y": True}}, True),
    ("a.x > 1 && a.y", {"a": {"y": False}}, False),
    ("a.y && a.x > 1", {"a": {"y": False}}, False),
    ("a.n || false", {"a": {"n": 1}}, "no such overload: ||(int)"),  # not a bool: an error, not absorbed
    ("a.x > 1 || a.z || true", {"a": {}}, True),
    ("[1, 0].exists(n, 1 / n == 1)", {}, True),  # division by zero in one element is absorbed
    ("[0, 1].all(n, 1 / n == 1)", {}, "division by zero"),
])
def test_errors_are_absorbed_as_cel_says(text, bindings, expected):
    program = compile(text)
    if isinstance(expected, str):
        with pytest.raises(EvaluationError, match=expected):
            program.evaluate(bindings)
    else:
        assert program.evaluate(bindings) is expected


def test_the_first_error_keeps_its_position():
    with pytest.raises(EvaluationError) as e:
        compile("a.x > 1 || a.y.z").evaluate({"a": {}})
    assert (e.value.message, e.value.column) == ("no such key: 'x'", 3)  # at the field's name


@pytest.mark.parametrize("text, bindings, expected", [
    ("x / y", {"x": 1.0, "y": 0.0}, math.inf),  # Python raises ZeroDivisionError; CEL gives inf
    ("x / y", {"x": -1.0, "y": 0.0}, -math.inf),
    ("x < y", {"x": 1, "y": 1.5}, True),
    ("m[k]", {"m": {1: "one"}, "k": 1.0}, "one"),  # a double key finds an int key
])
def test_an_operation_python_refuses_gets_its_cel_value(text, bindings, expected):
    assert compile(text).evaluate(bindings) == expected


def test_deep_nesting_compiles():
    """Logic and conditions nested beyond Python's block limits continue in local functions."""
    text = "x"
    for i in range(20):
        text = f"(x && ({text} || y))" if i % 2 else f"(y ? {text} : false)"
    program = compile(text)
    assert program.evaluate({"x": True, "y": True}) is True
    assert program.evaluate({"x": False, "y": True}) is False


def test_code_of_the_previous_generator_is_compiled_again():
    """Cache entries written by the two-path generator (FORMAT 2) are refused, so the cache recompiles them."""
    assert runtime.FORMAT == 3
    program = compile("size(l) > 1")
    stale = program.python_source.replace("FORMAT = 3", "FORMAT = 2")
    with pytest.raises(ExprError, match="another version"):
        Program.from_python(program.source, stale)
