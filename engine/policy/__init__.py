"""Policies: locate → read (with positions) → merge ``extends`` → schema → semantic checks → compile.

The pipeline in one place::

    problems, policy = check_policy(path)     # for `ctxbudget validate`
    policy = load_policy(path)                # raises PolicyError with the problems
"""

from __future__ import annotations

import os

from engine.diagnostics import PolicyError, Problem
from engine.policy.compiled import Policy
from engine.policy.locate import locate_policy

__all__ = ["Policy", "PolicyError", "check_policy", "load_policy", "locate_policy"]


def _label(path: str | os.PathLike | None, file: str) -> str:
    """How problems name the file: as the user wrote it, else relative to the working directory."""
    from engine.policy.locate import display_path

    if path not in (None, "") and os.path.exists(path):
        return os.fspath(path)
    return display_path(file)


_REFERENCES = (("unknown-profile", "profiles"), ("unknown-tier", "tiers"), ("unknown-scope", "scopes"),
               ("unknown-agent", "agents"))


def check_policy(path: str | os.PathLike | None = None) -> tuple[list[Problem], Policy | None]:
    """Validate the policy at ``path`` (located as the CLI does when None): its problems, and the compiled
    policy when there are none. Always a full check (no cache). Raises UsageError when the file cannot be
    read."""
    from engine.policy.extends import load_chain
    from engine.policy.schema import schema_problems, well_formed_part
    from engine.policy.semantics import semantic_problems

    file = locate_policy(path)
    label = _label(path, file)
    try:
        loaded = load_chain(file, label)
    except PolicyError as exc:
        return exc.problems, None
    problems = schema_problems(loaded.doc)
    if problems:  # report the semantic problems of the well-formed parts too, in one run
        shown = {p.json_path for p in problems}
        data, pruned = well_formed_part(loaded.doc)
        # a reference into a section the schema rejected (part of) is not known to be wrong
        unsure = {rule for rule, section in _REFERENCES if section in pruned}
        semantic = semantic_problems(loaded.doc, data)
        return problems + [p for p in semantic if p.json_path not in shown and p.rule not in unsure], None
    problems = semantic_problems(loaded.doc)
    if any(p.severity == "error" for p in problems):
        return problems, None
    origins = {"example_origins": _example_origins(loaded.doc)} if len(loaded.files) > 1 else None
    policy = Policy.from_data(loaded.doc.data, source=label, files=tuple(loaded.files), artifacts=origins)
    return problems, policy


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
    from engine.diagnostics import UsageError
    from engine.policy import cache as policy_cache
    from engine.policy.locate import read_bytes

    file = locate_policy(path)
    entry = None
    if cache:
        try:
            raw = read_bytes(file)
        except OSError as exc:
            raise UsageError(f"{_label(path, file)}: cannot read: {exc.strerror or exc}") from None
        entry = policy_cache.entry_path(file, raw)
        found = policy_cache.read(entry, file)
        if found is not None:
            try:
                return Policy.from_data(found["data"], source=_label(path, file),
                                        files=tuple(map(tuple, found["files"])), artifacts=found["artifacts"])
            except Exception:  # noqa: BLE001 - an entry that does not rebuild is a miss (and is rewritten)
                pass
    problems, policy = check_policy(path)
    if policy is None:
        raise PolicyError(problems)
    policy_cache.write(entry, policy.source, [list(f) for f in policy.files], dict(policy.data),
                       dict(policy.artifacts))
    return policy
