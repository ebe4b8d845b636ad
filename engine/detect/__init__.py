"""Complexity detection: which tier a task is, from the policy's signals, in one linear-time pass.

    detector = Detector.from_data(policy_data["detection"], ["simple", "medium", ...], "medium")
    detection = detector.detect("Troubleshoot cross-system freshness")

Policies compile their detector lazily (:attr:`engine.policy.Policy.detector`); see docs/detection.md.
"""

from engine.detect.detector import Detector
from engine.detect.plan import plan_detection, signals_from_data

__all__ = ["Detector", "plan_detection", "signals_from_data"]
