"""engine.jsonio: bounded, strict JSON input (a value or JSONInputError, never another exception) and strict
JSON output (never NaN or Infinity)."""

from __future__ import annotations

import json
import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DATA
from engine.jsonio import MAX_DEPTH, JSONInputError, dumps, finite, loads

INPUT = DATA / "input"
DEEP = "[" * 30000 + "]" * 30000


@pytest.mark.parametrize("text, value", [
    ('{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
    ("  7\n", 7),
    ("[" * MAX_DEPTH + "]" * MAX_DEPTH, eval("[" * MAX_DEPTH + "]" * MAX_DEPTH)),
    ('"' + "[" * 1000 + '"', "[" * 1000),  # brackets inside a string are not nesting
    ('{"s": "\\"[[[[", "t": "\\\\"}', {"s": '"[[[[', "t": "\\"}),
    ("9" * 4300, int("9" * 4300)),
    ("-" + "9" * 4300, -int("9" * 4300)),
    ("1e308", 1e308),
    (b'{"caf\xc3\xa9": 1}', {"café": 1}),
])
def test_reads_json_within_the_bounds(text, value) -> None:
    assert loads(text) == value


@pytest.mark.parametrize("text, message, column", [
    pytest.param(DEEP, "nested more than 64 levels deep", 65, id="30000-brackets"),
    pytest.param('{"a": ' + DEEP + "}", "nested more than 64 levels deep", 70, id="30000-brackets-in-object"),
    pytest.param("[" * 65 + "]" * 65, "nested more than 64 levels deep", 65, id="65-levels"),
    pytest.param("9" * 5000, "an integer has more than 4,300 digits", None, id="5000-digits"),
    pytest.param('{"id": -' + "9" * 4301 + "}", "an integer has more than 4,300 digits", None, id="negative-4301"),
    pytest.param("NaN", "NaN is not a JSON number", None, id="NaN"),
    pytest.param('{"a": Infinity}', "Infinity is not a JSON number", None, id="Infinity"),
    pytest.param("[-Infinity]", "-Infinity is not a JSON number", None, id="-Infinity"),
    pytest.param("1e400", "the number 1e400 is too large", None, id="1e400"),
    pytest.param("-1" + "0" * 400 + ".0", "is too large", None, id="400-digit-float"),
    pytest.param(b'{"a": "\xff"}', "not UTF-8 text (invalid start byte at byte 8)", None, id="bad-byte"),
    pytest.param(b"\xef\xbb\xbf{}", "starts with a byte order mark", 1, id="bom"),
    pytest.param('{"a": 1', "Expecting ',' delimiter", 8, id="truncated"),
    pytest.param("", "Expecting value", 1, id="empty"),
    pytest.param('{"id": "x\\ud800"}', "lone UTF-16 surrogate", 10, id="lone-high"),
    pytest.param('["\\udc00"]', "lone UTF-16 surrogate", 3, id="lone-low"),
    pytest.param('{"a": 1, "a": "\\uDBFF"}', "lone UTF-16 surrogate", 16, id="in-a-value-a-twice-key-drops"),
    pytest.param('{"\\ud83d\\ud83d": 1}', "lone UTF-16 surrogate", 3, id="two-highs"),
])
def test_refuses_with_a_message(text, message, column) -> None:
    with pytest.raises(JSONInputError) as caught:
        loads(text)
    assert message in caught.value.msg
    assert caught.value.colno == column
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", ["deep.json", "huge-int.json"])
def test_the_hostile_files(name) -> None:
    with pytest.raises(JSONInputError, match="nested more than|more than 4,300 digits"):
        loads((INPUT / name).read_bytes())


def test_size_and_limits_are_parameters() -> None:
    with pytest.raises(JSONInputError, match="longer than 10 characters"):
        loads('"' + "x" * 20 + '"', max_bytes=10)
    with pytest.raises(JSONInputError, match="longer than 10 bytes"):
        loads(b'"' + b"x" * 20 + b'"', max_bytes=10)
    with pytest.raises(JSONInputError, match="nested more than 2 levels"):
        loads("[[[1]]]", max_depth=2)
    assert loads("[[1]]", max_depth=2) == [[1]]
    with pytest.raises(JSONInputError, match="more than 5 digits"):
        loads("[123456]", max_int_digits=5)
    assert loads("[-12345]", max_int_digits=5) == [-12345]


def test_the_int_limit_holds_when_the_interpreter_has_none(monkeypatch) -> None:
    """An application may lift Python's own limit (sys.set_int_max_str_digits(0)); loads keeps its own."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        with pytest.raises(JSONInputError, match="more than 4,300 digits"):
            loads("9" * 4301)
        assert loads("9" * 4300) == int("9" * 4300)
    finally:
        sys.set_int_max_str_digits(old)


def test_a_nearly_full_stack_is_still_an_error_not_a_crash() -> None:
    def nest(n: int):
        return loads("[" * 60 + "]" * 60) if n == 0 else nest(n - 1)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        try:
            nest(150)
        except JSONInputError as exc:
            assert "nested too deeply" in str(exc)
        except RecursionError:  # the test's own frames, not loads, ran out of stack: allowed
            pass
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("value, text", [
    (float("inf"), "null"),
    ({"a": float("nan"), "b": [1.5, float("-inf")], "c": (2, float("inf"))}, '{"a": null, "b": [1.5, null], "c": [2, null]}'),
    ({"x": "café", "n": 3}, '{"x": "café", "n": 3}'),
])
def test_dumps_is_strict_json(value, text) -> None:
    assert dumps(value) == text


@pytest.mark.parametrize("options", [{}, {"sort_keys": True}, {"indent": 2}])
def test_dumps_writes_a_lone_surrogate_as_text(options) -> None:
    """A file name from bytes that are not UTF-8 (os.fsdecode's lone surrogates) cannot be UTF-8 output: it is
    written as the text \\xNN (\\uDXXX for another lone surrogate), so the output is UTF-8 JSON that reads back."""
    value = {"path": "odd\udcff.yaml", "other": "x\ud800y", "café": ["\udc80"]}
    text = dumps(value, **options)
    assert text.encode("utf-8")  # no lone surrogate left
    assert loads(text) == {"path": "odd\\xff.yaml", "other": "x\\ud800y", "café": ["\\x80"]}
    assert json.loads(text) == loads(text)


def test_finite_leaves_finite_values_alone() -> None:
    value = {"a": [1, 2.5, "s", None, True], "b": {"c": 0.0}}
    assert finite(value) == value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(json_values)
def test_round_trip(value) -> None:
    assert loads(dumps(value)) == value


any_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30)


def _refuse(name: str):
    raise AssertionError(f"{name} in strict JSON output")


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(any_values)
def test_dumps_never_writes_nan_or_infinity(value) -> None:
    out = json.loads(dumps(value), parse_constant=_refuse)
    assert json.dumps(out, allow_nan=False)  # and it is all finite


@pytest.mark.parametrize("text, value", [('"\\ud83d\\ude00"', "\U0001f600"), ('"\\\\ud800"', "\\ud800"),
                                         ('"\\u00e9\\uD800\\uDC00"', "\xe9\U00010000")])
def test_a_surrogate_pair_or_an_escaped_backslash_is_text(text, value) -> None:
    assert loads(text) == value


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\\\", "a", "\\u00e9", "\\ud83d\\ude00"]),
                max_size=6))
def test_strings_with_surrogate_escapes_are_text_or_refused(parts) -> None:
    """Whatever escapes a string holds, loads gives text that UTF-8 can encode, or refuses it."""
    try:
        value = loads('"' + "".join(parts) + '"')
    except JSONInputError as exc:
        assert exc.msg.startswith("a string holds a lone UTF-16 surrogate") and exc.colno is not None
        return
    value.encode("utf-8")


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.one_of(st.binary(max_size=200), st.text(alphabet='[]{}",:0123456789.eE+-NaInfity \\tu\n\xff', max_size=200)))
def test_any_input_is_a_value_or_jsoninputerror(data) -> None:
    try:
        value = loads(data)
    except JSONInputError as exc:
        assert exc.msg
        return
    assert json.dumps(value, allow_nan=False) is not None
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(value))


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


# -- without importing json: plain_dumps and loads_own are json's, byte for byte and value for value ---------------

from engine.jsonio import loads_own, plain_dumps  # noqa: E402

PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20)


def _json_text(value, indent):
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent)
    except (ValueError, TypeError, RecursionError):
        return None


@settings(max_examples=300, deadline=None)
@given(PLAIN, st.sampled_from([None, 0, 2, 4]))
def test_plain_dumps_writes_json_s_text(value, indent) -> None:
    """The same text as json.dumps — or None, leaving the value to json (a non-finite float here)."""
    text = plain_dumps(value, indent)
    assert text == _json_text(value, indent) or (text is None and _json_text(finite(value), indent) is not None)


class _Text(str):
    pass


class _Count(int):
    pass


def _cycle():
    loop: list = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize("value", [
    float("nan"), [1, float("inf")], {"a": -float("inf")}, _Text("x"), [_Count(3)], {1: "a"}, {None: 1},
    {(1, 2): 1}, {1, 2}, b"x", _cycle(), eval("[" * 70 + "]" * 70), int("9" * 4000) ** 2, object(),
], ids=lambda value: type(value).__name__)
def test_plain_dumps_leaves_what_is_not_plain_to_json(value) -> None:
    assert plain_dumps(value) is None and plain_dumps(value, 2) is None


@pytest.mark.parametrize("value", [
    {}, [], (), "", {"": ""}, [[], {}, ()], "\ud800 lone surrogate", "\x00\x1f\x7f\u2028\u2029 \"\\/ tab\t",
    "café 日本 🎉", {"k": {"n": [1, -0.0, 1e-320, 1.7976931348623157e308, 2**63, -(2**70)]}},
    eval("[" * 63 + "]" * 63), {"a": True, "b": False, "c": None},
])
@pytest.mark.parametrize("indent", [None, 0, 2])
def test_plain_dumps_on_edge_values(value, indent) -> None:
    assert plain_dumps(value, indent) == _json_text(value, indent)


def test_dumps_without_json_imported_writes_the_same_text(tmp_path) -> None:
    """In a fresh process (json not imported) dumps writes plain data itself: the same text as here, where json is
    imported and writes it."""
    import subprocess

    values = [{"agent": "a", "budget": 30000, "scopes": {"global": 6000}, "ratio": 0.25, "note": None, "ok": True},
              ["café", [1, 2.5], {}], {"x": float("nan")}]
    probe = ("import sys, engine.jsonio as j\nvalues = " + repr(values).replace("nan", "float('nan')") +
             "\nfor v in values:\n    print(repr(j.dumps(v, indent=2)), repr(j.dumps(v)))\n"
             "print('json' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [f"{dumps(v, indent=2)!r} {dumps(v)!r}" for v in values] + ["True"]  # nan: json wrote it
    done = subprocess.run([sys.executable, "-c", probe.replace(", {'x': float('nan')}", "")], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "False"  # plain data only: json was never imported


@settings(max_examples=300, deadline=None)
@given(PLAIN)
def test_loads_own_reads_what_json_loads_reads(value) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    expected = json.loads(text)
    assert _same(loads_own(text), expected) and _same(loads_own(text.encode("utf-8", "surrogatepass")), expected)


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # NaN == NaN here


@pytest.mark.parametrize("text", [
    "", " ", "{", '{"a":1} ', ' {"a":1}', '{"a":1}x', "[1,]", "NaN", "-Infinity", "[NaN]", "nul", '"\\x"',
    '"\x01"', "01", "1.", "[" * 100000 + "]" * 100000, '{"a":1,"a":2}', "\ufeff{}", '"\\ud800"', "1" * 5000,
    b'{"caf\xc3\xa9":1}', b"\xff", b'{"a":"\xed\xa0\x80"}',
], ids=lambda text: repr(text[:12]))
def test_loads_own_is_json_loads_on_hostile_text(text) -> None:
    """Whatever the text, loads_own gives json.loads's value or raises json.loads's kind of error."""
    try:
        expected = ("value", json.loads(text))
    except (ValueError, RecursionError) as exc:
        expected = ("error", type(exc))
    try:
        found = ("value", loads_own(text))
    except (ValueError, RecursionError) as exc:
        found = ("error", type(exc))
    if expected[0] == "value":
        assert found[0] == "value" and _same(found[1], expected[1])
    else:
        assert found[0] == "error" and issubclass(found[1], ValueError) == issubclass(expected[1], ValueError)


def _decoder_reading(text):
    """What ``json.JSONDecoder(parse_float=…, parse_int=…, parse_constant=…).decode`` (loads's decoder before it
    ran the scanner itself, without importing json) makes of ``text``: a value or JSONInputError's message and
    column."""
    from engine.jsonio import _Refused, _constant, _float

    try:
        return "value", json.JSONDecoder(parse_float=_float, parse_constant=_constant).decode(text)
    except json.JSONDecodeError as exc:
        return "error", JSONInputError(exc.msg, exc.pos, text).args[0]
    except _Refused as exc:
        return "error", str(exc)


@pytest.mark.parametrize("text", [
    "", " ", "\t\n\r ", "{", "}", '{"a":1} ', ' {"a":1}', '{"a":1}x', '{"a":1} \n x', "1 2", " [] []", "[1,]",
    "nul", '"\\x"', '"\x01"', "01", "1.", "-", "[1e400]", "NaN", " Infinity", "[-Infinity]", '{"a" 1}',
    '{"a":1,"a":2}', '{"b": [true, false, null, 1.5e3, -0, "é\\u00e9"]}', "\u00a0{}", "{}\u00a0", "\x0b1", "1\x0c",
    '{"a": "\\ud83d\\ude00"}', "[" * 64 + "]" * 64,
], ids=repr)
def test_loads_reads_and_refuses_as_json_s_decoder(text) -> None:
    """loads runs json's C scanner itself (importing json costs a hook ~6 ms): the same value, or the same message
    at the same place, as the json.JSONDecoder it used before — whitespace around the value included."""
    expected = _decoder_reading(text)
    try:
        found = "value", loads(text)
    except JSONInputError as exc:
        found = "error", exc.args[0]
    assert found == expected if expected[0] == "error" else _same(found[1], expected[1])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=' \t\n\r{}[]",:0123456789.eE+-truefalsnu\\x', max_size=30))
def test_loads_reads_any_short_text_as_json_s_decoder(text) -> None:
    expected = _decoder_reading(text)
    try:
        found = "value", loads(text)
    except JSONInputError as exc:
        found = "error", exc.args[0]
    assert found[0] == expected[0] and (found == expected if found[0] == "error" else _same(found[1], expected[1]))


BROKEN_INSIDE = ['{"a": "b', '{"a" 1}', '{"a": 1,}', '{"a": 1 "b": 2}', '["\x01"]', '["\\q"]', '{1: 2}', '["\\u12"]',
                 '[1, 2', '{"a": [1, {"b": "c\n"}]}']


def test_loads_refuses_an_error_inside_the_value_before_json_is_imported() -> None:
    """A hook, or `evaluate --context`, reads its JSON before anything has imported json: an error the C scanner
    finds inside the value is still a JSONInputError with json's message (CPython 3.11's scanner looks json.decoder
    up in sys.modules, and without it raised a SystemError: a traceback, and a hook that logged that)."""
    import subprocess

    probe = ("import json, sys\n"
             "from engine.jsonio import loads, JSONInputError\n"
             "for text in json.loads(sys.argv[1]):\n"  # each text read as by a process that has not imported json
             "    for name in [m for m in sys.modules if m == 'json' or m.startswith('json.')]:\n"
             "        del sys.modules[name]\n"
             "    try:\n"
             "        print(repr(('value', loads(text))))\n"
             "    except JSONInputError as exc:\n"
             "        print(repr(('error', exc.args[0])))\n")
    done = subprocess.run([sys.executable, "-c", probe, json.dumps(BROKEN_INSIDE)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [repr(_decoder_reading(text)) for text in BROKEN_INSIDE]
    assert all(kind == "error" for kind, _ in map(_decoder_reading, BROKEN_INSIDE))
    assert _decoder_reading('{"a": "b') == ("error", "Unterminated string at line 1 column 7")


def test_a_hook_s_json_in_and_out_import_no_json() -> None:
    """Reading a payload (loads) and writing a compact line (dumps with separators) import neither json nor re:
    importing them was ~6 ms of every hook process."""
    import subprocess

    probe = ("import sys, engine.jsonio as j\nv = j.loads(b' {\"a\": [1, 2.5, \"\\\\u00e9\", null]} ')\n"
             "print(j.dumps(v, separators=(',', ':')), j.dumps(v, indent=2, separators=(',', ': ')) == "
             "j.dumps(v, indent=2))\nprint('json' in sys.modules, 're' in sys.modules)")
    bare = subprocess.run([sys.executable, "-c", "import sys; print('re' in sys.modules)"], capture_output=True,
                          text=True, timeout=60).stdout.strip()  # an editable install's finder imports re itself
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['{"a":[1,2.5,"é",null]} True', f"False {bare}"]


@settings(max_examples=200, deadline=None)
@given(PLAIN, st.sampled_from([None, 0, 2]), st.sampled_from([(",", ":"), (", ", ": "), (",", ": "), (" ,", " :")]))
def test_plain_dumps_with_separators_writes_json_s_text(value, indent, separators) -> None:
    text = plain_dumps(value, indent, separators)
    try:
        expected = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators)
    except (ValueError, TypeError, RecursionError):
        expected = None
    assert text == expected or (text is None and expected is None)
