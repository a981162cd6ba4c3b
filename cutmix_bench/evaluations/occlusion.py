"""Occlusion (CutMix paper, Fig. 5a): top-1 error when a centred s x s square is filled ("centre") or
everything outside it is filled ("boundary"), for s from 0 to the image side.

Placement of the square: `robustness.occlusion.centred_bounds` (start (H - s) // 2, clipped). The fill is
the dataset mean colour by default (0 after normalisation, as Cutout fills) or a grey level in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import intervals
from ..data import Split
from ..errors import BenchError
from ..robustness.occlusion import MODES, Mode, centred_mask, default_sizes, normalised_auc, occlude
from . import EVALUATIONS
from .base import EvalContext, Evaluation, Headline, Plan, ReportContext, Row, metric_rows
from .budget import check_max_images, default_count, scored_positions
from .engine import Positions
from .figures import new_figure, plot_curves, save_figure
from .tables import cell_stats, level_table, mean_std_table, sampling_note, save_table, settings

TABLE_SIZES = 5


def filled(mode: Mode, size: int, height: int, width: int) -> torch.Tensor:
    """Boolean [H, W]: the pixels `occlude` sets to the fill."""
    mask = centred_mask(size, height, width)
    return ~mask if mode == "boundary" else mask


@EVALUATIONS.register("occlusion")
class Occlusion(Evaluation):
    """Rows: top1_err (%) per subset (centre / boundary) and level (s); auc_err per subset = the normalised
    area under error vs s / side (needs >= 2 sizes)."""

    title = "Occlusion"
    units = {"top1_err": "percent", "auc_err": "percent"}
    headlines = (Headline("occlusion_auc", "Occlusion AUC err, centre (%)", True,
                          metric_rows("auc_err", subset="centre")),)

    def __init__(self, sizes: list[int] | None = None, fill: str | float = "mean",
                 max_images: int | None = None) -> None:
        if sizes is not None:
            if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in sizes):
                raise ValueError(f"sizes must be a non-empty list of integers >= 0, got {sizes!r}")
            sizes = sorted(set(sizes))
        if fill != "mean" and (isinstance(fill, bool) or not isinstance(fill, (int, float)) or not 0 <= fill <= 1):
            raise ValueError(f"fill must be 'mean' (dataset mean colour) or a number in [0, 1], got {fill!r}")
        self.sizes, self.fill = sizes, fill
        self.max_images = check_max_images(max_images)

    def clean_positions(self, test: Split, device_type: str) -> Positions:
        """The scored images: an empty centre hole, and a boundary hole as large as the image, leave them clean."""
        return scored_positions(len(test), self.max_images, device_type)

    def check_image_side(self, side: int) -> None:
        if self.sizes and self.sizes[-1] > side:
            raise ValueError(f"sizes: {self.sizes[-1]} is larger than the image side {side}")

    def run(self, ctx: EvalContext) -> list[Row]:
        positions = self.clean_positions(ctx.test, ctx.device.type)
        test = ctx.test_at(positions)
        _, height, width, channels = test.x.shape
        side = max(height, width)
        sizes = self.sizes or default_sizes(side)
        if sizes[-1] > side:
            raise BenchError(f"evaluations.occlusion.sizes: {sizes[-1]} is larger than the image side {side}")
        fill = ctx.mean.view(-1) if self.fill == "mean" else torch.full((channels,), float(self.fill),
                                                                          device=ctx.device)
        wrong: dict[tuple[str, int], list[torch.Tensor]] = {(mode, size): [] for mode in MODES for size in sizes}
        clean = [point for point in wrong if not filled(*point, height, width).any()]  # inputs = the clean images
        for point in clean:
            wrong[point].append(ctx.clean_logits(positions).argmax(1) != test.y)
        with torch.inference_mode():
            for index in ctx.batches(len(test)):
                x, y = ctx.to_float(test.x[index]), test.y[index].to(ctx.device)
                for mode, size in wrong:
                    if (mode, size) not in clean:
                        wrong[mode, size].append((ctx.forward(occlude(x, size, mode, fill)).argmax(1) != y).cpu())
        fill_text = "dataset mean colour" if self.fill == "mean" else f"grey {float(self.fill):g} on [0, 1]"
        setting = f"fill {fill_text}; {len(test)} test images"
        n = len(test)
        rows: list[Row] = []
        for mode in MODES:
            per_image = torch.stack([torch.cat(wrong[mode, size]) for size in sizes], 1)  # [n, sizes]
            counts = [int(k) for k in per_image.sum(0)]
            errors = [100 * k / n for k in counts]
            rows += [{"metric": "top1_err", "subset": mode, "level": size, "value": error, "setting": setting,
                      **intervals.binomial(k, n)} for size, error, k in zip(sizes, errors, counts)]
            if len(sizes) >= 2:
                # The curve's sizes score the same images: resample them jointly for the area's interval.
                replicates = intervals.mean_replicates(100 * per_image.double().numpy())
                areas = [normalised_auc(sizes, curve, side) for curve in replicates]
                rows.append({"metric": "auc_err", "subset": mode, "value": normalised_auc(sizes, errors, side),
                             "setting": setting, **intervals.percentile(np.array(areas), n)})
        return rows

    def plan(self, test_size: int, side: int, device_type: str) -> Plan:
        n = min(test_size, default_count(self.max_images, device_type) or test_size)
        sizes = self.sizes or default_sizes(side)
        occluded = sum(bool(filled(mode, size, side, side).any()) for mode in MODES for size in sizes)
        return Plan(n, n * occluded, f"{n:,} images x {len(MODES)} modes x {len(sizes)} sizes")

    @classmethod
    def report(cls, rows: pd.DataFrame, ctx: ReportContext) -> str:
        curves = rows[rows["metric"] == "top1_err"]
        levels = sorted(curves["level"].astype(float).unique())
        shown = [levels[i] for i in sorted(set(np.linspace(0, len(levels) - 1, TABLE_SIZES).round().astype(int)))]
        parts = [
            "Top-1 error (%) on test images with a centred s x s square filled (**centre**) or everything outside "
            "it filled (**boundary**); s in pixels. The square starts at row (H - s) // 2 and column (W - s) // 2 "
            f"(half a pixel up-left of the exact centre when H - s is odd). Pixels on [0, 1]; setting: "
            f"{settings(rows)}. AUC = area under error vs s / side by the trapezoid rule, divided by the span of "
            "s / side (the mean error over the grid; over [0, 1] when s runs from 0 to the side); lower is better. "
            "Mean ± std over seeds.\n"]
        auc = rows[rows["metric"] == "auc_err"]
        if not auc.empty:
            parts.append(mean_std_table(auc, {"centre": "Centre AUC err (%)", "boundary": "Boundary AUC err (%)"},
                                        ctx.methods, column="subset") + "\n")
        for mode in MODES:
            parts.append(f"{mode.capitalize()} occlusion, top-1 error (%):\n\n"
                         + level_table(rows, "top1_err", mode, shown, "s=", ctx.methods) + "\n")
        note = sampling_note(curves)
        parts.append(f"{'Error rates: ' + note + ' ' if note else ''}Every size, mean / std / seeds per cell: "
                     f"{save_table(ctx.out_dir, 'occlusion', cell_stats(rows))}.\n")
        figure, axes = new_figure(1, 2)
        for ax, mode in zip(axes[0], MODES):
            plot_curves(ax, rows, "top1_err", mode, ctx.methods)
            ax.set(title=f"{mode} occlusion", xlabel="hole side s (pixels)", ylabel="top-1 error (%)")
        axes[0][0].legend()
        parts.append(save_figure(figure, ctx.figures_dir, "occlusion"))
        return "\n".join(parts)
