"""Corruption robustness (Hendrycks & Dietterich, ICLR 2019): top-1 error on every (corruption,
severity) cell of a CIFAR-C style set, from the official files or from a set generated once into the
suite's cache, plus the summaries of `cifar_c.metrics` (the mCE; with the "c-bar" family, the C-bar error of
Mintun et al., NeurIPS 2021). Clean error is measured here too, so the
relative error and the report section do not depend on the `clean` evaluation. From the same logits,
calibration under shift (`calibration`: ECE, NLL, Brier per cell, raw and temperature-scaled)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import intervals
from ..aggregate import spread
from ..checks import check_integer, check_seed
from ..cifar_c.cache import cached_corruptions
from ..cifar_c.files import SEVERITIES, CorruptionDir, open_corruption_dir, open_labels
from ..cifar_c.generate import check_request, corruption_names, default_workers, family_names
from ..cifar_c.metrics import CATEGORIES, summary_rows
from ..corruptions import BENCHMARK, CBAR, CORRUPTIONS
from ..data import Split
from ..errors import BenchError
from . import EVALUATIONS
from .base import EvalContext, Evaluation, Headline, Plan, ReportContext, Row, metric_rows
from .budget import check_max_images, scored_positions
from .calibration import CellStats, cell_rows, fit_temperature, held_out_training_images
from .calibration import report_section as calibration_section
from .calibration import summary_rows as calibration_rows
from .clean import top1_wrong
from .engine import Positions
from .figures import new_figure, save_figure
from .tables import cell_stats, display_name, mean_std_table, sampling_note, save_table

log = logging.getLogger("cutmix_bench")
KEY = "evaluations.corruptions"


def mce_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The summary's corruption row: mCE (all 15 x 5 benchmark cells), else the mean error over the evaluated
    cells."""
    mce = rows[rows["metric"] == "mce"]
    return mce if len(mce) else rows[rows["metric"] == "mean_err"]


def cbar_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The summary's C-bar row: the C-bar error (all 10 x 5 cells), else the mean over the C-bar cells evaluated."""
    cbar = rows[rows["metric"] == "cbar_err"]
    return cbar if len(cbar) else rows[rows["metric"] == "cbar_mean_err"]


