"""The grammar, the generated parser and the syntax errors people see."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

from engine.expr import ExprSyntaxError, compile
from engine.expr import grammar, syntax
from engine.expr.limits import MAX_DEPTH, MAX_SOURCE_LENGTH
from engine.expr.tree import Node

sys.path.insert(0, str(Path(__file__).resolve().parent))


def dump(node):
    """A syntax tree as nested tuples, to compare trees."""
    if isinstance(node, Node):
        fields = [s for cls in type(node).__mro__ for s in getattr(cls, "__slots__", ())]
        return (type(node).__name__,) + tuple(dump(getattr(node, f)) for f in fields)
    if isinstance(node, (list, tuple)):
        return tuple(dump(n) for n in node)
    return node


def test_tables_are_generated_from_the_current_grammar():
    assert grammar.generated_digest() == grammar.current_digest(), (
        "engine/expr/cel.lark changed: run `python -m engine.expr.grammar --regen`"
    )
    pytest.importorskip("lark")
    assert Path(grammar.GENERATED).read_text(encoding="utf-8") == grammar.generate(), (
        "engine/expr/_tables.py is not what the generator writes: run `python -m engine.expr.grammar --regen`"
    )


def test_builder_methods_take_exactly_the_children_of_their_rules():
    """Children are passed by name: each method must accept every alternative of its rules (no missing or
    unknown child), and every public method must be some rule's."""
    from engine.expr import _tables

    used = set()
    for origin, method, names in _tables.RULES:
        kept = [n for n in names if n is not None]
        if method is None:
            assert len(kept) == 1, (origin, names)
            continue
        used.add(method)
        function = getattr(syntax.Builder, method, None)
        assert callable(function), f"rule {origin} -> {method}: Builder has no method {method!r}"
        try:
            inspect.signature(function).bind(None, **dict.fromkeys(kept))
        except TypeError as e:
            raise AssertionError(f"rule {origin} -> {method}({', '.join(kept)}): {e}") from None
    public = {n for n in vars(syntax.Builder) if not n.startswith("_")}
    assert public == used, public ^ used


@pytest.mark.parametrize("text, message", [
    ("start: a b\na: \"x\"+\nb: \"y\"", "inline rules"),
    ("!start: a\na: \"x\"", "`!` rules"),
    ("start: a a\na: A\nA: \"x\"", "children must have distinct names"),
    ("?start: a b\na: A\nb: B\nA: \"x\"\nB: \"y\"", "needs an `-> alias`"),
    ("start: A\nA: /x/i", "flags are not supported"),
])
def test_generator_refuses_what_the_loop_does_not_run(text, message):
    pytest.importorskip("lark")
    with pytest.raises(grammar.GrammarError, match=re.escape(message)):
        grammar.generate(text)


CORPUS = [
    "stats.exceedance_rate > 0.2 && stats.samples >= 10",
    "min(profile.base * tier.multiplier, profile.max)",
    "size(hits.systems) >= 3",
    "a ? b : c ? d : e",
    "!!x || -y < 3 && z in [1, 2.5, 'x', \"y\", r'raw', '''triple''']",
    "{'a': 1, 2: [true, false, null],}.a[0]",
    "l.all(x, x > 0) && l.exists_one(x, x == 1) && l.map(x, x * 2).filter(y, y % 2 == 0) == []",
    "l.map(x, x > 1, x + 1)",
    "has(m.f) && .root.f(1, 2) && m.`quoted-name` == 'v'",
    "1 - -2 * 3 / 4 % 5 + 0x1F - .5e3 + 1.5e-3",
    "a.b.c[d][e](1)",
    "x // a comment\n  + y",
    "[[[[1]]]][0][0]",
    "-9223372036854775808",
    "-(1) - (-2.5)",
    "'\\x41\\u00e9\\U0001F431\\101\\a\\n\\\\' + \"\\\"\"",
]


def _lark_parser():
    lark = pytest.importorskip("lark")
    return grammar.lark_parser(), lark


def _plain(value):
    """A parse tree as nested tuples: lark's Tree and Token, or what :class:`_Named` builds."""
    if hasattr(value, "data"):  # lark's Tree
        return (str(value.data), tuple(_plain(c) for c in value.children))
    if hasattr(value, "start_pos"):  # lark's Token or syntax.Token
        return (value.type, str(value), value.start_pos)
    return (value[0], tuple(_plain(c) for c in value[1]))


class _Named:
    """Methods for syntax.run that build plain trees, as lark does without a transformer: (rule or alias,
    children in order). Each gets its children by name; their order is the grammar's."""

    def __getattr__(self, method):
        return lambda **children: (method, tuple(children.values()))


def _conformance_expressions():
    try:
        import cel_conformance
    except ImportError:  # pragma: no cover
        return []
    if not cel_conformance.TESTDATA.is_dir():
        return []
    return [case.expr for case in cel_conformance.cases()]


def test_tables_parse_the_corpus_exactly_as_lark_does():
    """The loop over the generated tables builds the same trees, token for token, as ``lark.Lark(cel.lark)``."""
    _same_trees_as_lark(CORPUS)


