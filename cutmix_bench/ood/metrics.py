"""OOD detection metrics from one pair of score arrays, computed exactly (ties included).

Convention of the scores: higher = more in-distribution. Two positive-class conventions are in use and both
are reported, under names that say which one applies:

- in-distribution positive (the CutMix paper, ODIN): `tnr95` = fraction of OOD samples rejected at the
  threshold where at least 95% of in-distribution samples are accepted; `aupr_in`.
- OOD positive (OpenOOD v1.5): `fpr95` = fraction of in-distribution samples flagged as OOD at the threshold
  where at least 95% of OOD samples are flagged; `aupr_out`.

AUROC and detection accuracy do not depend on the convention.

Thresholds sweep the unique scores: "positive" means score >= t. "At 95% TPR" is the largest threshold whose
TPR is >= 0.95 (the smallest positive set reaching it), with no interpolation: the first point with
tpr >= 0.95 of sklearn's `roc_curve(..., drop_intermediate=False)`. (sklearn's default drop_intermediate=True,
which OpenOOD uses, can skip that point when a tie holds both classes and so overstate the FPR.)

AUPR is average precision, sum_n (R_n - R_{n-1}) P_n over the threshold sweep, as sklearn's
`average_precision_score`; OpenOOD instead integrates `precision_recall_curve` with the trapezoid rule,
which averages the precision at both ends of each recall step: lower than average precision on tie-free
scores (by about 1e-3 or less), higher when scores tie (by 0.25 when all scores are equal); docs/ood.md.
"""

from __future__ import annotations

import numpy as np

TPR_LEVEL = 0.95
METRICS = ("auroc", "aupr_in", "aupr_out", "fpr95", "tnr95", "detection_acc")


def _check(scores: np.ndarray, name: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError(f"{name}: expected at least one score")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name}: scores must be finite (got NaN or inf)")
    return scores


def roc_curve(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) of the rule score >= t over the unique scores, descending, starting at
    (0, 0) with threshold +inf; equals sklearn's roc_curve(drop_intermediate=False)."""
    positive, negative = _check(positive, "positive scores"), _check(negative, "negative scores")
    thresholds = np.unique(np.concatenate([positive, negative]))[::-1]
    # Count of scores >= t for every t: searchsorted on the ascending sorted scores.
    tp = positive.size - np.searchsorted(np.sort(positive), thresholds, side="left")
    fp = negative.size - np.searchsorted(np.sort(negative), thresholds, side="left")
    tpr = np.r_[0.0, tp / positive.size]
    fpr = np.r_[0.0, fp / negative.size]
    return fpr, tpr, np.r_[np.inf, thresholds]


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve (trapezoid over the exact curve: ties count one half)."""
    fpr, tpr, _ = roc_curve(positive, negative)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def fpr_at_tpr(positive: np.ndarray, negative: np.ndarray, level: float = TPR_LEVEL) -> float:
    """FPR at the largest threshold whose TPR is >= `level` (no interpolation)."""
    fpr, tpr, _ = roc_curve(positive, negative)
    return float(fpr[np.argmax(tpr >= level)])


def average_precision(positive: np.ndarray, negative: np.ndarray) -> float:
    """sum_n (R_n - R_{n-1}) P_n over the threshold sweep (sklearn's average_precision_score)."""
    fpr, tpr, _ = roc_curve(positive, negative)
    tp, fp = tpr[1:] * positive.size, fpr[1:] * negative.size
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(tpr) * precision))


def detection_accuracy(positive: np.ndarray, negative: np.ndarray) -> float:
    """max over thresholds of (TPR + TNR) / 2, the (0, 0) and (1, 1) corners included."""
    fpr, tpr, _ = roc_curve(positive, negative)
    return float(np.max(0.5 * (tpr + 1 - fpr)))


