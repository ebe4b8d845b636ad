"""Limits that keep an untrusted expression from using unbounded time or memory.

Policies are written by many people; an expression must fail with a clear error, quickly, whatever it says.

Time is bounded by a **cost budget**, as CEL's cost limit bounds admission policies in Kubernetes: every
evaluation starts with :data:`MAX_COST` units and each operation whose work grows with its operands is charged
by their size *before* it runs, so an evaluation that would overspend stops before the work
(:class:`~engine.expr.LimitExceeded`). A unit is about a nanosecond of the worst case of this implementation
(measured on a 2-core x86-64 build machine); the figures below say what each thing costs.
``engine.expr.check`` computes the same costs statically from the syntax tree and the size bounds of the
variables, so a policy whose expressions could overspend is rejected when it is validated.
"""

#: Characters in an expression's source.
MAX_SOURCE_LENGTH = 4096

#: Nesting of the syntax tree: operators, calls, selections, parentheses, list and map literals.
#: Chains of ``&&`` / ``||`` count once. CEL requires at least 32 (12 nested parentheses, 24 chained ``?:``).
MAX_DEPTH = 64

#: Cost units one evaluation may spend (about 10 ms on a quiet machine).
MAX_COST = 10_000_000

#: Each node of a macro's body, for each iteration.
NODE_COST = 100
#: Each operation, in the static bound of :func:`engine.expr.check` (a margin for an operation that hands its
#: operands to its reference implementation; evaluation does not charge it).
STEP_COST = 400
#: Each error absorbed by ``all`` or ``exists``, or by ``&&`` / ``||`` in a macro's body (where it may repeat
#: per element).
ERROR_COST = 4000
#: Each element of a list or map built (by a literal in a macro, by ``map``/``filter``, by ``+``).
ELEMENT_COST = 20
#: Each element of a list or map compared by ``==`` or searched by ``in`` (CEL's equality, in Python).
COMPARE_COST = 500
#: Each character of a string searched (``contains``, ``startsWith``, ``endsWith``), compared or built (``+``).
CHAR_COST = 2
#: Compiling a pattern that is not a literal: a fixed part and a part per character.
REGEX_COMPILE_COST = 20_000
REGEX_CHAR_COST = 200
#: Searching with RE2: per character of the text and instruction of the compiled pattern (RE2 is linear in
#: the text, but its fallback from the DFA to the NFA is also linear in the pattern's program).
REGEX_SEARCH_COST = 13

#: Characters in one string built by concatenation, and elements in one list built by concatenation.
MAX_STRING_LENGTH = 1_000_000
MAX_LIST_LENGTH = 100_000

#: Compiled patterns one evaluation keeps for patterns that are not literals (a pattern compiled again after
#: that is charged again).
REGEX_CACHE_SIZE = 16

#: Memory RE2 may use for one compiled pattern (bytes); larger patterns are rejected.
REGEX_MAX_MEM = 8 << 20

#: Size a static cost bound assumes for a string, list or map whose size nothing declares.
UNKNOWN_SIZE = 1 << 16
