"""Fitting a policy's signal weights and confidence calibration to labelled tasks (``ctxbudget tune``).

The detector's decision is linear in the signals that fire: each tier's score is the sum of the weights the
fired signals give it, and the best score wins. So the weights are those of a multinomial logistic regression
over the signal hits (one binary feature per weighted signal, no intercept — the policy has none), fitted
with an L2 penalty by full-batch gradient descent (Adam) in pure Python. The penalty is chosen by k-fold
cross-validation (stratified, deterministic); the accuracy reported for the fitted weights is the
cross-validated one, beside the policy's own accuracy on the same tasks.

Confidence is calibrated by Platt scaling of the margin between the best and the second-best score:
``confidence = 1 / (1 + exp(-(slope × margin + intercept)))``, fitted on out-of-fold margins (so it is a
probability that the detected tier is right on tasks the weights were not fitted to). The expected
calibration error (ECE, 10 equal-width bins) is reported before and after.

A signal that fires on none of the tasks keeps its weights (the tasks say nothing about it). Which signals
fire does not depend on the weights (conditions see which signals fired, never scores), so
every task is detected once and the fitting works on the sets of signals that fired.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import MappingProxyType
from engine.records import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterable, Mapping, Sequence

from engine.detect.accuracy import ECE_BINS, calibration_error  # noqa: F401 - ECE_BINS: public here too

DEFAULT_L2 = (0.001, 0.003, 0.01, 0.03)
DEFAULT_FOLDS = 5
ITERATIONS = 300
LEARNING_RATE = 0.05
MIN_WEIGHT = 0.05  # fitted weights smaller than this are left out of the policy


# -- the data ---------------------------------------------------------------------------------------------

class Sample(Record):
    """One labelled task as the fit sees it: the weighted signals that fired (feature indices), the net boost
    of the signals that fired, and the label's tier rank."""

    features: tuple[int, ...]
    boost: int
    label: int


class Problem(Record):
    """What ``tune`` fits: the features (weighted signals, in policy order) and the samples."""

    tiers: tuple[str, ...]
    signals: tuple[str, ...]  # ids of the tuned signals: feature j is signals[j]
    samples: tuple[Sample, ...]
    tie_order: tuple[int, ...]  # tier ranks in the order ties are broken (nearest the default first)
    current: tuple[tuple[float, ...], ...]  # the policy's weights, feature × tier


def problem_of(policy: Any, tasks: Iterable[tuple[Any, str, str, Mapping | None]]) -> Problem:
    """Detect each ``(id, text, tier, context)`` once with ``policy`` and keep which weighted signals fired."""
    detector = policy.detector
    tiers = tuple(detector.tiers)
    rank = {t: i for i, t in enumerate(tiers)}
    tuned = [s for s in detector.signals if any(s.weights.values())]
    index = {s.id: j for j, s in enumerate(tuned)}
    samples = []
    for task in tasks:
        text, tier, context = task[1], task[2], task[3]
        detection = detector.detect(text, context)
        features = tuple(sorted({index[h.signal] for h in detection.hits if h.signal in index}))
        samples.append(Sample(features, sum(h.boost for h in detection.hits), rank[tier]))
    default = rank[detector.default_tier]
    tie_order = tuple(sorted(range(len(tiers)), key=lambda r: (abs(r - default), r)))
    current = tuple(tuple(float(s.weights.get(t, 0.0)) for t in tiers) for s in tuned)
    return Problem(tiers, tuple(s.id for s in tuned), tuple(samples), tie_order, current)


# -- the model --------------------------------------------------------------------------------------------

Weights = list[list[float]]  # feature × tier


def scores_of(weights: Sequence[Sequence[float]], features: Sequence[int], tiers: int) -> list[float]:
    scores = [0.0] * tiers
    for j in features:
        row = weights[j]
        for t in range(tiers):
            scores[t] += row[t]
    return scores


def decide(scores: Sequence[float], boost: int, tie_order: Sequence[int]) -> tuple[int, float]:
    """The tier rank the detector picks from ``scores`` (ties, boosts) and the margin of the best score."""
    ordered = sorted(scores)
    top, second = ordered[-1], (ordered[-2] if len(ordered) > 1 else 0.0)
    best = scores.index(top) if top != second else next(r for r in tie_order if scores[r] == top)
    final = min(max(best + boost, 0), len(scores) - 1)
    return final, top - second