def test_tables_parse_exactly_as_lark_does():
    """... on every expression of cel-spec's conformance data (kept in ../shared, not in the repository)."""
    expressions = _conformance_expressions()
    if not expressions:
        pytest.skip("cel-spec conformance data not found (../shared/cel-spec/testdata beside the repository)")
    assert len(expressions) > 100
    _same_trees_as_lark(expressions)


def _same_trees_as_lark(expressions):
    parser, lark = _lark_parser()
    methods = syntax.reductions(_Named())
    for text in expressions:
        try:
            expected = _plain(parser.parse(text))
        except lark.exceptions.LarkError:
            expected = "error"
        try:
            actual = _plain(syntax.run(text, methods))
        except syntax._Reject:
            actual = "error"
        assert actual == expected, text


@pytest.mark.parametrize(
    "text, value",
    [
        ("0", 0),
        ("42", 42),
        ("0x1f", 31),
        ("0X1F", 31),
        ("-0x10", -16),
        ("-9223372036854775808", -9223372036854775808),
        ("9223372036854775807", 9223372036854775807),
        ("1.5", 1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1.5E-3", 0.0015),
        ("-2.3e+1", -23.0),
        ("true", True),
        ("false", False),
        ("null", None),
        ("''", ""),
        ('""', ""),
        ("'''a\nb'''", "a\nb"),
        ('"""say "hi" """', 'say "hi" '),
        ("r'\\n'", "\\n"),
        ("R\"\\d+\"", "\\d+"),
        ("'\\a\\b\\f\\n\\r\\t\\v\\\\\\'\\\"\\`\\?'", "\a\b\f\n\r\t\v\\'\"`?"),
        ("'\\x41\\X42\\u00e9\\U0001F431\\101'", "AB\u00e9\U0001F431A"),
        ("'caf\u00e9 \U0001F431'", "caf\u00e9 \U0001F431"),
        ("{'as': 1}.as", 1),
        ("{'while': 2}.while", 2),
        ("{'a-b': 3}.`a-b`", 3),
        ("{'a.b': 4}.`a.b`", 4),
        ("1 // comment", 1),
        ("// leading comment\n 2", 2),
        ("[1, 2,]", [1, 2]),
        ("{'k': 1,}", {"k": 1}),
    ],
)
def test_literals(text, value):
    result = compile(text).evaluate({})
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("1 +", "unexpected end of expression", 4),
        ("(1", "unexpected end of expression", 3),
        ("1 2", "unexpected '2'", 3),
        ("a ++ b", "unexpected '+'", 4),
        ("a.", "unexpected end of expression", 3),
        ("f(1,)", "unexpected ')'", 5),
        ("[,]", "unexpected ','", 2),
        ("x $ y", "unexpected character '$'", 3),
        ("'abc", "unterminated string", 1),
        ('"abc\ndef"', "unterminated string", 1),
        ("'a\\qb'", "invalid escape sequence '\\q' in string", 3),
        ("'\\ud800'", "invalid code point in escape '\\ud800'", 2),
        ("1u", "unsigned integers (the 'u' suffix) are not supported", 1),
        ("b'abc'", "bytes literals are not supported", 1),
        ("9223372036854775808", "integer literal out of range (64-bit signed)", 1),
        ("1e999", "double literal out of range", 1),
        ("x + while", "'while' is a reserved word", 5),
        ("__class__", "names starting with '__' are not allowed: '__class__'", 1),
        ("a.__class__", "names starting with '__' are not allowed: '__class__'", 3),
        ("a.__class__()", "names starting with '__' are not allowed: '__class__'", 3),
        ("", "empty expression", 1),
        ("   ", "empty expression", 1),
        ("!-x", "unexpected '-'", 2),
        ("a == b == \n", "unexpected end of expression", 10),
    ],
)
def test_syntax_errors(text, message, column):
    with pytest.raises(ExprSyntaxError) as info:
        compile(text)
    assert info.value.message.startswith(message)
    assert (info.value.line, info.value.column) == (1, column)


def test_error_shows_the_line_and_a_caret():
    with pytest.raises(ExprSyntaxError) as info:
        compile("stats.rate > 0.2 &&\n  stats.samples >=")
    e = info.value
    assert (e.line, e.column) == (2, 19)
    assert e.message == "unexpected end of expression"
    assert e.source == "stats.rate > 0.2 &&\n  stats.samples >="
    assert str(e) == "unexpected end of expression (line 2, column 19)\n  stats.samples >=\n                  ^"


def test_caret_lines_up_under_tabs():
    with pytest.raises(ExprSyntaxError) as info:
        compile("\ta $ b")
    assert str(info.value).splitlines()[1:] == ["\ta $ b", "\t  ^"]


def test_source_length_limit():
    compile("1" + " " * (MAX_SOURCE_LENGTH - 1))
    with pytest.raises(ExprSyntaxError, match="too long"):
        compile("1" + " " * MAX_SOURCE_LENGTH)


