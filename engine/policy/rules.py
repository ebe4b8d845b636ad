"""Every rule id ``ctxbudget validate`` can report, with what it means (docs/policy.md lists the same)."""

from __future__ import annotations

RULES: dict[str, str] = {
    # reading the file
    "file-too-large": "the file is larger than a policy may be (1 MiB)",
    "yaml-encoding": "the file is not UTF-8 text",
    "yaml-control-character": "a control character (a binary file?)",
    "empty-policy": "the file holds no YAML document",
    "yaml-syntax": "the file is not valid YAML",
    "yaml-tab": "a tab character where YAML needs spaces",
    "yaml-duplicate-key": "a mapping key written twice",
    "yaml-too-deep": "mappings and lists nested more than 64 levels",
    "yaml-alias-expansion": "aliases expanding to more than 200,000 nodes (a 'billion laughs')",
    "yaml-multiple-documents": "more than one YAML document in the file",
    "yaml-tag": "an unsupported or mismatched YAML tag",
    "yaml-complex-key": "a mapping or list used as a mapping key",
    "yaml-number": "a number no setting can hold: an integer beyond 64 bits, or .nan / .inf",
    # extends
    "extends-missing": "the parent policy named by 'extends' does not exist",
    "extends-cycle": "policies extend each other in a cycle (or a chain longer than 16)",
    "extends-path": "the parent is not a regular .yaml, .yml or .json file (a FIFO, a device, another suffix)",
    "extends-not-policy": "the parent is not a ctxbudget policy (a mapping with version or extends); it is not quoted",
    # the schema: one rule per JSON Schema keyword, e.g. schema-type, schema-required
    "schema-*": "the policy does not match schemas/policy.schema.json (the keyword names the check)",
    # semantics
    "unknown-profile": "an agent is assigned to a profile that does not exist",
    "weights-sum": "a profile's scope weights do not sum to 1 (±0.001)",
    "base-above-max": "a profile's base is above its max",
    "unknown-scope": "a profile weighs a scope missing from 'scopes'",
    "duplicate-id": "two tiers, or two signals, share an id",
    "unknown-tier": "a tier name (default_tier, an example, a signal's weights) that is not a tier",
    "unknown-agent": "an example, or claude_code.main_agent, names an agent the policy does not have",
    "thresholds-order": "alert thresholds do not rise info ≤ warning ≤ critical",
    "budget-formula": "the budget formula does not compile, uses an unknown name, or fails for an agent and tier",
    # detection signals (docs/detection.md)
    "signal-kind": "a signal without exactly one of words, pattern, when",
    "bad-word": "a signal's literal has no word to match",
    "bad-pattern": "a signal's pattern is not valid RE2 (no lookaround or backreferences)",
    "bad-expression": "a signal's `when` condition does not compile",
    "signal-no-effect": "(warning) a signal with no weights, boost or group that no condition names",
    "pattern-set-too-large": "the words and patterns of all signals do not fit in one matcher",
    # task files read by detect --batch, accuracy and bench
    "task-encoding": "a line of a task file is not UTF-8 text",
    "task-too-long": "a line of a task file is longer than 4 MiB",
    "task-json": "a line starting with { is not valid JSON",
    "task-shape": "a task line lacks a string \"text\", or has a wrongly typed field",
    "task-label": "a labelled task (accuracy) is not a JSON object with \"text\" and \"tier\"",
    # memory packing (docs/memory.md)
    "memory-relevance": "the memory relevance expression does not compile, uses an unknown feature, or is not a number",
    "memory-template": "a memory source or pinned template uses an unknown placeholder or leaves the memory root",
    "memory-scope": "memory sources or the spill order name a scope missing from 'scopes'",
    # paths a policy writes
    "usage-log-path": "usage_log is not a .jsonl path, or uses a $VARIABLE other than $HOME, $XDG_*, $CTXBUDGET_*",
    # recommendations
    "recommendation-rule": "a recommendation rule's expression does not compile, fails, or is not true/false",
    # every expression of a policy (formula, conditions, rules)
    "expression-type": "an expression uses an unknown field, a value of the wrong type, or is not true/false "
                       "where a condition must be",
    "expression-cost": "an expression could cost more than the evaluation budget for the largest inputs it may see",
}
