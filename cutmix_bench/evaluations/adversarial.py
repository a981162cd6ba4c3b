"""White-box adversarial robustness: top-1 accuracy under FGSM at several epsilons (8/255 is the CutMix
paper's) and under L-inf PGD, on [0, 1] pixels with the normalisation inside the attacked function.

Epsilons and step sizes are given in units of 1/255 (pixel levels). The model stays in eval mode
(BatchNorm statistics frozen); the PGD random start is drawn from a generator seeded by `seed` on CPU,
so it is the same for every run and device.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import torch

from .. import intervals
from ..checks import check_flag, check_seed
from ..data import Split
from ..errors import BenchError
from ..robustness.attacks import fgsm, loss_gradient, pgd
from . import EVALUATIONS
from .base import EvalContext, Evaluation, Headline, Plan, ReportContext, Row, metric_rows
from .budget import check_max_images, default_count, scored_positions
from .engine import Positions
from .figures import new_figure, plot_curves, save_figure
from .tables import mean_std_table, sampling_note, settings

log = logging.getLogger("cutmix_bench")
Attack = tuple[str, float]  # (clean / fgsm / pgd, epsilon in units of 1/255)


def check_levels(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 255:
        raise ValueError(f"{name} must be a number in (0, 255] (units of 1/255), got {value!r}")
    return float(value)


@EVALUATIONS.register("adversarial")
class Adversarial(Evaluation):
    """Rows: top1_acc (%) for subset clean (level 0), fgsm (level = eps x 255) and pgd (level = eps x 255)."""

    title = "Adversarial robustness (white-box)"
    units = {"top1_acc": "percent"}
    headlines = (Headline("fgsm8", "FGSM 8/255 accuracy (%)", False,
                          metric_rows("top1_acc", subset="fgsm", level=8.0)),)

    def __init__(self, epsilons: Sequence[float] = (1, 2, 4, 8), pgd_epsilon: float | None = 8, pgd_step: float = 2,
                 pgd_steps: int = 10, random_start: bool = True, max_images: int | None = None,
                 batch_size: int | None = None, seed: int = 0) -> None:
        if not epsilons:
            raise ValueError("epsilons must list at least one epsilon (units of 1/255)")
        self.epsilons = sorted({check_levels("epsilons", e) for e in epsilons})
        self.pgd_epsilon = None if pgd_epsilon is None else check_levels("pgd_epsilon", pgd_epsilon)
        self.pgd_step = check_levels("pgd_step", pgd_step)
        if isinstance(pgd_steps, bool) or not isinstance(pgd_steps, int) or pgd_steps < 1:
            raise ValueError(f"pgd_steps must be a positive integer, got {pgd_steps!r}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or null (eval_batch_size), got {batch_size!r}")
        self.pgd_steps, self.random_start = pgd_steps, check_flag("random_start", random_start)
        self.seed = check_seed("seed", seed)
        self.max_images = check_max_images(max_images)
        self.batch_size = batch_size

    def run(self, ctx: EvalContext) -> list[Row]:
        if ctx.model.training:
            raise BenchError("evaluations.adversarial: the model must be in eval mode (BatchNorm frozen)")
        positions = self.clean_positions(ctx.test, ctx.device.type)
        test = ctx.test_at(positions)
        batch_size = self.batch_size or ctx.batch_size
        generator = torch.Generator().manual_seed(self.seed) if self.random_start else None
        attacks = [("fgsm", e) for e in self.epsilons]
        attacks += [("pgd", self.pgd_epsilon)] if self.pgd_epsilon is not None else []
        correct = {("clean", 0.0): int((ctx.clean_logits(positions).argmax(1) == test.y).sum()),
                   **dict.fromkeys(attacks, 0)}
        start = 0
        while start < len(test):
            stop = min(start + batch_size, len(test))
            state = generator.get_state() if generator is not None else None
            try:
                hits = self.score_batch(ctx, test.x[start:stop], test.y[start:stop], attacks, generator)
            except torch.cuda.OutOfMemoryError:
                if batch_size == 1:
                    raise
                batch_size //= 2  # backward passes need far more memory than eval_batch_size was chosen for
                log.warning("adversarial: out of device memory, batch size lowered to %d", batch_size)
                torch.cuda.empty_cache()
                if generator is not None:
                    generator.set_state(state)  # the retried batch gets the same random start
                continue
            correct = {key: correct[key] + hits.get(key, 0) for key in correct}
            start = stop
        begin = f"random start (seed {self.seed})" if self.random_start else "no random start"
        setting = f"{len(test)} test images; PGD {self.pgd_steps} steps of {self.pgd_step:g}/255, {begin}"
        return [{"metric": "top1_acc", "subset": attack, "level": level, "value": 100 * hits / len(test),
                 "setting": setting, **intervals.binomial(hits, len(test))}
                for (attack, level), hits in correct.items()]

    def clean_positions(self, test: Split, device_type: str) -> Positions:
        return scored_positions(len(test), self.max_images, device_type)

    def plan(self, test_size: int, side: int, device_type: str) -> Plan:
        n = min(test_size, default_count(self.max_images, device_type) or test_size)
        pgd_steps = self.pgd_steps if self.pgd_epsilon is not None else 0
        # clean + one gradient for every FGSM epsilon (backward = 2 passes) + a pass per epsilon + PGD
        passes = n * (1 + 3 + len(self.epsilons) + (3 * pgd_steps + 1 if pgd_steps else 0))
        return Plan(n, passes, f"{n:,} images x (clean + {len(self.epsilons)} FGSM + "
                    f"{'PGD-' + str(pgd_steps) if pgd_steps else 'no PGD'})")

    def score_batch(self, ctx: EvalContext, images: torch.Tensor, labels: torch.Tensor, attacks: list[Attack],
                    generator: torch.Generator | None) -> dict[Attack, int]:
        """Correct predictions per (attack, level) on one batch of uint8 NHWC images."""
        x, y = ctx.to_float(images), labels.to(ctx.device)
        sign = loss_gradient(ctx.forward, x, y).sign() if ctx.share else None  # one gradient for every FGSM epsilon
        hits = {}
        for attack, level in attacks:
            if attack == "fgsm":
                x_adv = fgsm(ctx.forward, x, y, level / 255, sign)
            else:
                x_adv = pgd(ctx.forward, x, y, level / 255, self.pgd_step / 255, self.pgd_steps, generator)
            with torch.inference_mode():
                hits[attack, level] = int((ctx.forward(x_adv).argmax(1) == y).sum())
        return hits

    @classmethod
    def report(cls, rows: pd.DataFrame, ctx: ReportContext) -> str:
        rows = rows[rows["metric"] == "top1_acc"].copy()
        rows["level"] = rows["level"].astype(float)
        rows["key"] = rows["subset"] + "@" + rows["level"].map(lambda v: f"{v:g}")
        columns = {"clean@0": "Clean"}
        for attack, name in (("fgsm", "FGSM"), ("pgd", "PGD")):
            for level in sorted(rows[rows["subset"] == attack]["level"].unique()):
                columns[f"{attack}@{level:g}"] = f"{name} {level:g}/255"
        parts = [
            "Top-1 accuracy (%) under white-box L∞ attacks on the [0, 1] pixel scale, with the normalisation "
            "inside the attacked function; ε and step sizes in units of 1/255 (8/255 is the CutMix paper's FGSM "
            "setting). FGSM: x + ε·sign(∇ₓ CE), clipped to [0, 1]. PGD: repeated signed-gradient steps, each "
            f"projected onto the ε-ball and [0, 1]. Model in eval mode. Setting: {settings(rows)}. Higher is "
            "better. Mean ± std over seeds.\n",
            mean_std_table(rows, columns, ctx.methods, column="key") + "\n"]
        note = sampling_note(rows)
        if note:
            parts.append(f"Accuracies: {note}\n")
        curve = rows[rows["subset"].isin(["clean", "fgsm"])].assign(subset="fgsm")
        figure, axes = new_figure(1, 1)
        ax = axes[0][0]
        plot_curves(ax, curve, "top1_acc", "fgsm", ctx.methods)
        ax.set(title="FGSM (ε = 0: clean)", xlabel="ε (units of 1/255)", ylabel="top-1 accuracy (%)")
        ax.legend()
        parts.append(save_figure(figure, ctx.figures_dir, "adversarial"))
        return "\n".join(parts)
