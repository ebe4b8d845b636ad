"""The one rule registry: every rule id the code can emit is registered once, with what it means; docs/policy.md's
table is the registry's; every registered check says which ids it reports, and reports only those."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import engine
from conftest import ROOT
from engine.policy import rule_registry
from engine.policy import rules as registry

RULES = rule_registry()
RULE_ID = re.compile(r"[a-z]+(-[a-z0-9]+)+")
EMITTERS = {"Problem", "_fail", "problem_at", "expression_problem", "check_expression"}


def _emitted_rules() -> set[str]:
    found = set()
    for path in Path(engine.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                if name in EMITTERS:
                    for arg in node.args:
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and RULE_ID.fullmatch(arg.value):
                            found.add(arg.value)
    return found


def test_every_emitted_rule_is_registered() -> None:
    emitted = _emitted_rules()
    assert emitted, "the scan found no rules: the emitter names changed?"
    assert emitted - set(RULES) == set()


def _written_rules() -> set[str]:
    """Rule ids written as strings anywhere in the code, but for their registrations."""
    found = set()
    for path in Path(engine.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        registering = {id(c) for node in ast.walk(tree) if isinstance(node, ast.Call)
                       and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("register", "check")
                       for c in ast.walk(node)}
        registering |= {id(c) for node in ast.walk(tree) if isinstance(node, ast.For)  # `for id, summary in (...)`
                        for c in ast.walk(node.iter)}
        found |= {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                  and isinstance(node.value, str) and id(node) not in registering and RULE_ID.fullmatch(node.value)}
    return found


def test_every_registered_rule_is_emitted() -> None:
    schema = {rule for rule in RULES if rule.startswith("schema-")}  # one per JSON Schema keyword, made at run time
    assert set(RULES) - _written_rules() - schema == set()


def test_docs_table_is_the_registry() -> None:
    """docs/policy.md's rule table is :func:`engine.policy.rules.markdown_table` (paste it when a rule changes)."""
    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    start = text.index("| rule | meaning |")
    end = text.index("\n\n", start)
    assert text[start:end + 1] == registry.markdown_table()


def test_checks_report_what_they_register() -> None:
    """Each registered check names the ids it reports, and its body reports no other (so the registry says
    which check a finding comes from)."""
    sources = {}
    for path in Path(engine.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                sources[(path.stem, node.name)] = node
    assert registry.CHECKS
    for check in registry.CHECKS:
        node = sources[(check.__module__.rsplit(".", 1)[-1], check.__name__)]
        said = {arg.value for call in ast.walk(node) if isinstance(call, ast.Call)
                and getattr(call.func, "id", getattr(call.func, "attr", "")) in EMITTERS
                for arg in call.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                and RULE_ID.fullmatch(arg.value)}
        assert said and said <= set(check.rule_ids), (check.__name__, said, check.rule_ids)


def test_the_check_stage_imports_no_job() -> None:
    """Jobs register into the check stage; the check stage (semantics, the registry) names none of them."""
    for name in ("semantics.py", "rules.py", "schema.py", "extends.py", "yamlsource.py"):
        tree = ast.parse((ROOT / "engine" / "policy" / name).read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        jobs = {m for m in imported if m.startswith(("engine.detect", "engine.pack", "engine.claude_code",
                                                      "engine.recommend", "engine.monitor", "engine.analytics"))}
        assert jobs == set(), (name, jobs)


def test_a_rule_is_registered_once() -> None:
    rule = next(iter(RULES.values()))
    assert registry.register(rule.id, rule.summary, rule.stage) == rule  # the same registration again is harmless
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(rule.id, rule.summary + " (again)", rule.stage)
    with pytest.raises(ValueError, match="unknown stage"):
        registry.register("made-up-rule", "nothing", "nowhere")
    assert "made-up-rule" not in RULES
