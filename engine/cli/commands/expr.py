"""ctxbudget expr 'EXPR' [--vars JSON]"""

from __future__ import annotations

import argparse
import sys

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
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def run(args: argparse.Namespace) -> int:
    import json

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
    if args.json:
        from engine.cli.output import print_json

        print_json({"expression": args.expression, "value": _jsonable(value)})
    else:
        _print(json.dumps(_jsonable(value), ensure_ascii=False))
    return 0


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


def _fail(args: argparse.Namespace, kind: str, e, hint: str = "") -> int:
    import json

    if args.json:
        from engine.cli.output import print_json

        error = {"kind": kind, "message": e.message, "line": e.line, "column": e.column}
        print_json({"expression": args.expression, "error": error})
    else:
        prefix = "" if kind == "syntax" else "evaluation failed: "
        text = f"ctxbudget: error: {prefix}{e}"
        if hint:
            text += f"\n({hint})"
        print(text, file=sys.stderr)
    return 1


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
