"""Fit the default policy's learned vocabulary: word and word-pair signals whose weights come from labelled tasks.

The hand-written signals of ``policies/default.yaml`` say *why* a task is of its tier; on tasks written by people
who never read them they were right about seven times in ten. A linear model over the words of the ask, fitted
on top of the hand-written scores, covers the vocabulary nobody wrote a signal for. This script fits it and
writes it into the policy as ordinary signals (plain data: ``{id, words, in: ask, weights}``), between the
``learned vocabulary`` markers of the ``signals:`` list, so the detector, ``--explain``, ``validate`` and the
compiled-policy cache treat them as any other signal.

How:

1. Candidates: every word and pair of adjacent words (``[a-z0-9_]+``, no number, two characters or more) that
   occurs in at least ``--min-df`` training tasks, keeping one of the forms a literal inflects into (``model``
   matches ``models`` already).
2. Features: which candidates occur in each task's ask, found by the product's own detector (the policy with the
   candidates added as weightless signals scoped to the ask), and the hand-written scores of the policy
   without them.
3. Fit: multinomial logistic regression ``logits = a * scores + X @ W`` with an L2 penalty ``--l2`` on ``W``
   (``a`` a free scale; no intercept, so no signal fires on every task). The detector adds ``W / a`` to its
   scores: its argmax is the fitted model's, and its boosts and calibration apply after it as before.
4. Kept: the ``--top`` candidates of largest weight (refitted on them alone; 0 keeps all); weights under
   ``--floor`` are dropped, the rest rounded to two decimals.

``--check FILE`` fits without FILE and reports the accuracy on it, before and after (nothing is written).
``--write`` replaces the block in the policy file (then re-fit the calibration: docs/detection.md). Needs numpy
and scipy (``pip install numpy scipy``); the product does not: the fitted weights are data.

    python scripts/learn_vocabulary.py --check tests/data/complexity/fresh3-tune.jsonl
    python scripts/learn_vocabulary.py --write
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

BEGIN = "    # -- learned vocabulary (scripts/learn_vocabulary.py writes this block: do not edit it by hand) --\n"
END = "    # -- end of the learned vocabulary --\n"
LABELS = [os.path.join(ROOT, "tests", "data", "complexity", f"{name}.jsonl") for name in
          ("train", "heldout", "fresh-tune", "fresh-heldout", "fresh2-tune", "fresh2-heldout", "fresh3-tune",
           "fresh4-tune", "fresh5-tune", "fresh6-tune", "fresh7-tune", "fresh8-tune",
           "fresh9-tune", "fresh10-tune")] + \
         [os.path.join(os.path.dirname(ROOT), "shared", "data", f"complexity-{name}.jsonl") for name in ("dev", "extra")] + \
         [os.path.join(ROOT, "tests", "test_complexity_corpus.py"), os.path.join(ROOT, "tests", "test_policy_detection.py"),
          os.path.join(ROOT, "policies", "default.yaml")]
WORD = re.compile(r"[a-z0-9_]+")


def without_block(text: str) -> str:
    """The policy's text with the learned block emptied (its markers kept)."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + text[end:]


def candidates(tasks: list[dict], min_df: int) -> list[str]:
    """Words and word pairs of at least ``min_df`` tasks, one per set of inflected forms."""
    from engine.detect.literals import inflections

    df: Counter = Counter()
    for task in tasks:
        words = WORD.findall(task["text"].lower())
        df.update(set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])})
    found = {g for g, n in df.items() if n >= min_df and all(len(w) >= 2 and not w.isdigit() for w in g.split())}
    inflected = set()
    for gram in found:
        *lead, last = gram.split()
        inflected.update(" ".join([*lead, form]) for form in inflections(last)[1:])
    return sorted(found - inflected)


def features(policy_text: str, grams: list[str], tasks: list[dict]) -> tuple[list[str], list, list]:
    """The tiers, the hand-written scores of each task, and which candidates occur in its ask."""
    import engine

    at = policy_text.index(END)
    added = "".join(f"    - {{id: learned-candidate-{i}, words: [{json.dumps(g)}], in: ask}}\n"
                    for i, g in enumerate(grams))
    with tempfile.TemporaryDirectory() as folder:
        plain, probe = os.path.join(folder, "plain.yaml"), os.path.join(folder, "probe.yaml")
        with open(plain, "w", encoding="utf-8") as handle:
            handle.write(policy_text)
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write(policy_text[:at] + added + policy_text[at:])
        hand, probing = engine.load_policy(plain), engine.load_policy(probe)
        tiers = list(hand.detector.tiers)
        scores = [[hand.detect(t["text"]).scores[x] for x in tiers] for t in tasks]
        fired = [sorted({int(h.signal.rsplit("-", 1)[1]) for h in probing.detect(t["text"]).hits
                         if h.signal.startswith("learned-candidate-")}) for t in tasks]
    return tiers, scores, fired


