"""Completeness: every rule id the code can emit is documented in RULES and in docs/policy.md."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import engine
from conftest import ROOT
from engine.policy.rules import RULES

RULE_ID = re.compile(r"[a-z]+(-[a-z0-9]+)+")
EMITTERS = {"Problem", "_fail", "_at"}


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


def test_every_emitted_rule_is_documented() -> None:
    emitted = _emitted_rules()
    assert emitted, "the scan found no rules: the emitter names changed?"
    assert emitted - set(RULES) == set()


def test_docs_list_every_rule() -> None:
    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    assert [rule for rule in RULES if f"`{rule}`" not in text] == []
