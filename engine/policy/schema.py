"""JSON Schema validation of a policy, reported at the YAML positions of the offending nodes.

One schema mistake can produce many jsonschema errors; the best one (``jsonschema.exceptions.best_match``)
comes first, the others follow in file order. Messages are rewritten for people ("unknown key 'bsae'; did you
mean 'base'?" rather than "Additional properties are not allowed").
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.diagnostics import Problem, did_you_mean
from engine.policy.rules import register
from engine.policy.yamlsource import Document, json_path
from engine.resources import schema_path

register("schema-*", "the policy does not match the schema; the suffix is the JSON Schema keyword (`schema-type`, "
         "`schema-required`, `schema-additional-properties`, `schema-enum`, `schema-minimum`, `schema-pattern`, …)",
         "schema")


@lru_cache(maxsize=None)
def load_schema(name: str = "policy") -> dict:
    with open(schema_path(name), encoding="utf-8") as handle:
        return json.load(handle)


@lru_cache(maxsize=None)
def _validator(name: str = "policy") -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problems(doc: Document, name: str = "policy") -> list[Problem]:
    """Every schema violation in ``doc``, the best match first."""
    from jsonschema.exceptions import best_match

    errors = list(_validator(name).iter_errors(doc.data))
    if not errors:
        return []
    best = best_match(errors)
    problems = [_problem(best, doc)]
    rest = sorted((_problem(e, doc) for e in errors if e is not best), key=lambda p: (p.path, p.line, p.col))
    seen = {problems[0][:5]}
    for problem in rest:
        if problem[:5] not in seen:
            seen.add(problem[:5])
            problems.append(problem)
    return problems


# Errors about a mapping's keys: the mapping itself is still usable by the semantic checks.
_KEY_KEYWORDS = ("required", "additionalProperties", "propertyNames", "minProperties", "maxProperties",
                 "dependentRequired", "unevaluatedProperties")


def well_formed_part(doc: Document, name: str = "policy") -> tuple[Any, set[str]]:
    """A copy of ``doc.data`` without the values the schema rejects (a wrong type, a value out of range; not
    mappings that merely lack or add a key), so the semantic checks can run on the rest; and the top-level
    sections something was taken from (references into them cannot be checked)."""
    import copy

    data = copy.deepcopy(doc.data)
    paths = sorted({tuple(e.absolute_path) for e in _validator(name).iter_errors(doc.data)
                    if e.validator not in _KEY_KEYWORDS}, key=len, reverse=True)
    sections = {str(path[0]) for path in paths if path}
    for path in paths:
        if not path:
            return {}, sections
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, list) and isinstance(path[-1], int) and path[-1] < len(parent):
                parent[path[-1]] = None
        except (KeyError, IndexError, TypeError):
            continue
    return data, sections


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


_JSON_TYPES = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer", float: "number",
               type(None): "null"}
_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(error: Any, doc: Document) -> Problem:
    path = tuple(error.absolute_path)
    keyword = error.validator
    instance = error.instance
    key = False
    message = error.message
    if "propertyNames" in error.absolute_schema_path:  # the instance is a key; point at it
        path, key = path + (str(instance),), True
        message = f"{_show(instance)} is not a valid name here (letters, digits, '-', '_', '.'; at most 64)"
    elif keyword == "type":
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else list(expected)
        got = _JSON_TYPES.get(type(instance), type(instance).__name__)
        wanted = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        message = f"expected {wanted}, got {got} {_show(instance)}" if got not in ("mapping", "list") else \
            f"expected {wanted}, got a {got}"
        if not path:
            message = f"a policy is a YAML mapping of settings; this file holds {'a ' + got}"
    elif keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extras = [k for k in instance if k not in allowed]
        if extras and allowed:
            extra = extras[0]
            path = path + (extra,)
            key = True
            message = f"unknown key {extra!r}" + did_you_mean(extra, sorted(allowed),
                                                              f"; allowed here: {', '.join(sorted(allowed))}")
    elif keyword == "required":
        missing = [k for k in error.validator_value if isinstance(instance, dict) and k not in instance]
        message = f"missing required key {missing[0]!r}" if missing else message
        key = True
    elif keyword in ("enum", "const"):
        options = error.validator_value if keyword == "enum" else [error.validator_value]
        message = f"must be {' or '.join(_show(o) for o in options)}; got {_show(instance)}"
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": "≥", "maximum": "≤", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[keyword]
        message = f"must be {op} {error.validator_value}; got {_show(instance)}"
    elif keyword == "pattern":
        message = f"{_show(instance)} is not a valid name here (letters, digits, '-', '_', '.')"
    elif keyword in ("minItems", "minProperties") and not instance:
        message = "must not be empty"
    elif keyword in ("maxLength", "maxItems", "maxProperties"):
        message = f"is too long (at most {error.validator_value})"
    pos = doc.pos(path, key=key)
    where = json_path(path)
    return Problem(pos.file, pos.line, pos.col, f"schema-{_kebab(keyword)}", f"{where}: {message}"
                   if path else message, where)