def ood_metrics(in_scores: np.ndarray, ood_scores: np.ndarray) -> dict[str, float]:
    """All six metrics as fractions in [0, 1]; scores: higher = more in-distribution."""
    in_scores, ood_scores = _check(in_scores, "in-distribution scores"), _check(ood_scores, "OOD scores")
    return {
        "auroc": auroc(in_scores, ood_scores),
        "aupr_in": average_precision(in_scores, ood_scores),
        "aupr_out": average_precision(-ood_scores, -in_scores),
        "fpr95": fpr_at_tpr(-ood_scores, -in_scores),
        "tnr95": 1 - fpr_at_tpr(in_scores, ood_scores),
        "detection_acc": detection_accuracy(in_scores, ood_scores),
    }


def _weighted_counts(positive: np.ndarray, negative: np.ndarray, positive_counts: np.ndarray,
                     negative_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tp, fp) [block, 1 + thresholds] of the sweep of `roc_curve` when sample i is present counts[:, i]
    times (a bootstrap resample). Thresholds are the unique scores of the original samples; one that no
    resampled score takes repeats the previous point, which changes no metric, so each row gives exactly the
    metrics of its resample."""
    thresholds = np.unique(np.concatenate([positive, negative]))[::-1]

    def cumulative(scores: np.ndarray, counts: np.ndarray) -> np.ndarray:
        above = scores.size - np.searchsorted(np.sort(scores), thresholds, side="left")  # number of scores >= t
        total = np.zeros((len(counts), scores.size + 1), dtype=np.int64)
        np.cumsum(counts[:, np.argsort(-scores, kind="stable")], axis=1, out=total[:, 1:])
        return total[:, np.r_[0, above]]

    return cumulative(positive, positive_counts), cumulative(negative, negative_counts)


def _min_count(n: int, level: float = TPR_LEVEL) -> int:
    """Smallest k with k / n >= level, in the float arithmetic of `fpr_at_tpr`."""
    return int(np.argmax(np.arange(n + 1) / n >= level))


def ood_metric_replicates(in_scores: np.ndarray, ood_scores: np.ndarray, in_counts: np.ndarray,
                          ood_counts: np.ndarray) -> dict[str, np.ndarray]:
    """The six metrics of `ood_metrics` on each bootstrap resample ([block] arrays): in-distribution sample
    i drawn in_counts[:, i] times, OOD sample j ood_counts[:, j] times (the two samples are independent
    draws, so they are resampled independently). With all counts 1 this equals `ood_metrics`.

    Integer counts along one sweep (in-distribution positive, score >= t) give all six: the OOD-positive
    sweep on negated scores visits the same thresholds upwards, and its counts "score <= t_j" are the totals
    minus the counts ">= t_(j-1)" of the next higher threshold."""
    in_scores, ood_scores = _check(in_scores, "in-distribution scores"), _check(ood_scores, "OOD scores")
    n_in, n_ood = in_scores.size, ood_scores.size
    tp, fp = _weighted_counts(in_scores, ood_scores, in_counts, ood_counts)  # in >= t, OOD >= t
    d_tp, d_fp = np.diff(tp, axis=1), np.diff(fp, axis=1)
    auroc = np.sum(d_fp * (tp[:, 1:] + tp[:, :-1]), axis=1) / (2 * n_in * n_ood)
    aupr_in = np.sum(d_tp * (tp[:, 1:] / np.maximum(tp[:, 1:] + fp[:, 1:], 1)), axis=1) / n_in
    ood_below, in_below = n_ood - fp[:, :-1], n_in - tp[:, :-1]  # OOD / in <= t_j, j = 1..T
    aupr_out = np.sum(d_fp * (ood_below / np.maximum(ood_below + in_below, 1)), axis=1) / n_ood
    rows = np.arange(len(tp))
    first = np.sum(tp < _min_count(n_in), axis=1)  # first point with TPR >= 95% (in positive)
    tnr95 = 1 - fp[rows, first] / n_ood
    last = np.sum(fp <= n_ood - _min_count(n_ood), axis=1) - 1  # OOD positive: >= 95% of OOD are <= t_last
    fpr95 = (n_in - tp[rows, last]) / n_in
    detection = 0.5 * (1 + np.max(tp * n_ood - fp * n_in, axis=1) / (n_in * n_ood))
    return {"auroc": auroc, "aupr_in": aupr_in, "aupr_out": aupr_out, "fpr95": fpr95, "tnr95": tnr95,
            "detection_acc": detection}
