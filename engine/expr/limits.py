"""Limits that keep an untrusted expression from using unbounded time or memory.

Policies are written by many people; an expression must fail with a clear error, quickly, whatever it says.
"""

#: Characters in an expression's source.
MAX_SOURCE_LENGTH = 4096

#: Nesting of the syntax tree: operators, calls, selections, parentheses, list and map literals.
#: Chains of ``&&`` / ``||`` count once. CEL requires at least 32 (12 nested parentheses, 24 chained ``?:``).
MAX_DEPTH = 64

#: Work units one evaluation may spend on building values: each macro iteration, each element of a list or
#: map built by a macro, a literal inside a macro or a concatenation, and each 64 characters of a string
#: built by concatenation. Six nested ``.map`` over ten-element lists need more than a million.
MAX_WORK = 100_000

#: Characters in one string built by concatenation, and elements in one list built by concatenation.
MAX_STRING_LENGTH = 1_000_000
MAX_LIST_LENGTH = 100_000

#: Compiled regular expressions kept for patterns that are not literals.
REGEX_CACHE_SIZE = 128

#: Memory RE2 may use for one compiled pattern (bytes); larger patterns are rejected.
REGEX_MAX_MEM = 8 << 20
