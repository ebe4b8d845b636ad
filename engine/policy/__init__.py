"""Policies: locate → read (with positions) → merge ``extends`` → schema → semantic checks → compile.

The pipeline in one place::

    problems, policy = check_policy(path)     # for `ctxbudget validate`
    policy = load_policy(path)                # raises PolicyError with the problems

This is where the stages are wired together, so it is the one module of the policy package that imports the
jobs (their rule modules, which register their checks; see :func:`rule_registry`), and no job imports it
(docs/architecture.md).
"""

from __future__ import annotations

import os

from engine.diagnostics import PolicyError, Problem
from engine.policy.compiled import Policy
from engine.policy.locate import locate_policy

__all__ = ["Policy", "PolicyError", "check_policy", "load_data", "load_policy", "locate_policy", "rule_registry"]


def rule_registry() -> dict:
    """Every rule id, registered: the stages' own and the jobs' (importing a job's rule module registers its
    checks). Returns :data:`engine.policy.rules.RULES`."""
    import engine.claude_code.rules  # noqa: F401 - each registers its checks when imported
    import engine.detect.rules  # noqa: F401
    import engine.pack.rules  # noqa: F401
    import engine.policy.extends  # noqa: F401
    import engine.policy.schema  # noqa: F401
    import engine.policy.semantics  # noqa: F401
    import engine.policy.yamlsource  # noqa: F401
    import engine.recommend.rules  # noqa: F401
    from engine.policy.rules import RULES

    return RULES


def _label(path: str | os.PathLike | None, file: str) -> str:
    """How problems name the file: as the user wrote it, else relative to the working directory."""
    from engine.policy.locate import display_path

    if path not in (None, "") and os.path.exists(path):
        return os.fspath(path)
    return display_path(file)


_REFERENCES = (("unknown-profile", "profiles"), ("unknown-tier", "tiers"), ("unknown-scope", "scopes"),
               ("unknown-agent", "agents"))


def check_policy(path: str | os.PathLike | None = None, *,
                 cache: bool = False) -> tuple[list[Problem], Policy | None]:
    """Validate the policy at ``path`` (located as the CLI does when None): its problems, and the compiled
    policy when there are no errors. Raises UsageError when the file cannot be read.

    A full check, unless ``cache``: then a policy that is unchanged since the compiled-policy cache recorded it
    as valid — checked under the same label, from the same folder, by the same checking code — answers from the
    cache with the problems (warnings) that check gave, and a valid policy checked afresh is recorded."""
    if not cache:
        return _check(path)[:2]
    from engine.policy import cache as policy_cache

    file, label, entry = _entry(path)
    found = policy_cache.read(entry, file, _recompiled)
    if found is not None:
        recorded = policy_cache.checked_problems(found, label)
        if recorded is not None:
            policy = _rebuild(found, label)
            if policy is not None:
                return [Problem(**p) for p in recorded], policy
    problems, policy, compiled = _check(path)
    if policy is not None:
        _store(entry, compiled, problems)
    return problems, policy


def _rebuild(found: "policy_cache.Entry", label: str) -> Policy | None:
    """The policy of a cache entry; None when it does not rebuild (a miss, then rewritten)."""
    try:
        return Policy.from_data(found.data, source=label, files=found.files, artifacts=found.artifacts, copy=False)
    except Exception:  # noqa: BLE001 - an entry that does not rebuild is a miss (and is rewritten)
        return None


def _recompiled(entry: str | None, source: str, files: list) -> tuple[dict, dict]:
    """The data and the detection plan of the policy of a cache entry one of whose sections failed its checks
    (engine/policy/sections.py), compiled afresh from its files — the same as the entry held, when they are
    unchanged — and stored in place of the entry. Raises UsageError when the files changed since the entry was
    read (its other sections, already in use, would not belong with these)."""
    from engine.diagnostics import UsageError

    path = source if os.path.isfile(source) else files[0][0]
    problems, policy, compiled = _check(path)
    if compiled is None or [list(f) for f in compiled.files] != [list(f) for f in files]:
        raise UsageError(f"{source}: the policy changed while it was in use; run the command again")
    _store(entry, compiled, problems)
    return compiled.data, compiled.artifacts.get("detection") or {}


