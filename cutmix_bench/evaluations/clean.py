"""Clean test-set metrics of the last-epoch model: top-1 / top-5 error, NLL and ECE."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import EVALUATIONS
from .base import EvalContext, Evaluation, Row


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE with `bins` equal-width confidence bins (Guo et al., 2017): sum_b |B|/N |acc_b - conf_b|."""
    confidence, prediction = probs.max(1)
    correct = (prediction == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    index = torch.bucketize(confidence, edges[1:-1], right=False)  # bin b holds (edges[b], edges[b+1]]
    ece = torch.zeros(())
    for b in range(bins):
        members = index == b
        if members.any():
            ece += members.float().mean() * (correct[members].mean() - confidence[members].mean()).abs()
    return float(ece)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> dict[str, float]:
    """top1_err / top5_err / ece in percent, nll in nats."""
    probs = logits.float().softmax(1)
    k = min(5, logits.shape[1])
    top5 = logits.topk(k, dim=1).indices
    return {
        "top1_err": 100 * float((top5[:, 0] != labels).float().mean()),
        "top5_err": 100 * float(1 - (top5 == labels[:, None]).any(1).float().mean()),
        "nll": float(F.cross_entropy(logits.float(), labels)),
        "ece": 100 * expected_calibration_error(probs, labels, bins),
    }


@EVALUATIONS.register("clean")
class Clean(Evaluation):
    """Its rows form the report's main table, together with training time (see report.py)."""

    title = "Clean test set"

    def __init__(self, ece_bins: int = 15) -> None:
        if ece_bins < 1:
            raise ValueError(f"ece_bins must be >= 1, got {ece_bins}")
        self.ece_bins = ece_bins

    def run(self, ctx: EvalContext) -> list[Row]:
        metrics = classification_metrics(ctx.logits(ctx.test.x), ctx.test.y, self.ece_bins)
        return [{"metric": name, "value": value} for name, value in metrics.items()]
