"""Imports point one way, down: the module import graph of `engine`, built from the source with `ast` (imports
inside functions included, `if TYPE_CHECKING:` blocks left out), has no upward edge between the layers
declared below and no cycle (docs/architecture.md draws the same layers).

An edge is what a module's code names: ``from engine.policy.rules import check`` is an edge to
``engine.policy.rules``, ``from engine import agents`` to ``engine.agents`` (a submodule), ``from engine import
__version__`` to ``engine``. The parent packages Python runs on the way are not edges (as in grimp and
import-linter): a package's ``__init__`` is a module of its own layer, like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "engine"

# Lowest first. A name matches the module itself and everything under it; the longest matching name decides. A
# name ending in "=" matches only that module (a package whose submodules sit in other layers).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("engine.version", "engine.records", "engine.diagnostics", "engine.jsonio", "engine.resources",
              "engine.agents", "engine.digest", "engine.text")),
    ("expression language", ("engine.expr",)),
    ("model", ("engine.model", "engine.budget")),
    ("load and check", ("engine.policy.locate", "engine.policy.yamlsource", "engine.policy.extends",
                        "engine.policy.schema", "engine.policy.rules", "engine.policy.semantics",
                        "engine.policy.programs", "engine.policy.cache", "engine.policy.sections",
                        "engine.policy.edit")),
    ("usage records", ("engine.usage",)),
    ("jobs", ("engine.detect", "engine.pack", "engine.monitor", "engine.analytics", "engine.recommend")),
    ("adapters", ("engine.claude_code",)),
    ("assembly", ("engine.policy=", "engine.policy.compiled")),
    ("api", ("engine=",)),
    ("tools", ("engine.golden", "engine.apply", "engine.report", "engine.detect.tune", "engine.detect.accuracy")),
    ("cli", ("engine.cli", "engine.__main__")),
)

# Imports by a name computed at run time are invisible to `ast`; each must be declared here: the modules (a name
# and everything under it) that may make them, and the module names they may import (their reason is in
# docs/architecture.md).
DYNAMIC = {
    "engine.cli": "engine.cli.commands",  # one module per command, imported by its name
    "engine.expr.program": "engine.expr",  # generated code imports the language's runtime helpers
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every import node, at any depth, but those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _edges(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name == "engine" or a.name.startswith("engine.")}
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        if base != "engine" and not base.startswith("engine."):
            continue
        for alias in node.names:
            full = f"{base}.{alias.name}"
            found.add(full if full in MODULES else base)
    found.discard(name)
    return found


GRAPH = {name: _edges(name, path) for name, path in MODULES.items()}


def layer_of(module: str) -> int:
    best, rank = -1, None
    for index, (_, names) in enumerate(LAYERS):
        for entry in names:
            exact = entry.endswith("=")
            entry = entry.rstrip("=")
            if module == entry or (not exact and module.startswith(entry + ".")):
                if len(entry) > best:
                    best, rank = len(entry), index
    if rank is None:
        raise LookupError(f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)")
    return rank


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 100
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_one_above_it() -> None:
    upward = [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
              for a, targets in sorted(GRAPH.items()) for b in sorted(targets) if layer_of(b) > layer_of(a)]
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_the_check_finds_an_upward_import_and_a_cycle() -> None:
    """The checks themselves: a job importing the policy assembly is upward; two modules importing each other
    (lazily) are a cycle."""
    graph = {**GRAPH, "engine.detect.rules": GRAPH["engine.detect.rules"] | {"engine.policy.compiled"}}
    assert layer_of("engine.policy.compiled") > layer_of("engine.detect.rules")
    tree = ast.parse("def later():\n    from engine.detect.tune import fit\n")
    assert {n.module for n in _imports(tree)} == {"engine.detect.tune"}  # a lazy import is an edge
    tree = ast.parse("if TYPE_CHECKING:\n    from engine.policy import Policy\n")
    assert list(_imports(tree)) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert [a for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)] == ["engine.detect.rules"]


def _dynamic_importers() -> set[str]:
    found = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                called = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if called in ("import_module", "__import__"):
                    found.add(name)
            elif isinstance(node, ast.Name) and node.id == "__import__":
                found.add(name)
    return found


def _declared(module: str) -> str | None:
    return next((d for d in DYNAMIC if module == d or module.startswith(d + ".")), None)


def test_dynamic_imports_are_declared_and_point_down() -> None:
    importers = _dynamic_importers()
    assert [m for m in sorted(importers) if _declared(m) is None] == []
    for declared, target in DYNAMIC.items():
        makers = [m for m in importers if _declared(m) == declared]
        assert makers, f"{declared}: declared, but nothing there imports by name"
        assert all(layer_of(target) <= layer_of(m) for m in makers), (declared, target)


HASHLIB_ALLOWED = {
    "engine.digest": "its fallback where CPython's own SHA-256 is missing",
    "engine.expr.grammar": "the grammar tables' digest, when they are regenerated and in tests (never at run time)",
    "engine.detect.plan": "its SHA-1's fallback, as engine.digest's",
}


def test_sha256_comes_from_engine_digest() -> None:
    """``import hashlib`` initialises OpenSSL (milliseconds of every hook's start): every SHA-256 is
    ``engine.digest``'s, and no other module imports hashlib."""
    found = set()
    for name, path in MODULES.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if "hashlib" in names:
                found.add(name)
    assert found <= set(HASHLIB_ALLOWED), sorted(found - set(HASHLIB_ALLOWED))
