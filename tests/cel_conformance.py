"""Run cel-spec's conformance data (../shared/cel-spec/testdata) against engine.expr.

Each test is classified as ``pass``, ``fail`` or ``skip`` with a named reason: the features the language
leaves out (uint, bytes, protobuf messages, timestamps and durations, type values, qualified names) and its
documented deviations. ``python tests/cel_conformance.py`` prints the summary and every non-pass.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cel_textproto import Message, parse  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
TESTDATA = SHARED / "cel-spec" / "testdata"
FILES = ("basic", "comparisons", "conversions", "fields", "fp_math", "integer_math", "lists", "logic",
         "macros", "string")

# Tests whose expected result differs from ours on purpose (docs/expressions.md, "Differences from CEL").
DEVIATIONS = {
    "basic/functions/unbound_is_runtime_error":
        "deviation: an unknown function is a compile-time error, not an error absorbed at run time",
}


@dataclass
class Case:
    file: str
    section: str
    name: str
    expr: str
    test: Message

    @property
    def id(self) -> str:
        return f"{self.file}/{self.section}/{self.name}"


@dataclass
class Outcome:
    case: Case
    status: str  # pass, fail, skip
    reason: str = ""


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def cases() -> Iterator[Case]:
    for file in FILES:
        message = parse((TESTDATA / f"{file}.textproto").read_text(encoding="utf-8"))
        for section in message.all("section"):
            for test in section.all("test"):
                yield Case(file, _text(section.get("name")), _text(test.get("name")), _text(test.get("expr")), test)


# --- skip reasons -----------------------------------------------------------------------------------------

_UINT = re.compile(r"\b(?:0[xX][0-9a-fA-F]+|[0-9]+)[uU]\b|\buint\(")
_BYTES = re.compile(r"(?<![\w.])[bB][rR]?['\"]|\bbytes\(")
_PROTO = re.compile(r"TestAllTypes|google\.protobuf|NestedTestAllTypes")
_TIME = re.compile(r"\b(?:timestamp|duration)\(")
_TYPE_DENOTATIONS = {"bool", "int", "uint", "double", "string", "bytes", "list", "map", "null_type", "type"}


def _fields(message: Any) -> Iterator[str]:
    if isinstance(message, Message):
        for name, value in message:
            yield name
            yield from _fields(value)


def skip_reason(case: Case) -> str | None:
    test = case.test
    expected_fields = set(_fields(test.get("value"))) | set(_fields(test.all("bindings")))
    if _UINT.search(case.expr) or "uint64_value" in expected_fields:
        return "uint"
    if _BYTES.search(case.expr) or "bytes_value" in expected_fields or "BYTES" in str(test.all("type_env")):
        return "bytes"
    if "container" in test or _PROTO.search(case.expr) or "object_value" in expected_fields:
        return "protobuf messages"
    if _TIME.search(case.expr):
        return "timestamp/duration"
    if "type(" in case.expr or "type_value" in expected_fields or case.expr.strip() in _TYPE_DENOTATIONS:
        return "type values"
    if any("." in _text(b.get("key")) for b in test.all("bindings")):
        return "qualified identifiers (namespaces)"
    return DEVIATIONS.get(case.id)


# --- values -----------------------------------------------------------------------------------------------


def to_python(value: Message) -> Any:
    """A cel.expr.Value message as the plain Python value engine.expr uses."""
    name, content = value[0]
    if name == "null_value":
        return None
    if name == "bool_value":
        return content == "true"
    if name == "int64_value":
        return int(content)
    if name == "double_value":
        if isinstance(content, str):
            return {"Infinity": math.inf, "-Infinity": -math.inf, "inf": math.inf, "NaN": math.nan,
                    "nan": math.nan}[content]
        return float(content)
    if name == "string_value":
        return _text(content)
    if name == "list_value":
        return [to_python(v) for v in content.all("values")]
    if name == "map_value":
        return {to_python(e.get("key")): to_python(e.get("value")) for e in content.all("entries")}
    raise ValueError(f"unsupported value {name}")


def same(expected: Any, actual: Any) -> bool:
    """Equal and of the same type (1 is not 1.0 here; NaN is NaN; -0.0 is not 0.0)."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float):
        if math.isnan(expected):
            return math.isnan(actual)
        return expected == actual and math.copysign(1, expected) == math.copysign(1, actual)
    if isinstance(expected, list):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, dict):
        if len(expected) != len(actual):
            return False
        for key, value in expected.items():
            matches = [k for k in actual if type(k) is type(key) and k == key]
            if not matches or not same(value, actual[matches[0]]):
                return False
        return True
    return expected == actual


def bindings(case: Case) -> dict:
    return {_text(b.get("key")): to_python(b.get("value").get("value")) for b in case.test.all("bindings")}


def run(case: Case) -> Outcome:
    from engine.expr import EvaluationError, ExprSyntaxError, compile

    reason = skip_reason(case)
    if reason:
        return Outcome(case, "skip", reason)
    test = case.test
    values = bindings(case)
    expect_error = "eval_error" in test
    expected = to_python(test.get("value")) if "value" in test else True
    try:
        program = compile(case.expr)
    except ExprSyntaxError as e:
        if expect_error:
            return Outcome(case, "pass", f"rejected at compile time: {e.message}")
        return Outcome(case, "fail", f"compile error: {e.message}")
    try:
        actual = program.evaluate(values)
    except EvaluationError as e:
        if expect_error:
            return Outcome(case, "pass")
        return Outcome(case, "fail", f"evaluation error: {e}")
    if expect_error:
        return Outcome(case, "fail", f"expected an error, got {actual!r}")
    if same(expected, actual):
        return Outcome(case, "pass")
    return Outcome(case, "fail", f"expected {expected!r}, got {actual!r}")


def run_all() -> list[Outcome]:
    return [run(case) for case in cases()]


def summary(outcomes: list[Outcome]) -> str:
    from collections import Counter

    lines = []
    per_file: dict[str, Counter] = {}
    for o in outcomes:
        per_file.setdefault(o.case.file, Counter())[o.status] += 1
    lines.append(f"{'file':<14} {'pass':>5} {'fail':>5} {'skip':>5}")
    for file, counts in per_file.items():
        lines.append(f"{file:<14} {counts['pass']:>5} {counts['fail']:>5} {counts['skip']:>5}")
    total = Counter(o.status for o in outcomes)
    lines.append(f"{'total':<14} {total['pass']:>5} {total['fail']:>5} {total['skip']:>5}")
    ran = total["pass"] + total["fail"]
    if ran:
        lines.append(f"passed {total['pass']} of {ran} non-skipped tests ({100 * total['pass'] / ran:.1f} %)")
    compile_time = sum(1 for o in outcomes if o.reason.startswith("rejected at compile time"))
    if compile_time:
        lines.append(f"  of which {compile_time} expected a run-time error and were rejected at compile time")
    lines.append("skipped, by reason:")
    for reason, count in Counter(o.reason for o in outcomes if o.status == "skip").most_common():
        lines.append(f"  {count:>4}  {reason}")
    return "\n".join(lines)


if __name__ == "__main__":
    results = run_all()
    print(summary(results))
    for o in results:
        if o.status == "fail":
            print(f"FAIL {o.case.id}: {o.case.expr!r}: {o.reason}")