def fit(scores: list, fired: list, labels: list[int], size: int, l2: float, keep: set | None = None):
    """``(a, W)`` of ``logits = a * scores + X @ W`` (see the module)."""
    import numpy as np
    from scipy.optimize import minimize
    from scipy.sparse import csr_matrix

    tiers = len(scores[0])
    H = np.array(scores)
    pairs = [(i, j) for i, js in enumerate(fired) for j in js if keep is None or j in keep]
    X = csr_matrix((np.ones(len(pairs)), ([i for i, _ in pairs], [j for _, j in pairs])), shape=(len(fired), size))
    Y = np.eye(tiers)[labels]
    n = len(labels)

    def loss(theta):
        a, W = theta[0], theta[1:].reshape(size, tiers)
        Z = a * H + X @ W
        Z -= Z.max(1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(1, keepdims=True)
        G = (P - Y) / n
        return (-np.sum(Y * np.log(P + 1e-12)) / n + l2 * np.sum(W * W),
                np.concatenate([[np.sum(G * H)], (X.T @ G + 2 * l2 * W).ravel()]))

    start = np.zeros(1 + size * tiers)
    start[0] = 1.0
    theta = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 3000}).x
    return theta[0], theta[1:].reshape(size, tiers)


def learn(policy_text: str, train: list[dict], min_df: int, l2: float, top: int):
    """The candidates, their weights on the detector's scale, the tiers, and which are kept (None: all)."""
    import numpy as np

    grams = candidates(train, min_df)
    tiers, scores, fired = features(policy_text, grams, train)
    labels = [tiers.index(t["tier"]) for t in train]
    a, W = fit(scores, fired, labels, len(grams), l2)
    keep = None
    if top and top < len(grams):
        keep = set(np.argsort(-np.abs(W).max(1))[:top].tolist())
        a, W = fit(scores, fired, labels, len(grams), l2, keep)
    return grams, W / a, tiers, keep


def block(grams: list[str], weights, tiers: list[str], keep: set | None, floor: float) -> str:
    """The policy lines of the learned signals."""
    lines, used = [], set()
    for j, gram in enumerate(grams):
        if keep is not None and j not in keep:
            continue
        kept = {t: round(float(w), 2) for t, w in zip(tiers, weights[j]) if abs(w) >= floor}
        if not kept:
            continue
        ident = "v-" + re.sub(r"[^a-z0-9]+", "-", gram).strip("-")
        while ident in used:
            ident += "-x"
        used.add(ident)
        shown = ", ".join(f"{t}: {w:g}" for t, w in kept.items())
        lines.append(f"    - {{id: {ident}, words: [{json.dumps(gram)}], in: ask, weights: {{{shown}}}}}\n")
    return "".join(lines)


