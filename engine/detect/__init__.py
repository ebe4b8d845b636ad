"""Complexity detection: which tier a task is, from the policy's signals, in one linear-time pass.

    detector = Detector.from_data(policy_data["detection"], ["simple", "medium", ...], "medium")
    detection = detector.detect("Troubleshoot cross-system freshness")

Policies compile their detector lazily (:attr:`engine.policy.Policy.detector`); see docs/detection.md.
Importing this package is cheap; :class:`Detector` (and RE2) load on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start

__all__ = ["Detector", "plan_detection", "signals_from_data"]

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from engine.detect.detector import Detector
    from engine.detect.plan import plan_detection, signals_from_data


def __getattr__(name: str) -> Any:
    # PEP 562: `engine.detect.plan` and friends can be imported without loading RE2 and the detector.
    if name == "Detector":
        from engine.detect.detector import Detector

        return Detector
    if name in ("plan_detection", "signals_from_data"):
        from engine.detect import plan

        return getattr(plan, name)
    raise AttributeError(f"module 'engine.detect' has no attribute {name!r}")
