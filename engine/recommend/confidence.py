"""How sure a recommendation is, given how many runs back it.

Each confidence is the one-sided level at which the data clear the policy's threshold:

- exceedance rate above a threshold ``t``: the Wilson score test. With ``k`` exceedances in ``n`` runs,
  ``z = (k/n - t) / sqrt(t (1 - t) / n)`` and the confidence is Φ(z) — the level at which the lower Wilson bound
  on the rate reaches ``t``. Over a threshold of 20 %, 3 in 10 gives 0.79 and 30 in 100 gives 0.99.
- a mean (usage, a scope's share) beyond a threshold: the normal approximation ``z = (t - mean) / (s / √n)``.

Φ is the standard normal distribution function.
"""

from __future__ import annotations

import math


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def rate_above(k: int, n: int, threshold: float) -> float:
    """Confidence that the true rate behind ``k`` of ``n`` is above ``threshold`` (Wilson score test)."""
    if n <= 0:
        return 0.0
    if threshold <= 0.0:
        return 1.0 if k > 0 else 0.0
    if threshold >= 1.0:
        return 0.0
    z = (k / n - threshold) / math.sqrt(threshold * (1.0 - threshold) / n)
    return normal_cdf(z)


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of the rate ``k / n`` (95 % by default)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_below(mean: float, stdev: float, n: int, threshold: float) -> float:
    """Confidence that the true mean behind ``n`` samples (``mean``, ``stdev``) is below ``threshold``."""
    return _beyond(threshold - mean, stdev, n)


def mean_above(mean: float, stdev: float, n: int, threshold: float) -> float:
    """Confidence that the true mean is above ``threshold``."""
    return _beyond(mean - threshold, stdev, n)


def _beyond(margin: float, stdev: float, n: int) -> float:
    if n <= 0:
        return 0.0
    error = stdev / math.sqrt(n)
    if error <= 0.0:
        return 1.0 if margin > 0 else 0.0
    return normal_cdf(margin / error)
