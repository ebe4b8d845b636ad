"""Untrusted policies: whatever the bytes, reading and validating ends in problems, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.policy import check_policy

DEFAULT = (Path(__file__).resolve().parents[1] / "policies" / "default.yaml").read_bytes()

YAMLISH = st.text(alphabet=st.sampled_from(list("abc:-[]{},&*!|>'\"#\t\n ?%@`0123456789.~<")), max_size=200)


def _check(tmp_path_factory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "policy.yaml"
    path.write_bytes(raw)
    problems, policy = check_policy(path)
    assert (policy is None) == any(p.severity == "error" for p in problems)
    for problem in problems:
        assert problem.line >= 1 and problem.col >= 1 and problem.rule and problem.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_random_bytes(tmp_path_factory, raw: bytes) -> None:
    _check(tmp_path_factory, raw)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(YAMLISH)
def test_yaml_punctuation(tmp_path_factory, text: str) -> None:
    _check(tmp_path_factory, text.encode())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(DEFAULT) - 1), st.binary(min_size=1, max_size=8))
def test_the_default_policy_with_a_splice(tmp_path_factory, at: int, splice: bytes) -> None:
    """The bundled policy with a few bytes replaced: every way of breaking a real policy is reported."""
    _check(tmp_path_factory, DEFAULT[:at] + splice + DEFAULT[at + len(splice):])
