"""Clean test-set metrics of the last-epoch model: top-1 / top-5 error, NLL and ECE, each with its
sampling interval over the test images (`cutmix_bench.intervals`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import intervals
from ..checks import check_integer
from ..data import Split
from . import EVALUATIONS
from .base import EvalContext, Evaluation, Headline, Row, metric_rows
from .engine import Positions


def top1(logits: torch.Tensor) -> torch.Tensor:
    """The top-1 prediction: `argmax` of the logits, the first class among tied maxima. The one rule for top-1
    error, ECE and every other evaluation (`topk(...)[:, 0]` may pick another of the tied classes)."""
    return logits.argmax(1)


def top1_wrong(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Boolean [N]: the top-1 prediction is not the label."""
    return top1(logits) != labels


def calibration_bins(logits: torch.Tensor, labels: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                                      torch.Tensor]:
    """(confidence = max softmax, correct (of `top1`) as float, bin index) per image; bin b holds confidences
    in (b/bins, (b+1)/bins]. Correctness comes from the logits, not the probabilities: softmax can round
    close logits into tied probabilities."""
    confidence = logits.float().softmax(1).max(1).values
    edges = torch.linspace(0, 1, bins + 1)
    correct = (top1(logits) == labels).float()
    return confidence, correct, torch.bucketize(confidence, edges[1:-1], right=False)


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE with `bins` equal-width confidence bins (Guo et al., 2017): sum_b |B|/N |acc_b - conf_b|."""
    confidence, correct, index = calibration_bins(logits, labels, bins)
    ece = torch.zeros(())
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.float().mean() * (correct[members].mean() - confidence[members].mean()).abs()
    return float(ece)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, float]:
    """top1_err / top5_err / ece in percent, nll in nats."""
    k = min(5, logits.shape[1])
    top5 = logits.topk(k, dim=1).indices
    return {
        "top1_err": 100 * float(top1_wrong(logits, labels).float().mean()),
        "top5_err": 100 * float(1 - (top5 == labels[:, None]).any(1).float().mean()),
        "nll": float(F.cross_entropy(logits.float(), labels)),
        "ece": 100 * expected_calibration_error(logits, labels, bins),
    }


def nll_ece_replicates(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15,
                       seed: int | list[int] = intervals.SEED) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates over images of NLL (nats) and ECE (%), from one shared resample. ECE =
    sum_b |sum_{i in b} (correct_i - conf_i)| / N, so a resample's per-bin sums are one product with its
    counts matrix."""
    confidence, correct, index = calibration_bins(logits, labels, bins)
    gap = F.one_hot(index, bins).double() * (correct - confidence).double()[:, None]
    nll = F.cross_entropy(logits.float(), labels, reduction="none").double()[:, None]
    replicates = intervals.mean_replicates(torch.cat([nll, gap], 1).numpy(), seed)
    return replicates[:, 0], 100 * np.abs(replicates[:, 1:]).sum(1)


def metric_intervals(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, intervals.Interval]:
    """n / ci_low / ci_high of each `classification_metrics` entry: exact binomial for the error rates, the
    bootstrap of `nll_ece_replicates` for NLL and ECE."""
    n, k = len(labels), min(5, logits.shape[1])
    top5_hits = int((logits.topk(k, dim=1).indices == labels[:, None]).any(1).sum())
    nll, ece = nll_ece_replicates(logits, labels, bins)
    return {"top1_err": intervals.binomial(int(top1_wrong(logits, labels).sum()), n),
            "top5_err": intervals.binomial(n - top5_hits, n),
            "nll": intervals.percentile(nll, n), "ece": intervals.percentile(ece, n)}


@EVALUATIONS.register("clean")
class Clean(Evaluation):
    """Its rows form the report's main table, together with training time (see report.py)."""

    title = "Clean test set"
    units = {"top1_err": "percent", "top5_err": "percent", "nll": "nats", "ece": "percent"}
    headlines = (Headline("clean_err", "Clean top-1 error (%)", True, metric_rows("top1_err")),
                 Headline("ece", "ECE (%)", True, metric_rows("ece")))
    main_columns = {"top1_err": "Top-1 err (%) ↓", "top5_err": "Top-5 err (%) ↓", "nll": "NLL ↓", "ece": "ECE (%) ↓"}

    def __init__(self, ece_bins: int = 15) -> None:
        self.ece_bins = check_integer("ece_bins", ece_bins, 1)

    def clean_positions(self, test: Split, device_type: str) -> Positions:
        return None

    def run(self, ctx: EvalContext) -> list[Row]:
        logits = ctx.clean_logits()
        metrics = classification_metrics(logits, ctx.test.y, self.ece_bins)
        spread = metric_intervals(logits, ctx.test.y, self.ece_bins)
        return [{"metric": name, "value": value, **spread[name]} for name, value in metrics.items()]
