"""In-between class (CutMix paper, Fig. 5b): for seeded random pairs (A, B) of test images of different
classes, Mixup-style inputs lam * x_A + (1 - lam) * x_B and CutMix-style inputs (x_A with a centred
s x s square of x_B pasted in); how often the model predicts A, B, or neither.

The pair seed is a parameter, not the run's seed, so every run sees the same pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import intervals
from ..checks import check_seed
from ..data import Split
from ..errors import BenchError
from ..robustness.inbetween import different_class_pairs, mix, paste_centre, prediction_counts, prediction_rates
from ..robustness.occlusion import centred_mask, default_sizes
from . import EVALUATIONS
from .base import EvalContext, Evaluation, Plan, ReportContext, Row
from .budget import default_count
from .engine import Positions
from .figures import new_figure, plot_curves, save_figure
from .tables import level_table, sampling_note, settings

STYLES = {"mixup": ("Mixup", "λ"), "cutmix": ("CutMix", "s")}  # subset: (display name, level symbol)
METRICS = {"p_a": "P(predict A) (%)", "p_b": "P(predict B) (%)", "p_neither": "P(neither) (%)"}
DEFAULT_LAMS = [k / 10 for k in range(11)]

GPU_PAIRS = 1000


def endpoint(style: str, level: float, height: int, width: int) -> str:
    """"a" / "b" where the mixed input is image A / B itself bit for bit (lam * x_a + (1 - lam) * x_b is exact
    at lam 1 and 0 for finite pixels; a pasted square that covers nothing or everything), else ""."""
    if style == "mixup":
        return "a" if level == 1 else "b" if level == 0 else ""
    pasted = centred_mask(int(level), height, width)
    return "a" if not pasted.any() else "b" if pasted.all() else ""


@EVALUATIONS.register("inbetween")
class InBetween(Evaluation):
    """Rows: p_a / p_b / p_neither (%) per subset (mixup: level = lam, the weight of A; cutmix: level = s)."""

    title = "In-between class"
    units = {"p_a": "percent", "p_b": "percent", "p_neither": "percent"}

    def __init__(self, pairs: int | None = None, lams: list[float] | None = None, sizes: list[int] | None = None,
                 seed: int = 0) -> None:
        """`pairs`: None = 1000 on a GPU, the CPU budget of `evaluations.budget` on CPU."""
        if pairs is not None and (isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 1):
            raise ValueError(f"pairs must be a positive integer or null (device default), got {pairs!r}")
        lams = DEFAULT_LAMS if lams is None else lams
        if not lams or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 for v in lams):
            raise ValueError(f"lams must be a non-empty list of numbers in [0, 1], got {lams!r}")
        if sizes is not None and (not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 0
                                                   for s in sizes)):
            raise ValueError(f"sizes must be a non-empty list of integers >= 0, got {sizes!r}")
        self.pairs, self.seed = pairs, check_seed("seed", seed)
        self.lams = sorted({float(v) for v in lams})
        self.sizes = sorted(set(sizes)) if sizes is not None else None

    def check_image_side(self, side: int) -> None:
        if self.sizes and self.sizes[-1] > side:
            raise ValueError(f"sizes: {self.sizes[-1]} is larger than the image side {side}")

    def run(self, ctx: EvalContext) -> list[Row]:
        _, height, width, _ = ctx.test.x.shape
        side = max(height, width)
        sizes = self.sizes or default_sizes(side)
        if sizes[-1] > side:
            raise BenchError(f"evaluations.inbetween.sizes: {sizes[-1]} is larger than the image side {side}")
        a, b = self.pairs_of(ctx.test, ctx.device.type)
        pairs = len(a)
        grid = [("mixup", lam) for lam in self.lams] + [("cutmix", size) for size in sizes]
        predictions: dict[tuple[str, float], list[torch.Tensor]] = {point: [] for point in grid}
        endpoints = {point: image for point in grid if (image := endpoint(*point, height, width))}
        for point, image in endpoints.items():  # the input is image A or B itself: its clean prediction
            predictions[point].append(ctx.clean_logits(a if image == "a" else b).argmax(1))
        with torch.inference_mode():
            for index in ctx.batches(pairs):
                x_a, x_b = ctx.to_float(ctx.test.x[a[index]]), ctx.to_float(ctx.test.x[b[index]])
                for style, level in grid:
                    if (style, level) not in endpoints:
                        x = mix(x_a, x_b, level) if style == "mixup" else paste_centre(x_a, x_b, int(level))
                        predictions[style, level].append(ctx.forward(x).argmax(1).cpu())
        y_a, y_b = ctx.test.y[a], ctx.test.y[b]
        setting = f"{pairs} pairs, pair seed {self.seed}"
        rows = []
        for (style, level), preds in predictions.items():
            pred = torch.cat(preds)
            counts = prediction_counts(pred, y_a, y_b)
            rows += [{"metric": metric, "subset": style, "level": level, "value": value, "setting": setting,
                      **intervals.binomial(counts[metric], pairs)}
                     for metric, value in prediction_rates(pred, y_a, y_b).items()]
        return rows

    def pairs_of(self, test: Split, device_type: str) -> tuple[np.ndarray, np.ndarray]:
        """Positions (a, b) of the scored pairs in `test`."""
        pairs = self.pairs or default_count(None, device_type) or GPU_PAIRS
        try:
            return different_class_pairs(test.y.numpy(), pairs, self.seed)
        except ValueError as exc:
            raise BenchError(f"evaluations.inbetween: {exc}") from exc

    def clean_positions(self, test: Split, device_type: str) -> Positions:
        """Both images of every pair: lam 1 and 0, and holes of size 0 and of the whole image, are A or B itself."""
        return np.concatenate(self.pairs_of(test, device_type))

    def plan(self, test_size: int, side: int, device_type: str) -> Plan:
        pairs = self.pairs or default_count(None, device_type) or GPU_PAIRS
        grid = [("mixup", lam) for lam in self.lams] + [("cutmix", size) for size in self.sizes or default_sizes(side)]
        mixed = sum(not endpoint(*point, side, side) for point in grid)
        return Plan(2 * pairs, pairs * mixed, f"{pairs:,} pairs x {len(grid)} mixing levels")

    @classmethod
    def report(cls, rows: pd.DataFrame, ctx: ReportContext) -> str:
        parts = [
            f"Random pairs (A, B) of test images of different classes; setting: {settings(rows)}. "
            "**Mixup-style**: input λ·x_A + (1 − λ)·x_B on [0, 1] pixels (λ = weight of A). **CutMix-style**: x_A "
            "with its centred s x s square (start (H − s) // 2) replaced by the same square of x_B (s in pixels). "
            "Percent of pairs predicted as class A, class B, or neither. P(neither) is the paper's metric (lower "
            "is better); P(A) and P(B) have no better direction. Mean ± std over seeds.\n"]
        figure, axes = new_figure(2, 3)
        for row_axes, (style, (name, symbol)) in zip(axes, STYLES.items()):
            levels = sorted(rows[rows["subset"] == style]["level"].astype(float).unique())
            parts.append(f"### {name}-style inputs\n")
            for (metric, label), ax in zip(METRICS.items(), row_axes):
                table = level_table(rows, metric, style, levels, f"{symbol}=", ctx.methods)
                note = sampling_note(rows[(rows["metric"] == metric) & (rows["subset"] == style)])
                parts.append(f"{label}:\n\n{table}\n" + (f"\n{note}\n" if note else ""))
                plot_curves(ax, rows, metric, style, ctx.methods)
                unit = " (pixels)" if style == "cutmix" else ""
                ax.set(title=f"{name}-style: {label}", xlabel=symbol + unit, ylabel="%")
        axes[0][0].legend()
        parts.append(save_figure(figure, ctx.figures_dir, "inbetween"))
        return "\n".join(parts)