@pytest.mark.parametrize(
    "template",
    ["({})", "[{}]", "{{'k': {}}}", "-{}", "!{}", "size({})", "x[{}]", "{}.f", "{} + 1", "true ? 1 : {}",
     "[{}].map(v, v)"],
)
def test_nesting_limit(template):
    def nest(n):
        text = "x"
        for _ in range(n):
            text = template.format(text)
        return text

    depth = 1
    while True:  # the deepest nesting that compiles
        try:
            syntax.parse(nest(depth + 1))
        except ExprSyntaxError as e:
            assert e.message == f"expression is nested too deeply (more than {MAX_DEPTH} levels)"
            break
        depth += 1
    assert depth >= 30  # CEL requires at least 12 nested parentheses and 24 chained operators
    compile(nest(depth))  # the deepest accepted expression also compiles to Python


@pytest.mark.parametrize("text", ["(" * 20_000 + "1" + ")" * 20_000, "(" * 2000 + "1" + ")" * 2000, "!" * 4000 + "x",
                                  "-" * 4000 + "1", "[" * 2000 + "]" * 2000, "1" + " + 1" * 1000])
def test_hostile_nesting_fails_cleanly(text):
    # (how quickly: benchmarks/bench_expr.py::test_hostile_compile)
    with pytest.raises(ExprSyntaxError):
        compile(text)


def test_long_flat_chains_are_not_nesting():
    compile(" && ".join(["x"] * 800))
    compile(" || ".join(f"a{i} > {i}" for i in range(300)))


def test_cel_requires_these_depths():
    # from cel-spec's parse.textproto: 12 nested calls/indexes/literals, 24 chained ternaries, 32 || / &&
    assert compile("(" * 32 + "7" + ")" * 32).evaluate() == 7
    assert compile("[" * 12 + "0" + "]" * 12 + "[0]" * 12).evaluate() == 0
    assert compile(" ? true : ".join(["true"] * 25)).evaluate() is True
    assert compile(" + ".join(["3 - 3"] * 12) + " + 3").evaluate() == 3
    assert compile("!" * 32 + "true").evaluate() is True
    assert compile("-" * 32 + "19").evaluate() == 19


def test_a_compile_imports_no_parser_runtime():
    """The first compile in a process loads the tables as a plain module: no lark, no standalone runtime."""
    import json
    import subprocess

    code = ("import json, sys; before = set(sys.modules); from engine.expr import compile; compile('a.b > 1 && c'); "
            "print(json.dumps(sorted(set(sys.modules) - before)))")
    new = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert "engine.expr._tables" in new
    assert not [m for m in new if m.split(".")[0] == "lark" or m in ("logging", "pickle", "dataclasses")], new


# -- the lexer of a source without quotes ----------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CEL_CHARS = st.text(alphabet="abrRbBxXeEuU_019.`/- \t\n()[]{}<>=!&|+*%?:,~#\\$@^", max_size=40)


def _lex(source: str, quoted: bool) -> list:
    """The tokens of ``source`` (or the error) with the full lexer or the unquoted one, forced."""
    syntax._load()
    saved = dict(syntax._token_res)
    compiled = re.compile(syntax._tables.TOKEN_RE if quoted else syntax._tables.UNQUOTED_TOKEN_RE)
    syntax._token_res.update({False: compiled, True: compiled})
    try:
        return [(t.type, str(t), t.start_pos) for t in syntax._tokens(source)]
    except syntax._Reject as exc:
        return [("error", exc.message, exc.pos)]
    finally:
        syntax._token_res.clear()
        syntax._token_res.update(saved)


@settings(max_examples=400, deadline=None)
@given(_CEL_CHARS)
def test_without_quotes_the_unquoted_lexer_gives_the_same_tokens(source):
    assert _lex(source, quoted=False) == _lex(source, quoted=True)


def test_the_unquoted_lexer_on_the_corpus():
    sources = [s for s in CORPUS + _conformance_expressions() if "'" not in s and '"' not in s]
    assert len(sources) > 10
    for source in sources:
        assert _lex(source, quoted=False) == _lex(source, quoted=True), source


def test_the_quoted_terminals_need_a_quote():
    """What lets a quote-free source leave them out: STRING and BYTES match no text without a quote."""
    parser, _ = _lark_parser()
    patterns = {name: re.compile(parser.get_terminal(name).pattern.to_regexp()) for name in grammar.QUOTED_TERMINALS}

    @settings(max_examples=300, deadline=None)
    @given(_CEL_CHARS)
    def check(text):
        for name, pattern in patterns.items():
            assert all(pattern.match(text, i) is None for i in range(len(text) + 1)), name

    check()


def test_a_source_with_a_quote_uses_the_whole_lexer():
    syntax._token_res.clear()
    assert compile("x.size() > 2", names={"x"}) and list(syntax._token_res) == [False]
    assert compile("x == 'a'", names={"x"}) and sorted(syntax._token_res) == [False, True]
    with pytest.raises(ExprSyntaxError, match="unterminated string"):
        compile("x == 'a")