@EVALUATIONS.register("corruptions")
class Corruptions(Evaluation):
    """`root`: a CIFAR-10-C / CIFAR-100-C directory; when absent or missing, a set generated with
    `params` ("cifar" or "imagenet" corruption parameters) and `seed` into the suite cache.
    `families`: the corruption families evaluated, "c" (CIFAR-C, 19: the mCE's 15 and 4 extras; the default)
    and / or "c-bar" (CIFAR-10-C-bar, 10, CIFAR parameters only); `corruptions`: a list of names instead.
    `max_images`: test images scored (seeded subset; default all on a GPU, the CPU budget of
    `evaluations.budget` on CPU, where the 95 x 10,000 images of a full set take an hour per run)."""

    title = "Corruption robustness (CIFAR-C)"
    units = {"clean_err": "percent", "top1_err": "percent", "mce": "percent", "mean_err": "percent",
             "relative_mce": "percentage points", "relative_mean_err": "percentage points",
             "category_err": "percent", "severity_err": "percent", "extra_err": "percent", "corruption_err": "percent",
             "cbar_err": "percent", "cbar_mean_err": "percent", "relative_cbar_err": "percentage points",
             "relative_cbar_mean_err": "percentage points",
             **{f"{m}{s}": u for s in ("", "_ts") for m, u in (("ece", "percent"), ("nll", "nats"),
                                                                ("brier", "squared probability"))},
             **{f"mean_{m}{s}": u for s in ("", "_ts") for m, u in (("ece", "percent"), ("nll", "nats"),
                                                                     ("brier", "squared probability"))},
             **{f"reliability_{m}{s}": "percent" for s in ("", "_ts") for m in ("acc", "conf", "share")},
             "temperature": "ratio"}
    headlines = (Headline("mce", "Corruption mCE (%)", True, mce_rows),
                 Headline("cbar", "C-bar error (%)", True, cbar_rows, optional=True),
                 Headline("ece_shift", "ECE under corruption (%)", True, metric_rows("mean_ece")))

    def __init__(self, root: str | None = None, params: str = "cifar", seed: int = 0,
                 corruptions: list[str] | None = None, families: Sequence[str] | None = None,
                 severities: Sequence[int] = SEVERITIES,
                 workers: int | None = None, max_images: int | None = None, calibration: bool = True,
                 temperature_images: int = 5000, ece_bins: int = 15) -> None:
        if not isinstance(calibration, bool):
            raise ValueError(f"calibration: expected true or false, got {calibration!r}")
        if not isinstance(temperature_images, int) or temperature_images < 1:
            raise ValueError(f"temperature_images: expected an integer >= 1, got {temperature_images!r}")
        if not isinstance(ece_bins, int) or ece_bins < 1:
            raise ValueError(f"ece_bins: expected an integer >= 1, got {ece_bins!r}")
        self.calibration, self.temperature_images, self.ece_bins = calibration, temperature_images, ece_bins
        if corruptions is not None and families is not None:
            raise BenchError(f"{KEY}: corruptions and families both given; expected one (names, or whole families)")
        names = family_names(("c",) if families is None else families, f"{KEY}.") if corruptions is None \
            else corruptions
        self.max_images = check_max_images(max_images)
        self.corruptions, self.severities = check_request(names, severities, params, f"{KEY}.")
        if workers is not None:
            check_integer("workers", workers, 1)
        if root is not None and not isinstance(root, str):
            raise ValueError(f"root must be a folder path, got {root!r}")
        self.root = Path(root) if root else None
        self.params, self.seed = params, check_seed("seed", seed)
        self.workers = workers or default_workers()

    def run(self, ctx: EvalContext) -> list[Row]:
        positions = scored_positions(len(ctx.test), self.max_images, ctx.device.type)
        test = ctx.test if positions is None else Split(ctx.test.x[positions], ctx.test.y[positions])
        source, description = self.open(ctx, test, positions)
        description += f", {len(test)} test images"
        labels = test.y
        clean_wrong = top1_wrong(ctx.clean_logits(positions), labels)
        keys = [(c, s) for c in self.corruptions for s in self.severities]
        temperature, held_out = self.temperature(ctx)
        wrong, raw, scaled = [], [], []
        for c, s in keys:
            logits = ctx.logits(source.images(c, s))
            wrong.append(top1_wrong(logits, labels))
            if self.calibration:
                raw.append((c, s, CellStats(logits, labels, self.ece_bins)))
                if temperature is not None:
                    scaled.append((c, s, CellStats(logits / temperature, labels, self.ece_bins)))
        n = len(test)
        clean = 100 * float(clean_wrong.float().mean())
        cells = [{"metric": "top1_err", "subset": c, "level": s, "value": 100 * float(w.float().mean()),
                  **intervals.binomial(int(w.sum()), n)} for (c, s), w in zip(keys, wrong)]
        # Every cell scores the same images: resample them jointly, so that means over cells get their error.
        replicates = intervals.mean_replicates(100 * torch.stack([clean_wrong, *wrong], 1).double().numpy())
        rows = [{"metric": "clean_err", "value": clean, **intervals.binomial(int(clean_wrong.sum()), n)}, *cells,
                *summary_rows(pd.DataFrame(cells), clean, replicates[:, 1:], replicates[:, 0], n)]
        if self.calibration:
            rows += self.calibration_rows(ctx.clean_logits(positions), labels, raw, scaled, temperature, held_out)
        return [{**row, "source": description} for row in rows]

    def temperature(self, ctx: EvalContext) -> tuple[float | None, int]:
        """The model's temperature fitted on held-out training images (`calibration.held_out_training_images`),
        and their number; (None, 0) without calibration or without held-out images."""
        if not self.calibration:
            return None, 0
        held_out = held_out_training_images(ctx.dataset.load("train"), ctx.train_draw, self.temperature_images)
        if held_out is None:
            log.warning("%s: no training image was held out from training (data.train_subset unset); "
                        "calibration is reported without temperature scaling", KEY)
            return None, 0
        return fit_temperature(ctx.logits(held_out.x), held_out.y), len(held_out)

    def calibration_rows(self, clean_logits: torch.Tensor, labels: torch.Tensor, raw: list, scaled: list,
                         temperature: float | None, held_out: int) -> list[Row]:
        """Clean and per-cell ECE / NLL / Brier, raw and (suffix `_ts`) temperature-scaled; their means over the
        benchmark cells with the pooled reliability diagram; the temperature."""
        rows = cell_rows([("clean", 0, CellStats(clean_logits, labels, self.ece_bins))], "") + cell_rows(raw, "")
        rows += calibration_rows([cell for cell in raw if cell[0] in BENCHMARK], "")
        if temperature is not None:
            rows += [{"metric": "temperature", "value": temperature, "n": held_out}]
            rows += cell_rows([("clean", 0, CellStats(clean_logits / temperature, labels, self.ece_bins))], "_ts")
            rows += cell_rows(scaled, "_ts")
            rows += calibration_rows([cell for cell in scaled if cell[0] in BENCHMARK], "_ts")
        return rows

    def clean_positions(self, test: Split, device_type: str) -> Positions:
        return scored_positions(len(test), self.max_images, device_type)

    def plan(self, test_size: int, side: int, device_type: str) -> Plan:
        n = len(positions) if (positions := scored_positions(test_size, self.max_images, device_type)) is not None \
            else test_size
        cells = len(self.corruptions) * len(self.severities)
        source = "from files" if self.root is not None and self.root.is_dir() else "generated once into the cache"
        return Plan(n * (1 + cells), n * (1 + cells), f"{n:,} images x ({len(self.corruptions)} corruptions x "
                    f"{len(self.severities)} severities + clean), {source}")

    def open(self, ctx: EvalContext, test: Split, positions: np.ndarray | None) -> tuple[CorruptionDir, str]:
        """The corrupted images of `test` (the run's test split at `positions`, None = all) and a one-line
        description of where from."""
        labels, shape = test.y.numpy(), tuple(test.x.shape[1:3])
        if self.root is not None and self.root.is_dir():
            index = subset_rows(self.root, ctx)
            if positions is not None:
                index = positions if index is None else index[positions]
            return (open_corruption_dir(self.root, self.corruptions, self.severities, labels, shape, index),
                    f"files in {self.root}")
        if self.root is not None:
            log.warning("%s.root: %s does not exist; generating the corruptions instead", KEY, self.root)
        dataset = type(ctx.dataset).__name__.lower()
        root = cached_corruptions(ctx.cache_dir, dataset, test.x.numpy(), labels, self.corruptions, self.params,
                                  self.seed, self.workers)
        return (open_corruption_dir(root, self.corruptions, self.severities, labels, shape),
                f"generated, {self.params} parameters, seed {self.seed}")

    @classmethod
    def report(cls, rows: pd.DataFrame, ctx: ReportContext) -> str:
        rows = rows.assign(key=[cell_key(r) for r in rows.itertuples()])
        keys = set(rows["key"])
        mean_key, mean_label, mean_text = mean_column(rows)
        cbar_key, cbar_label, cbar_text = cbar_column(rows)
        names = [c for c in corruption_names() if f"corruption_err:{c}" in keys]
        # A plug-in's corruption whose module this process did not load keeps its column, under its own name.
        listed = [k.split(":", 1)[1] for k in dict.fromkeys(rows["key"]) if k.startswith("corruption_err:")]
        unloaded = [c for c in listed if c not in CORRUPTIONS]
        main = {"clean_err": "Clean err", **({mean_key: mean_label} if mean_key else {}),
                **({cbar_key: cbar_label} if cbar_key else {}),
                **{f"corruption_err:{c}": CORRUPTIONS[c].short for c in names},
                **{f"corruption_err:{c}": c for c in unloaded}}
        summary = {"clean_err": "Clean err", mean_key: mean_label, f"relative_{mean_key}": f"Rel. {mean_label}",
                   **{f"category_err:{c}": c.capitalize() for c in CATEGORIES}, "extra_err": "Extras",
                   **({cbar_key: cbar_label, f"relative_{cbar_key}": f"Rel. {cbar_label}"} if cbar_key else {})}
        summary = {k: v for k, v in summary.items() if k in keys}
        levels = sorted(int(v) for v in rows.loc[rows["metric"] == "severity_err", "level"].dropna().unique())
        sources = "; ".join(sorted(rows["source"].dropna().astype(str).unique())) if "source" in rows else "unknown"
        parts = [
            f"Top-1 error (%) on corrupted test images ({sources}). {mean_text} Corruption columns average their "
            "severities; Rel. = corruption error minus clean error; the 4 extra corruptions (speckle noise, Gaussian "
            f"blur, spatter, saturate) are reported apart, never in the mean.{cbar_text} Mean ± std over seeds.",
            "Summary by category:", mean_std_table(rows, summary, ctx.methods, column="key", transpose=True,
                                                   first="Error (%)"),
            "Per corruption (mean over its severities):",
            mean_std_table(rows, main, ctx.methods, column="key", transpose=True, first="Corruption"),
        ]
        note = sampling_note(rows[rows["metric"] == "top1_err"])
        parts.append(f"{'Cells: ' + note + ' ' if note else ''}Every (corruption, severity) cell, mean / std / seeds: "
                     f"{save_table(ctx.out_dir, 'corruptions', cell_stats(rows))}.")
        if levels:
            severity = {"clean_err": "Clean", **{f"severity_err:{s}": f"Severity {s}" for s in levels}}
            parts += ["Error by severity (mean over the evaluated benchmark corruptions):",
                      mean_std_table(rows, severity, ctx.methods, column="key"), severity_figure(rows, ctx, levels)]
        calibration = calibration_section(rows, ctx.methods, ctx.figures_dir)
        return "\n\n".join(parts + ([calibration] if calibration else []))