def fit(problem: Problem, samples: Sequence[Sample], l2: float, iterations: int = ITERATIONS) -> Weights:
    """Multinomial logistic regression with an L2 penalty over ``samples``, by full-batch Adam."""
    n, k = len(problem.signals), len(problem.tiers)
    w = [[0.0] * k for _ in range(n)]
    m = [[0.0] * k for _ in range(n)]
    v = [[0.0] * k for _ in range(n)]
    if not samples:
        return w
    used = sorted({j for s in samples for j in s.features})
    scale = 1.0 / len(samples)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, iterations + 1):
        grad = {j: [l2 * x for x in w[j]] for j in used}
        for sample in samples:
            scores = scores_of(w, sample.features, k)
            top = max(scores)
            exps = [math.exp(x - top) for x in scores]
            total = sum(exps)
            delta = [e / total * scale for e in exps]
            delta[sample.label] -= scale
            for j in sample.features:
                row = grad[j]
                for t in range(k):
                    row[t] += delta[t]
        c1, c2 = 1 - beta1 ** step, 1 - beta2 ** step
        for j in used:
            gj, mj, vj, wj = grad[j], m[j], v[j], w[j]
            for t in range(k):
                g = gj[t]
                mj[t] = beta1 * mj[t] + (1 - beta1) * g
                vj[t] = beta2 * vj[t] + (1 - beta2) * g * g
                wj[t] -= LEARNING_RATE * (mj[t] / c1) / (math.sqrt(vj[t] / c2) + eps)
    return w


def folds_of(samples: Sequence[Sample], k: int) -> list[list[int]]:
    """``k`` stratified folds of sample indices: each tier's samples dealt round-robin, in order."""
    folds: list[list[int]] = [[] for _ in range(k)]
    dealt = 0
    by_label: dict[int, list[int]] = {}
    for i, sample in enumerate(samples):
        by_label.setdefault(sample.label, []).append(i)
    for label in sorted(by_label):
        for i in by_label[label]:
            folds[dealt % k].append(i)
            dealt += 1
    return [sorted(f) for f in folds if f]


class Outcome(Record):
    """Predictions for samples: (predicted rank, margin, label rank) each."""

    predictions: tuple[tuple[int, float, int], ...]

    @property
    def accuracy(self) -> float:
        return sum(p == y for p, _, y in self.predictions) / len(self.predictions) if self.predictions else 0.0


def predict(problem: Problem, weights: Sequence[Sequence[float]], samples: Iterable[Sample]) -> Outcome:
    k = len(problem.tiers)
    out = []
    for s in samples:
        final, margin = decide(scores_of(weights, s.features, k), s.boost, problem.tie_order)
        out.append((final, margin, s.label))
    return Outcome(tuple(out))


def cross_validate(problem: Problem, l2: float, folds: int) -> Outcome:
    """Out-of-fold predictions of the fit with penalty ``l2`` (every sample predicted by a model that did
    not see it)."""
    samples = problem.samples
    predictions: dict[int, tuple[int, float, int]] = {}
    for fold in folds_of(samples, folds):
        held = set(fold)
        weights = fit(problem, [s for i, s in enumerate(samples) if i not in held], l2)
        for i, p in zip(fold, predict(problem, weights, [samples[i] for i in fold]).predictions):
            predictions[i] = p
    return Outcome(tuple(predictions[i] for i in range(len(samples))))


# -- calibration ------------------------------------------------------------------------------------------

