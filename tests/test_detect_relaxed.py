"""The set that screens a one-shot process's texts holds each ungated pattern with its bounded repeats opened
(engine.detect.matcher.relaxed: ``{0,90}`` -> ``{0,}``, compiled without 90 copies of the repeated part), and
confirms with the exact pattern what the opened one says fired: the same entries fire as with one set of the
exact patterns, while a task that no capped pattern could match never compiles those patterns."""

from __future__ import annotations

import random

import pytest
import re2

from engine.detect import Detector
from engine.detect.matcher import Matcher, relaxed

TIERS = ["simple", "medium", "complex", "multi-system"]


@pytest.mark.parametrize("pattern, opened", [
    (r"\bor\b[^.?!]{1,60}\?", r"\bor\b[^.?!]{1,}\?"),
    (r"x(?:[^.!?;]|[.!?]\w){0,90}?y", r"x(?:[^.!?;]|[.!?]\w){0,}?y"),  # a lazy repeat stays lazy
    (r"a{2}b{1,3}c{2,}d{1,4}", r"a{2}b{1,3}c{2,}d{1,4}"),  # exact, small and open repeats are kept
    (r"[{0,90}]\{0,90}\x{2010}", r"[{0,90}]\{0,90}\x{2010}"),  # inside a class, escaped, a code point
    (r"[^]{0,50}]z{0,20}", r"[^]{0,50}]z{0,}"),  # "]" first in a class is a member
    (r"plain", r"plain"),
])
def test_relaxed_opens_only_bounded_repeats(pattern: str, opened: str) -> None:
    assert relaxed(pattern) == opened
    re2.compile(opened)  # still a pattern RE2 takes


def _relaxed_character_by_character(pattern: str) -> str:
    """The first relaxed(): every character of the pattern visited (engine.detect.words.unescaped), the oracle of
    the one that jumps from brace to brace."""
    from engine.detect.words import unescaped

    parts, start = [], 0
    for at in unescaped(pattern):
        if at < start or pattern[at] != "{":
            continue
        close = pattern.find("}", at)
        low, comma, high = pattern[at + 1:close].partition(",") if close > 0 else ("", "", "")
        if comma and low.isascii() and low.isdigit() and high.isascii() and high.isdigit() and int(high) > int(low) + 3:
            parts.append(pattern[start:at] + "{" + low + ",}")
            start = close + 1
    parts.append(pattern[start:])
    return "".join(parts)


def test_relaxed_opens_what_a_character_by_character_scan_opens() -> None:
    """On the default policy's patterns and 50,000 random strings of the syntax that matters (escapes, classes,
    braces). It may leave a pattern whose only braces are those of ``\\x{…}`` as it is (always safe)."""
    from engine import load_policy

    matcher = load_policy("default").detector._matcher
    patterns = [matcher.patterns[i] for i in range(len(matcher.patterns))]
    rng = random.Random(5)
    pieces = [*"ab\\[]{},0123456789^x()|?*+", "{0,9}", "{2,30}", "\\x{2010}", "[a-z]", "[^]]", "[]a]", "{1,}", "\\\\",
              "{5}", "[{0,90}]"]
    patterns += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(50_000)]
    for pattern in patterns:
        opened = relaxed(pattern)
        if opened != _relaxed_character_by_character(pattern):
            assert opened == pattern and "{" not in pattern.replace("\\x{", ""), pattern


def test_the_opened_pattern_matches_every_text_the_exact_one_does() -> None:
    rng = random.Random(3)
    exact = re2.compile(r"^\W*(?:[a-z][\w-]{0,15}:\s+)?(?:show|list)\b(?:[^.!?;]|[.!?]\w){0,12}?[.?]?\W*$")
    loose = re2.compile(relaxed(exact.pattern))
    alphabet = "show list dbt: a.b ? ; ! x"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        if exact.search(text):
            assert loose.search(text), text


CAPPED = [
    {"id": "short-or", "pattern": r"\bor\b[^.?!]{1,8}\?", "weights": {"complex": 1}},
    {"id": "short-list", "pattern": r"^\W*list\b(?:[^.!?;]|[.!?]\w){0,10}\W*$", "weights": {"simple": 3}},
    {"id": "dbt", "words": ["dbt"], "weights": {"medium": 1}},
]


@pytest.mark.parametrize("text, fired", [
    ("prod or staging?", {"short-or"}),
    ("prod or the staging warehouse we set up last year?", set()),  # the opened set fires, the exact does not
    ("list dbt tags", {"short-list", "dbt"}),
    ("list every dbt model in the finance folder and more", {"dbt"}),  # past the cap of 10
    ("dbt", {"dbt"}),
])
def test_a_capped_pattern_fires_only_where_the_exact_pattern_matches(text: str, fired: set[str]) -> None:
    one_shot = Detector.from_data({"signals": CAPPED}, TIERS, "medium")
    assert set(one_shot.detect(text).signal_ids) == fired
    exact = Matcher(one_shot._matcher.patterns, one_shot._matcher.entries, words=False)
    data = text.lower().encode()
    assert sorted(one_shot._matcher.fired(data)) == sorted(exact.fired(data))


def test_a_task_no_capped_pattern_could_match_compiles_no_exact_pattern(monkeypatch) -> None:
    import engine.detect.matcher as matcher_module

    compiled: list[str] = []
    real = matcher_module._spans_function
    monkeypatch.setattr(matcher_module, "_spans_function", lambda p: compiled.append(p) or real(p))
    one_shot = Detector.from_data({"signals": CAPPED}, TIERS, "medium")
    one_shot.detect("refactor the dbt staging layer")
    assert compiled == []
    one_shot.detect("prod or staging?")
    assert compiled == [CAPPED[0]["pattern"]]