def mean_column(rows: pd.DataFrame) -> tuple[str | None, str, str]:
    """(metric, column label, sentence defining it) of the mean over benchmark cells in `rows`."""
    if (rows["metric"] == "mce").any():
        return "mce", "mCE", (f"mCE = plain mean error over the {len(BENCHMARK)} benchmark corruptions x 5 severities "
                              "(AugMix / RobustBench convention for CIFAR; no AlexNet normalisation).")
    if (rows["metric"] == "mean_err").any():
        cells = int(rows.loc[rows["metric"] == "mean_err", "cells"].max())
        return "mean_err", f"Mean err ({cells} cells)", (f"Mean err = plain mean error over the {cells} evaluated "
                                                         "benchmark (corruption, severity) cells, not the 15 x 5 mCE.")
    return None, "", "No benchmark corruption was evaluated."


def cbar_column(rows: pd.DataFrame) -> tuple[str | None, str, str]:
    """(metric, column label, sentence defining it) of the C-bar mean in `rows`; (None, "", "") without C-bar."""
    if (rows["metric"] == "cbar_err").any():
        return "cbar_err", "C-bar", (f" C-bar = plain mean error over the {len(CBAR)} CIFAR-10-C-bar corruptions x 5 "
                                     "severities (Mintun et al. 2021; no AlexNet normalisation exists for C-bar), "
                                     "never in the mCE.")
    if (rows["metric"] == "cbar_mean_err").any():
        cells = int(rows.loc[rows["metric"] == "cbar_mean_err", "cells"].max())
        return "cbar_mean_err", f"C-bar mean ({cells} cells)", (f" C-bar mean = plain mean error over the {cells} "
                                                               "evaluated C-bar cells, not the 10 x 5 C-bar error.")
    return None, "", ""