def fit_platt(margins: Sequence[float], correct: Sequence[bool], iterations: int = 100) -> tuple[float, float]:
    """``(slope, intercept)`` of ``P(correct) = 1 / (1 + exp(-(slope × margin + intercept)))`` by Newton's
    method on the log-likelihood, with Platt's smoothed targets (no infinite weights on separable data) and a
    backtracking line search (Lin, Lin and Weng, "A note on Platt's probabilistic outputs", 2007): a full Newton
    step on a few tasks whose margins separate right from wrong overshoots, and without the search it diverged
    to slopes of -1e10."""
    positives = sum(correct)
    negatives = len(correct) - positives
    high, low = (positives + 1) / (positives + 2), 1 / (negatives + 2)
    targets = [high if c else low for c in correct]
    pairs = list(zip(margins, targets))

    def loss(a: float, b: float) -> float:  # the negative log-likelihood, computed without overflow
        total = 0.0
        for x, y in pairs:
            z = a * x + b
            total += (1 - y) * z + math.log1p(math.exp(-z)) if z >= 0 else -y * z + math.log1p(math.exp(z))
        return total

    a, b = 1.0, 0.0
    current = loss(a, b)
    for _ in range(iterations):
        g_a = g_b = h_aa = h_ab = h_bb = 0.0
        for x, y in pairs:
            p = _sigmoid(a * x + b)
            d = p - y
            w = max(p * (1 - p), 1e-12)
            g_a += d * x
            g_b += d
            h_aa += w * x * x
            h_ab += w * x
            h_bb += w
        h_aa += 1e-9
        h_bb += 1e-9
        det = h_aa * h_bb - h_ab * h_ab
        if det <= 0:
            break
        step_a = (h_bb * g_a - h_ab * g_b) / det
        step_b = (h_aa * g_b - h_ab * g_a) / det
        if abs(step_a) < 1e-10 and abs(step_b) < 1e-10:
            break
        descent = g_a * step_a + g_b * step_b  # the loss falls along -step by about this much per unit
        size = 1.0
        while size >= 1e-10:  # halve the step until the loss falls enough (Armijo)
            new_a, new_b = a - size * step_a, b - size * step_b
            new = loss(new_a, new_b)
            if new <= current - 1e-4 * size * descent:
                break
            size /= 2
        else:
            break  # no step lowers the loss: this is the optimum as far as floating point can tell
        a, b, current = new_a, new_b, new
    return a, b


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def platt(slope: float, intercept: float, margin: float) -> float:
    return _sigmoid(slope * margin + intercept)


# -- the plan ---------------------------------------------------------------------------------------------

class TunePlan(Record):
    """What ``tune`` found and the edit it makes to the policy file."""

    path: Path
    label: str
    original: str
    updated: str
    tasks: int
    accuracy_before: float  # the policy as it is, on the tasks
    cv_accuracy: float | None  # the fitted weights, cross-validated (None with calibrate_only)
    l2: float | None
    ece_before: float
    ece_after: float  # out-of-fold
    calibration: tuple[float, float]
    weights: Mapping[str, Mapping[str, float]] = MappingProxyType({})  # signal → tier → new weight
    problems: tuple = ()
    stale_examples: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def changed(self) -> bool:
        return self.updated != self.original

    def diff(self) -> str:
        from engine.policy.edit import unified_diff

        return unified_diff(self.label, self.original, self.updated)

    def to_dict(self, written: bool) -> dict:
        """Written out: the JSON form rounds, adds the diff and whether the file was written."""
        from engine.records import to_json

        return {"policy": self.label, "tasks": self.tasks, "accuracy_before": round(self.accuracy_before, 4),
                "cv_accuracy": None if self.cv_accuracy is None else round(self.cv_accuracy, 4), "l2": self.l2,
                "calibration": {"slope": self.calibration[0], "intercept": self.calibration[1]},
                "ece_before": round(self.ece_before, 4), "ece_after": round(self.ece_after, 4),
                "weights": {signal: dict(row) for signal, row in self.weights.items()}, "valid": self.valid,
                "problems": [to_json(p) for p in self.problems],
                "stale_examples": list(self.stale_examples), "diff": self.diff(), "written": written}


