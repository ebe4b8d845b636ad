"""Budget arithmetic: the default formula and the exact split of a budget across scopes."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping


DEFAULT_FORMULA = "min(round(profile.base * tier.multiplier), profile.max)"
FORMULA_NAMES = frozenset({"profile", "tier", "agent", "detection"})


def formula_variables() -> dict:
    """The types of what :func:`formula_bindings` gives a formula (for checking it when a policy is validated)."""
    from engine.expr.types import BOOL, DOUBLE, INT, Object, String

    tier = Object("tier", {"id": String(64), "multiplier": DOUBLE, "rank": INT})
    return {"agent": String(200),
            "profile": Object("profile", {"id": String(64), "base": INT, "max": INT}),
            "tier": tier,
            "detection": Object("detection", {"detected": BOOL, "confidence": DOUBLE, "runner_up": tier})}


def tier_binding(tier: Any) -> dict:
    return {"id": tier.id, "multiplier": tier.multiplier, "rank": tier.rank}


def detection_binding(confidence: float, runner_up: Any | None, tier: Any) -> dict:
    """``detection`` for a detected tier: its ``confidence`` and the ``runner_up`` tier (id, multiplier,
    rank; the tier itself when there is none)."""
    return {"detected": True, "confidence": float(confidence),
            "runner_up": tier_binding(runner_up if runner_up is not None else tier)}


def formula_bindings(agent: str, profile: Any, tier: Any, detection: dict | None = None) -> dict:
    """What a budget formula sees: ``profile`` (id, base, max), ``tier`` (id, multiplier, rank), ``agent``, and
    ``detection`` (``detected``, ``confidence``, ``runner_up``). When the tier was given rather than detected,
    ``detection`` is certain: ``detected`` false, ``confidence`` 1, the runner-up the tier itself — so a
    formula that hedges between the tier and the runner-up gives the plain budget."""
    bound = tier_binding(tier)
    return {"agent": agent,
            "profile": {"id": profile.id, "base": profile.base, "max": profile.max},
            "tier": bound,
            "detection": detection if detection is not None else
            {"detected": False, "confidence": 1.0, "runner_up": bound}}


MAX_BUDGET = 2**53 - 1
"""The largest budget a formula may give, and the most tokens a run may load (engine.usage.record.MAX_TOKENS): the
largest integer every JSON reader keeps exact (the usage log holds both)."""


def tokens(value: Any) -> int:
    """A formula's result as whole tokens (halves round up); ValueError unless it is a finite number from 0 to
    :data:`MAX_BUDGET`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in _INFINITE:
        raise ValueError(f"a budget formula must give a number of tokens, not {value!r}")
    if value < 0:
        raise ValueError(f"a budget formula gave a negative budget ({value:g})")
    if value > MAX_BUDGET:
        raise ValueError(f"a budget formula gave more than {MAX_BUDGET:,} tokens ({value:g})")
    return int(value) if isinstance(value, int) else int(value + 0.5)


_INFINITE = (float("inf"), float("-inf"))


def split(budget: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``budget`` into integers proportional to ``weights`` that sum exactly to ``budget``.

    Largest-remainder (Hamilton) method: every scope gets the floor of its share, then the tokens left
    over go one each to the largest remainders; ties go to the scope listed first, so the result is
    deterministic and stable under re-ordering of equal shares.
    """
    if budget <= 0 or not weights:
        return {scope: 0 for scope in weights}
    total = sum(weights.values())
    if total <= 0:
        return {scope: 0 for scope in weights}
    # Shares as written: 30000 × 0.3 is 9000, not 8999.999…, so floors and remainders are taken within a
    # tolerance far below a token and far above floating-point error.
    shares = {scope: budget * w / total for scope, w in weights.items()}
    result = {scope: int(share + _EPS) for scope, share in shares.items()}
    left = budget - sum(result.values())
    order = sorted(enumerate(shares), key=lambda item: (-round(shares[item[1]] - result[item[1]], 6), item[0]))
    for _, scope in order[:left]:
        result[scope] += 1
    return result


_EPS = 1e-6
