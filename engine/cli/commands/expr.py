"""ctxbudget expr 'EXPR' [--vars JSON]"""

from __future__ import annotations

import sys

from engine.cli.options import add_format

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "evaluate an expression of the policy language (a quick way to try it)"
DESCRIPTION = """\
Compile EXPR (the CEL subset policies use; see docs/expressions.md) and print its value as JSON.
Variables come from --vars, a JSON object; any other name is an error. Exit 1 when the expression does not
compile or its evaluation fails. JSON has no infinities or NaN: a double that is not finite prints as the
text CEL gives it ("+Inf", "-Inf", "NaN").

  ctxbudget expr '1 + 2 * 3'
  ctxbudget expr 'min(profile.base * tier.multiplier, profile.max)' \\
      --vars '{"profile": {"base": 20000, "max": 50000}, "tier": {"multiplier": 1.5}}'
  ctxbudget expr 'hits.exists(h, h.startsWith("dbt"))' --vars '{"hits": ["dbt-run"]}' --json"""
ORDER = 60


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("expression", metavar="EXPR", help="the expression")
    parser.add_argument("--vars", metavar="JSON", default="{}", help="variables as a JSON object (default: none)")
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.render import Result
    from engine.diagnostics import UsageError
    from engine.expr import EvaluationError, ExprSyntaxError, compile
    from engine.jsonio import JSONInputError, loads

    try:
        variables = loads(args.vars)
    except JSONInputError as e:
        raise UsageError(f"--vars is not valid JSON: {e}") from None
    if not isinstance(variables, dict):
        raise UsageError("--vars must be a JSON object, as in --vars '{\"x\": 1}'")

    try:
        value = compile(args.expression, names=variables).evaluate(variables)
    except ExprSyntaxError as e:
        return _fail(args, "syntax", e, hint=_hint(e, variables))
    except EvaluationError as e:
        return _fail(args, "evaluation", e)
    return Result({"expression": args.expression, "value": _jsonable(value)})


def render_text(result: Result, args: argparse.Namespace) -> None:
    """The value as one line of JSON; a failure as ``ctxbudget: error: ...`` on stderr (exit 1)."""
    import json

    data = result.data
    if "error" not in data:
        sys.stdout.write(json.dumps(data["value"], ensure_ascii=False) + "\n")
        return
    prefix = "" if data["error"]["kind"] == "syntax" else "evaluation failed: "
    text = f"ctxbudget: error: {prefix}{result.view[0]}"
    if result.view[1]:
        text += f"\n({result.view[1]})"
    print(text, file=sys.stderr)


def _jsonable(value):
    """``value`` with every non-finite double replaced by its CEL text (strict JSON has no NaN/Infinity)."""
    import math

    from engine.expr.functions import format_double

    if isinstance(value, float) and not math.isfinite(value):
        return format_double(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _hint(e, variables: dict) -> str:
    from engine.expr import UnknownNameError

    if isinstance(e, UnknownNameError) and not variables:
        return f"give it a value with --vars '{{\"{e.name}\": ...}}'"
    return ""


def _fail(args: argparse.Namespace, kind: str, e, hint: str = "") -> Result:
    """An expression that does not compile or evaluate: the command's finding (exit 1), with the error's
    position; its text rendering is the error with a caret (``view``: the error and the hint)."""
    from engine.cli.render import Result

    error = {"kind": kind, "message": e.message, "line": e.line, "column": e.column}
    return Result({"expression": args.expression, "error": error}, view=(e, hint), exit_code=1)