def plan_tune(policy: Any, tasks: Sequence[tuple[Any, str, str, Mapping | None]], path: Path,
              folds: int = DEFAULT_FOLDS, l2: Sequence[float] = DEFAULT_L2, calibrate_only: bool = False) -> TunePlan:
    """Fit weights (unless ``calibrate_only``) and calibration to ``tasks``; the edited text of ``path``."""
    from engine.detect.accuracy import measure

    problem = problem_of(policy, tasks)
    before = measure(policy, tasks)
    detector = policy.detector
    confidences = [detector.detect(task[1], task[3]).confidence for task in tasks]
    right = [p == y for p, _, y in predict(problem, problem.current, problem.samples).predictions]
    ece_before = calibration_error(confidences, right)
    folds = max(2, min(folds, len(problem.samples)))
    if calibrate_only:
        chosen, cv, weights = None, None, None
        # Out-of-fold calibration of the weights as they are: fit on k-1 folds, measure on the k-th.
        outcome = predict(problem, problem.current, problem.samples)
    else:
        trials = [(cross_validate(problem, penalty, folds), penalty) for penalty in l2]
        outcome, chosen = max(trials, key=lambda item: (item[0].accuracy, item[1]))
        cv = outcome.accuracy
        weights = fit(problem, problem.samples, chosen)
    # Fitted weights: the calibration comes from the cross-validated (out-of-fold) margins, what the weights do on
    # tasks they were not fitted on. Their own margins on their training tasks are wider, and right nearly always
    # once the signals are many: Platt scaling of those was degenerate (slope 0, intercept 6: every confidence
    # 0.998) for the default policy's 200 learned signals on train.jsonl.
    calibration, ece_after = _calibrate(outcome, folds)
    calibration = (round(calibration[0], 4), round(calibration[1], 4))
    new_weights = _rounded(problem, weights) if weights is not None else {}
    seen = {problem.signals[j] for s in problem.samples for j in s.features}
    new_weights = {signal: row for signal, row in new_weights.items() if signal in seen}  # no data: kept
    from engine.policy.edit import PolicyEditor

    editor = PolicyEditor.open(path)
    original = editor.original
    updated = edit_policy_text(editor, new_weights, calibration, _digest_after(policy, new_weights))
    plan = TunePlan(path, policy.source, original, updated, len(problem.samples), before.accuracy, cv, chosen,
                    ece_before, ece_after, calibration, new_weights)
    if plan.changed:
        from engine.apply import stale_examples, validate_text

        problems, edited = validate_text(path, updated, policy.source)
        plan = plan._replace(problems=tuple(problems),
                             stale_examples=tuple(stale_examples(edited)) if edited is not None else ())
    return plan


def _digest_after(policy: Any, weights: Mapping[str, Mapping[str, float]]) -> str:
    """The weights digest of the policy's signals once ``weights`` are written (see ``weights_digest``)."""
    from types import MappingProxyType

    from engine.detect.plan import weights_digest

    signals = [s._replace(weights=MappingProxyType({t: float(w) for t, w in weights[s.id].items()}))
               if s.id in weights else s for s in policy.detector.signals]
    return weights_digest(signals)


def _calibrate(outcome: Outcome, folds: int) -> tuple[tuple[float, float], float]:
    """Platt scaling fitted on all of ``outcome`` and its out-of-fold calibration error."""
    margins = [m for _, m, _ in outcome.predictions]
    correct = [p == y for p, _, y in outcome.predictions]
    confidences: list[float] = [0.0] * len(margins)
    labels = [y for _, _, y in outcome.predictions]
    for fold in _index_folds(labels, folds):
        held = set(fold)
        a, b = fit_platt([m for i, m in enumerate(margins) if i not in held],
                         [c for i, c in enumerate(correct) if i not in held])
        for i in fold:
            confidences[i] = platt(a, b, margins[i])
    return fit_platt(margins, correct), calibration_error(confidences, correct)


def _index_folds(labels: Sequence[int], k: int) -> list[list[int]]:
    return folds_of([Sample((), 0, y) for y in labels], k)


def _rounded(problem: Problem, weights: Weights) -> dict[str, dict[str, float]]:
    """The weights as the policy writes them: each signal's row shifted so its smallest weight is 0 (adding
    the same number to every tier's weight of a signal changes no decision and no margin), then rounded,
    leaving out the near-zero ones."""
    out = {}
    for j, signal in enumerate(problem.signals):
        low = min(weights[j])
        out[signal] = {t: round(w - low, 2) for t, w in zip(problem.tiers, weights[j]) if w - low >= MIN_WEIGHT}
    return out


# -- editing the policy file ------------------------------------------------------------------------------

class TuneError(Exception):
    """The policy file cannot take the tuned values (its signals come from a policy it extends)."""


