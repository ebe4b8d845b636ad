"""Human renderings of a detection: the signals that fired, where in the task, and how the tier came out."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.cli.output import say, table


def signal_line(detection: Any) -> str:
    """One line naming the signals that fired and what each adds."""
    parts = []
    for hit in detection.hits:
        where = f" {hit.text!r}" if hit.span is not None else ""
        effect = f" {hit.tier} {hit.weight:+g}" if hit.tier is not None else ""
        if hit.boost:
            effect += f" boost {hit.boost:+d}"
        parts.append(f"{hit.signal}{where}{effect}")
    return "signals: " + ("; ".join(parts) if parts else "none fired")


def explain(text: str, detection: Any, default_tier: str, confidence_scale: Any) -> None:
    """The full explanation: each signal with its span, the task marked up, the ask, the scores and the
    decision. ``confidence_scale`` is the detector's scale, or the detector (to explain a calibration)."""
    calibration = getattr(confidence_scale, "calibration", None)
    confidence_scale = getattr(confidence_scale, "confidence_scale", confidence_scale)
    rows = []
    for hit in detection.hits:
        span = f"{hit.span[0]}-{hit.span[1]}" if hit.span is not None else "derived"
        weights = ", ".join(f"{t} {w:+g}" for t, w in hit.weights.items() if w)
        rows.append((hit.signal, hit.text, span, weights, f"{hit.boost:+d}" if hit.boost else "", hit.group or ""))
    if rows:
        table(["signal", "matched", "span", "weights", "boost", "group"], rows, title="signals that fired")
    else:
        say(f"no signal fired: the default tier {default_tier!r} applies")
    located = [h for h in detection.hits if h.span is not None]
    if located:
        say("")
        say(text)
        say(_markers(text, located))
    ask = getattr(detection, "ask", None)
    if ask is not None:
        say(f"the ask (the rest is context): {' '.join(text[ask[0]:ask[1]].split())!r}")
    say("")
    ordered = sorted(detection.scores.values(), reverse=True)
    table(["tier", "score"], [(tier, score) for tier, score in detection.scores.items()], title="scores",
          right=(1,))
    margin = ordered[0] - ordered[1] if len(ordered) > 1 else ordered[0]
    decision = f"best score: {detection.base_tier}"
    if detection.base_tier != detection.tier or detection.boost:
        decision += f"; boosts {detection.boost:+d} → {detection.tier}"
    say(decision)
    if calibration is not None:
        slope, intercept = calibration
        say(f"confidence {detection.confidence:g} = 1 / (1 + exp(-({slope:g} × margin {margin:g} + {intercept:g}))) "
            f"(calibrated)")
    else:
        say(f"confidence {detection.confidence:g} = margin {margin:g} / (margin {margin:g} + scale "
            f"{confidence_scale:g})" if margin > 0 else "confidence 0: the best score is tied")


def _markers(text: str, hits: list) -> str:
    """A line of ``^`` under each matched span (tabs kept so that the carets line up)."""
    first_line = text.split("\n", 1)[0]
    marks = [" " if ch != "\t" else "\t" for ch in first_line]
    for hit in hits:
        start, end = hit.span
        for i in range(start, min(end, len(marks))):
            marks[i] = "^"
    return "".join(marks).rstrip()
