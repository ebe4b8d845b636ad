"""The public API of engine.expr: compile, Program, errors, import cost, the compiled-policy cache path."""

from __future__ import annotations

import ast
import json
import pickle
import subprocess
import sys
import threading

import pytest

import engine.expr
from engine.expr import runtime
from engine.expr import EvaluationError, ExprError, ExprSyntaxError, LimitExceeded, Program, UnknownNameError, compile


def test_quick_start():
    prog = compile("stats.exceedance_rate > 0.2 && stats.samples >= 10", names={"stats"})
    assert prog.evaluate({"stats": {"exceedance_rate": 0.3, "samples": 12}}) is True
    assert prog.source == "stats.exceedance_rate > 0.2 && stats.samples >= 10"
    assert prog.names == frozenset({"stats"})
    assert isinstance(prog.python_source, str)
    assert repr(prog) == "Program('stats.exceedance_rate > 0.2 && stats.samples >= 10')"


def test_error_hierarchy():
    assert issubclass(ExprSyntaxError, ExprError) and issubclass(EvaluationError, ExprError)
    assert issubclass(UnknownNameError, ExprSyntaxError) and issubclass(LimitExceeded, EvaluationError)
    assert issubclass(ExprError, Exception)
    assert set(engine.expr.__all__) >= {"compile", "Program", "ExprSyntaxError", "EvaluationError", "ExprError"}


@pytest.mark.parametrize(
    "text, names",
    [
        ("1 + 2", set()),
        ("a.b + c[d]", {"a", "c", "d"}),
        ("l.all(x, x > y)", {"l", "y"}),
        ("l.map(x, x.map(y, y + x + z))", {"l", "z"}),
        ("x.map(x, x)", {"x"}),  # the range is outside the macro's scope
        ("has(m.f) && .root", {"m", "root"}),
        ("[a, {b: c}] == d ? e : f", {"a", "b", "c", "d", "e", "f"}),
        ("int(x) + size(y) + min(z, 1)", {"x", "y", "z"}),
    ],
)
def test_names_are_the_free_variables(text, names):
    assert compile(text).names == frozenset(names)


def test_unknown_names_point_at_the_identifier():
    with pytest.raises(UnknownNameError) as info:
        compile("stats.samples > 3 && stat.rate > 0.1", names={"stats", "tier"})
    e = info.value
    assert (e.name, e.line, e.column) == ("stat", 1, 22)
    assert e.message == "unknown name 'stat' (known names: stats, tier)"
    assert str(e).endswith("stats.samples > 3 && stat.rate > 0.1\n                     ^")
    compile("l.all(x, x > 0)", names={"l"})  # macro variables are not free names
    compile("l.all(x, x > 0)", names=["l"])
    compile("stats", names="stats")
    with pytest.raises(UnknownNameError):
        compile("x", names=())


def test_compile_rejects_non_strings():
    with pytest.raises(ExprSyntaxError, match="must be a string"):
        compile(42)  # type: ignore[arg-type]


def test_python_source_imports_only_the_helper_modules():
    prog = compile("s.matches('^a') && l.exists(x, x in m) && min(a, 2) + b > 1")
    module = ast.parse(prog.python_source)
    imports = [n for n in ast.walk(module) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(i, ast.ImportFrom) and i.level == 0 for i in imports)
    assert [i.module for i in imports] == ["engine.expr.functions", "engine.expr.macros", "engine.expr.runtime"]


def test_from_python_rebuilds_an_equivalent_program():
    prog = compile("min(profile.base * tier.multiplier, profile.max)")
    again = Program.from_python(prog.source, prog.python_source)
    bindings = {"profile": {"base": 1000, "max": 1200}, "tier": {"multiplier": 1.5}}
    assert again.evaluate(bindings) == prog.evaluate(bindings) == 1200
    assert again.names == prog.names and again.source == prog.source
    with pytest.raises(EvaluationError) as info:
        again.evaluate({"profile": {"base": 1}, "tier": {"multiplier": 2}})
    assert info.value.column == 45  # positions survive the round trip (the "max" in profile.max)


def test_from_python_refuses_other_formats_and_imports():
    prog = compile("1 + x")
    stale = prog.python_source.replace(f"FORMAT = {runtime.FORMAT}", "FORMAT = 0")
    with pytest.raises(ExprError, match="another version"):
        Program.from_python(prog.source, stale)
    with pytest.raises(ExprError, match="may not import 'os'"):
        Program.from_python("x", "import os\nFORMAT = 1\nNAMES = ()\n")
    with pytest.raises(ExprError):
        Program.from_python("x", "this is not python")


def test_programs_pickle():
    prog = compile("x.all(v, v > 1) && 'a'.matches('a')")
    again = pickle.loads(pickle.dumps(prog))
    assert again.evaluate({"x": [2, 3]}) is True
    assert again.source == prog.source


def test_errors_pickle():
    for error in (ExprSyntaxError("boom", "a + ", 4), UnknownNameError("who", "x", 0, "x"),
                  EvaluationError("bad", "a/0", 1), LimitExceeded("big")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)


def test_programs_are_safe_to_share_between_threads():
    prog = compile("l.map(x, x * k).filter(y, y > 2) == [4, 6] && s + '!' == 'a!'")
    failures = []

    def work(k):
        for _ in range(300):
            if prog.evaluate({"l": [1, 2, 3], "k": 2, "s": "a"}) is not True:
                failures.append(k)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_import_is_cheap():
    loaded = _run(
        "import sys, json, engine.expr\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('lark', 're2', 'engine'))))"
    )
    assert loaded == ["engine", "engine.expr", "engine.expr.errors", "engine.expr.program", "engine.version"]


def test_compile_and_evaluate_never_import_lark():
    loaded = _run(
        "import sys, json\n"
        "from engine.expr import compile, Program\n"
        "p = compile('size(hits.systems) >= 3')\n"
        "q = Program.from_python(p.source, p.python_source)\n"
        "assert q.evaluate({'hits': {'systems': [1, 2, 3]}}) is True\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('lark', 're2'))))"
    )
    assert loaded == []


def test_from_python_does_not_load_the_parser():
    prog = compile("size(hits.systems) >= 3")
    loaded = _run(
        "import sys, json\n"
        "from engine.expr import Program\n"
        f"q = Program.from_python({prog.source!r}, {prog.python_source!r})\n"
        "assert q.evaluate({'hits': {'systems': [1, 2, 3]}}) is True\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('lark', 'engine.expr.')))))"
    )
    parser = {"engine.expr.syntax", "engine.expr._parser", "engine.expr.tree", "engine.expr.compiler"}
    assert not [m for m in loaded if m.startswith("lark") or m in parser], loaded
    assert "engine.expr.runtime" in loaded


def test_a_long_expression_error_shows_only_the_part_around_the_caret() -> None:
    from engine.expr import ExprSyntaxError, compile as compile_expression

    source = "(" * 20000 + "1" + ")" * 20000
    try:
        compile_expression(source)
    except ExprSyntaxError as exc:
        shown, caret = str(exc).splitlines()[1:]
        assert len(shown) <= 2 * 60 + 2 and shown.startswith("…") and shown.endswith("…")
        assert caret == " " * (60 + 1) + "^"
    else:  # pragma: no cover
        raise AssertionError("expected an ExprSyntaxError")
