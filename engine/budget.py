"""Budget arithmetic: the default formula and the exact split of a budget across scopes."""

from __future__ import annotations

from typing import Mapping


def default_budget(base: int, multiplier: float, maximum: int) -> tuple[int, bool]:
    """``min(round(base × multiplier), max)`` and whether the cap applied."""
    raw = round(base * multiplier)
    return (maximum, True) if raw > maximum else (raw, False)


def split(budget: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``budget`` into integers proportional to ``weights`` that sum exactly to ``budget``.

    Largest-remainder (Hamilton) method: every scope gets the floor of its share, then the tokens left
    over go one each to the largest remainders; ties go to the scope listed first, so the result is
    deterministic and stable under re-ordering of equal shares.
    """
    if budget <= 0 or not weights:
        return {scope: 0 for scope in weights}
    from fractions import Fraction

    # Exact arithmetic on the weights as written (0.3 is 3/10, not 0.29999…), so 30000 × 0.3 is 9000.
    exact = {scope: Fraction(repr(float(w))) for scope, w in weights.items()}
    total = sum(exact.values())
    if total <= 0:
        return {scope: 0 for scope in weights}
    shares = {scope: budget * w / total for scope, w in exact.items()}
    result = {scope: int(share) for scope, share in shares.items()}
    left = budget - sum(result.values())
    order = sorted(shares, key=lambda s: (-(shares[s] - result[s]), list(weights).index(s)))
    for scope in order[:left]:
        result[scope] += 1
    return result