def edit_policy_text(editor: Any, weights: Mapping[str, Mapping[str, float]],
                     calibration: tuple[float, float], digest: str = "") -> str:
    """The policy file of ``editor`` (a :class:`~engine.policy.edit.PolicyEditor`) with the signals'
    ``weights`` and ``detection.calibration`` replaced, every other byte kept: a flow mapping
    (``{complex: 3}``) is rewritten in place, a block mapping has its numbers replaced and new tiers added
    beneath; ``calibration`` is replaced or added as the first key of the ``detection:`` section (the section
    is added when the file has none)."""
    path, text, data = editor.path, editor.original, editor.data
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, int, int, str]] = []  # (line, start col, end col, new text); inserts have end -1
    detection = data.get("detection") if isinstance(data, dict) else None
    signals = detection.get("signals") if isinstance(detection, dict) else None
    if weights:
        if not isinstance(signals, list):
            raise TuneError(f"{path}: the policy file has no detection signals of its own (they come from the "
                            "policy it extends); copy the detection section into it to tune its weights")
        by_id = {item.get("id"): item for item in signals if isinstance(item, dict)}
        for signal, new in weights.items():
            item = by_id.get(signal)
            if item is None or not isinstance(item.get("weights"), dict):
                continue
            edits += _weight_edits(lines, item, new)
    calibration_text = (f"{{slope: {calibration[0]:g}, intercept: {calibration[1]:g}"
                        + (f", signals: '{digest}'}}" if digest else "}"))
    if isinstance(detection, dict) and isinstance(detection.get("calibration"), dict):
        line, col = detection.lc.value("calibration")
        end = _flow_end(lines[line], col)
        if end is None:
            raise TuneError(f"{path}:{line + 1}: write detection.calibration as a flow mapping to let tune edit it")
        edits.append((line, col, end, calibration_text))
    elif isinstance(detection, dict) and len(detection):
        first = next(iter(detection))
        line, col = detection.lc.key(first)
        edits.append((line, 0, -1, " " * col + f"calibration: {calibration_text}\n"))
    else:
        if isinstance(detection, dict) or "detection" in data:
            raise TuneError(f"{path}: write the detection section as a mapping to let tune add its calibration")
        tail = "" if not lines or lines[-1].endswith("\n") else "\n"
        return text + tail + f"detection:\n  calibration: {calibration_text}\n" if not edits else \
            _apply(lines, edits) + tail + f"detection:\n  calibration: {calibration_text}\n"
    return _apply(lines, edits)


def _weight_edits(lines: list[str], item: Any, new: Mapping[str, float]) -> list[tuple[int, int, int, str]]:
    current = item["weights"]
    line, col = item.lc.value("weights")
    if getattr(current, "fa", None) is not None and current.fa.flow_style():
        end = _flow_end(lines[line], col)
        if end is not None:
            body = ", ".join(f"{tier}: {value:g}" for tier, value in new.items())
            return [(line, col, end, "{" + body + "}")]
    out = []
    last_line, indent = None, None
    for tier in current:
        k_line, k_col = current.lc.key(tier)
        v_line, v_col = current.lc.value(tier)
        end = _number_end(lines[v_line], v_col)
        out.append((v_line, v_col, end, f"{new.get(tier, 0.0):g}"))
        last_line, indent = v_line, k_col
    for tier, value in new.items():
        if tier not in current and last_line is not None:
            out.append((last_line + 1, 0, -1, " " * indent + f"{tier}: {value:g}\n"))
    return out


def _flow_end(line: str, col: int) -> int | None:
    """The column after the ``}`` closing the flow mapping that starts at ``col`` (None when it does not
    close on this line)."""
    if line[col:col + 1] != "{":
        return None
    depth, quote = 0, None
    for i in range(col, len(line)):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _number_end(line: str, col: int) -> int:
    end = col
    while end < len(line) and line[end] not in " \t#,}\r\n":
        end += 1
    return end


def _apply(lines: list[str], edits: list[tuple[int, int, int, str]]) -> str:
    out = list(lines)
    inserts: dict[int, list[str]] = {}
    for line, start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        if end < 0:
            inserts.setdefault(line, []).insert(0, new)
        else:
            out[line] = out[line][:start] + new + out[line][end:]
    for line in sorted(inserts, reverse=True):
        out[line:line] = inserts[line]
    return "".join(out)