def _entry(path: str | os.PathLike | None) -> tuple[str, str, str | None]:
    """The policy file, its label and its cache entry (None when caching is off). The file is not read: an
    entry says whether it is unchanged (engine/policy/cache.py, by its stamp or its bytes)."""
    from engine.policy import cache as policy_cache

    file = locate_policy(path)
    return file, _label(path, file), policy_cache.entry_path(file)


def _store(entry: str | None, compiled: "policy_cache.Entry | None", problems: list[Problem]) -> None:
    from engine.policy import cache as policy_cache

    if entry is not None and compiled is not None:
        policy_cache.write(entry, compiled._replace(checked=policy_cache.checked_record(compiled.source, problems)))


def _check(path: str | os.PathLike | None) -> tuple[list[Problem], Policy | None, "policy_cache.Entry | None"]:
    """Load, check and compile: the problems, the policy (None when there are errors) and what the cache
    keeps of it."""
    from engine.policy import cache as policy_cache
    from engine.policy.extends import load_chain
    from engine.policy.schema import schema_problems, well_formed_part
    from engine.policy.semantics import semantic_problems
    from engine.recommend.rules import rule_positions

    rule_registry()  # the jobs' checks, registered
    file = locate_policy(path)
    label = _label(path, file)
    try:
        loaded = load_chain(file, label)
    except PolicyError as exc:
        return exc.problems, None, None
    problems = schema_problems(loaded.doc)
    if problems:  # report the semantic problems of the well-formed parts too, in one run
        shown = {p.json_path for p in problems}
        data, pruned = well_formed_part(loaded.doc)
        # a reference into a section the schema rejected (part of) is not known to be wrong
        unsure = {rule for rule, section in _REFERENCES if section in pruned}
        semantic = semantic_problems(loaded.doc, data)
        return problems + [p for p in semantic if p.json_path not in shown and p.rule not in unsure], None, None
    problems = semantic_problems(loaded.doc)
    if any(p.severity == "error" for p in problems):
        return problems, None, None
    artifacts = {}
    if len(loaded.files) > 1:
        artifacts["example_origins"] = _example_origins(loaded.doc)
    positions = rule_positions(loaded.doc)
    if positions is not None:
        artifacts["rule_positions"] = positions
    files = tuple(tuple(f) for f in loaded.files)
    policy = Policy.from_data(loaded.doc.data, source=label, files=files, artifacts=artifacts)
    # the data as loaded (the policy copied what it keeps), and what compiling worked out
    return problems, policy, policy_cache.Entry(label, files, loaded.doc.data, policy.artifacts)


def _example_origins(doc) -> dict[str, list[str]]:
    """Which file wrote each golden example (``extends`` merges them in): per section with an inherited one,
    one label per example, "" for the policy's own file. The positions of the merged document say it."""
    examples = doc.data.get("examples") if isinstance(doc.data, dict) else None
    origins = {}
    for section in ("budgets", "tasks"):
        files = [doc.pos(("examples", section, i)).file for i in range(len((examples or {}).get(section) or ()))]
        if any(f != doc.file for f in files):
            origins[section] = ["" if f == doc.file else f for f in files]
    return origins


def load_policy(path: str | os.PathLike | None = None, *, cache: bool = True) -> Policy:
    """The compiled policy at ``path`` (``--policy`` / ``$CTXBUDGET_POLICY`` / ``./ctxbudget.yaml`` / the
    bundled default when None). Raises :class:`PolicyError` when it is invalid.

    An unchanged policy comes from the compiled-policy cache (see :mod:`engine.policy.cache`) without
    importing the YAML, schema or expression machinery.
    """
    from engine.policy import cache as policy_cache

    entry = None
    if cache:
        file, label, entry = _entry(path)
        found = policy_cache.read(entry, file, _recompiled)
        if found is not None:
            policy = _rebuild(found, label)
            if policy is not None:
                return policy
    problems, policy, compiled = _check(path)
    if policy is None:
        raise PolicyError(problems)
    _store(entry, compiled, problems)
    return policy


def load_data(path: str | os.PathLike | None = None) -> dict:
    """The merged, validated data of the policy at ``path`` (located as :func:`load_policy` does): a fresh
    copy, for tools and tests that work on the data itself (a :class:`Policy` keeps none). Raises
    :class:`PolicyError` when the policy is invalid."""
    problems, policy, compiled = _check(path)
    if compiled is None:
        raise PolicyError(problems)
    return compiled.data