def calibrated(text: str, plain: str, args: argparse.Namespace) -> str:
    """``text`` with its ``calibration:`` fitted on out-of-fold detections: each label file's tasks detected by
    a vocabulary fitted without that file, so that the confidence is the probability that a tier is right on
    tasks the vocabulary never saw (fitted on its own training tasks, it would be right nearly always). The
    ``signals`` digest is the policy's own (``ctxbudget tune --calibrate-only`` computes it)."""
    import engine
    from engine.detect.tune import fit_platt

    margins, correct = [], []
    with tempfile.TemporaryDirectory() as folder:
        for held in [p for p in args.labels if os.path.abspath(p) not in CASES and not p.endswith(".yaml")]:
            train = [t for path in args.labels if path != held for t in load(path)]
            grams, weights, tiers, keep = learn(plain, train, args.min_df, args.l2, args.top)
            path = os.path.join(folder, "fold.yaml")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(plain.replace(END, block(grams, weights, tiers, keep, args.floor) + END, 1))
            policy = engine.load_policy(path)
            for task in load(held):
                found = policy.detect(task["text"])
                top, second = sorted(found.scores.values(), reverse=True)[:2]
                margins.append(top - second)
                correct.append(found.tier == task["tier"])
        slope, intercept = fit_platt(margins, correct)
        path = os.path.join(folder, "final.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        import subprocess

        labels = os.path.join(folder, "labels.jsonl")
        with open(labels, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(t) + "\n" for p in args.labels for t in load(p))
        subprocess.run([sys.executable, "-m", "engine", "tune", labels, "--calibrate-only", "--yes", "--policy", path],
                       check=True, capture_output=True, cwd=ROOT)
        with open(path, encoding="utf-8") as handle:
            tuned = handle.read()
    line = re.search(r"^  calibration: \{.*\}$", tuned, re.M).group(0)
    digest = re.search(r"signals: '([0-9a-f]+)'", line).group(1)
    new = f"  calibration: {{slope: {slope:.4g}, intercept: {intercept:.4g}, signals: '{digest}'}}"
    print(f"calibration on {len(margins)} out-of-fold detections ({sum(correct) / len(correct):.1%} right): "
          f"slope {slope:.4g}, intercept {intercept:.4g}")
    return re.sub(r"^  calibration: \{.*\}$", new, text, count=1, flags=re.M)


CASES = {os.path.join(ROOT, "tests", "test_complexity_corpus.py"): ("HARD_CASES", "FRESH_KINDS"),
         os.path.join(ROOT, "tests", "test_policy_detection.py"): ("SEED_EXAMPLES", "GUIDE_EXAMPLES")}
"""Lists of ``(task, tier)`` pairs in the tests: the counter-examples each hand-written cue had to survive, and the
seed's and its deployment guide's own examples. They are labelled tasks too, read as literals with :mod:`ast`
(not imported), and the vocabulary is fitted on them (with the policy's golden ``examples: tasks:``) so that it
does not undo what they hold."""
CASE_WEIGHT = 4  # each counts as four tasks (three let a fit with fresh6-tune undo one): they were written to sit on a tier's edge, or define the tiers
def load(path: str) -> list[dict]:
    names = CASES.get(os.path.abspath(path))
    if names is not None:
        import ast

        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        lists = [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and [getattr(t, "id", None) for t in node.targets] in [[n] for n in names]]
        return [{"text": text, "tier": tier} for cases in lists for text, tier in cases] * CASE_WEIGHT
    if path.endswith((".yaml", ".yml", ".json")):  # a policy: its golden examples
        from engine.policy import load_data

        tasks = (load_data(path).get("examples") or {}).get("tasks") or []
        return [{"text": t["task"], "tier": t["tier"]} for t in tasks if "tier" in t] * CASE_WEIGHT
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default=os.path.join(ROOT, "policies", "default.yaml"))
    parser.add_argument("--labels", nargs="+", default=LABELS, help="labelled tasks to fit on (JSONL)")
    parser.add_argument("--min-df", type=int, default=3, help="a candidate occurs in at least this many tasks")
    parser.add_argument("--l2", type=float, default=0.001, help="the L2 penalty on the weights")
    parser.add_argument("--top", type=int, default=0, help="keep this many candidates (0: all)")
    parser.add_argument("--floor", type=float, default=0.05, help="drop weights smaller than this")
    parser.add_argument("--check", metavar="FILE", help="fit without FILE, report the accuracy on it")
    parser.add_argument("--write", action="store_true", help="write the block into the policy file")
    parser.add_argument("--calibrate", action="store_true",
                        help="with --write: fit the confidence calibration on out-of-fold detections")
    args = parser.parse_args(argv)
    with open(args.policy, encoding="utf-8") as handle:
        plain = without_block(handle.read())
    labels = [p for p in args.labels if not args.check or os.path.abspath(p) != os.path.abspath(args.check)]
    train = [t for path in labels for t in load(path)]
    grams, weights, tiers, keep = learn(plain, train, args.min_df, args.l2, args.top)
    text = plain.replace(END, block(grams, weights, tiers, keep, args.floor) + END, 1)
    kept = text.count("\n", text.index(BEGIN), text.index(END)) - 1
    if args.check:
        import engine

        tasks = load(args.check)
        with tempfile.TemporaryDirectory() as folder:
            for name, content in (("hand-written", plain), ("with the vocabulary", text)):
                path = os.path.join(folder, f"{len(name)}.yaml")
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(content)
                policy = engine.load_policy(path)
                right = sum(policy.detect(t["text"]).tier == t["tier"] for t in tasks)
                print(f"{os.path.basename(args.check)}: {name}: {right}/{len(tasks)} = {right / len(tasks):.1%}")
        print(f"{kept} learned signals (fitted without {os.path.basename(args.check)})")
        return 0
    if args.write:
        if args.calibrate:
            text = calibrated(text, plain, args)
        with open(args.policy, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"{args.policy}: {kept} learned signals written")
    else:
        sys.stdout.write(text[text.index(BEGIN):text.index(END) + len(END)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