def cell_key(row: object) -> str:
    """`metric[:subset][:level]`, the column key used by the report tables."""
    key = str(row.metric)
    for extra in ("subset", "level"):
        value = getattr(row, extra, None)
        if value is not None and not pd.isna(value):
            key += f":{int(value) if extra == 'level' else value}"
    return key


def subset_rows(root: Path, ctx: EvalContext) -> np.ndarray | None:
    """Rows of each severity block that form the run's test split: None when the directory holds
    exactly the split; else the split is `data.test_subset` of the full test set (`ctx.test_draw`),
    drawn again with the runner's own `Split.subset`."""
    size, n = open_labels(root)[2], len(ctx.test)
    if size == n:
        return None
    drawn, seed = ctx.test_draw or (None, 0)
    if size < n or drawn != n:
        raise BenchError(f"{KEY}.root: {root} holds {size} images per severity but the run's test split has {n}; "
                         f"expected the full test set the split was drawn from")
    positions = torch.arange(size)
    return Split(positions, positions).subset(n, seed).y.numpy()


def severity_figure(rows: pd.DataFrame, ctx: ReportContext, levels: list[int]) -> str:
    """Error vs severity per method (0 = clean), mean over seeds with the std as error bars; the link."""
    figure, axes = new_figure(1, 1, width=5, height=3.5)
    ax = axes[0][0]
    for method in ctx.methods:
        mine = rows[rows["method"] == method]
        keys = ["clean_err"] + [f"severity_err:{s}" for s in levels]
        stats = [spread(mine.loc[mine["key"] == k, "value"]) for k in keys]
        ax.errorbar([0, *levels], [s["mean"] for s in stats], yerr=[0 if pd.isna(s["std"]) else s["std"]
                    for s in stats], marker="o", capsize=3, label=display_name(method))
    ax.set_xticks([0, *levels], ["clean", *map(str, levels)])
    ax.set(xlabel="severity", ylabel="top-1 error (%)", title="Mean over the evaluated benchmark corruptions")
    ax.legend()
    return save_figure(figure, ctx.figures_dir, "corruption_severity", "error vs severity")
