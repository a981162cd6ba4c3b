"""Calibration under distribution shift (part of the corruptions evaluation): ECE, NLL and Brier score of
every (corruption, severity) cell, raw and after temperature scaling, their means over the cells, and a
reliability diagram pooled over the cells, with bootstrap intervals over images.

Temperature scaling (Guo et al., ICML 2017): one temperature T > 0 per model, minimising the NLL of
logits / T on training images held out from training (the images of the dataset's training set outside the
run's `data.train_subset` draw; never test images); T does not change the top-1 prediction. A run trained on
the whole training set has no held-out image, and gets the raw metrics only.

Conventions: ECE as the clean evaluation's (`clean.calibration_bins`: max softmax, `bins` equal-width bins,
percent); NLL in nats; Brier = mean over images of sum over classes (p_k - 1[k = y])^2, in [0, 2] (Brier 1950;
sklearn's multiclass `brier_score_loss`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import corruptions, intervals
from ..data import Split
from .clean import calibration_bins
from .figures import new_figure, save_figure
from .tables import display_name, mean_std_table

METRICS = ("ece", "nll", "brier")
LOG_T_RANGE = (-4.0, 4.0)  # T in [0.018, 55]


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T minimising the mean NLL of logits / T (a bounded 1-d search on log T; the NLL is convex in 1/T)."""
    from scipy.optimize import minimize_scalar  # here: scipy.optimize takes a second to import (every suite check)

    logits64, labels = logits.double(), labels.long()

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(logits64 / np.exp(log_t), labels))

    found = minimize_scalar(nll, bounds=LOG_T_RANGE, method="bounded", options={"xatol": 1e-7})
    return float(np.exp(found.x))


def held_out_training_images(full_train: Split, draw: tuple[int, int] | None, limit: int) -> Split | None:
    """Up to `limit` images of the dataset's training set that the run did not train on: the rest of the seeded
    permutation that `Split.subset(size, seed)` drew the training split from; None when it trained on all."""
    if draw is None or draw[0] >= len(full_train):
        return None
    size, seed = draw
    rest = np.random.default_rng(seed).permutation(len(full_train))[size:size + limit]
    index = torch.as_tensor(rest)
    return Split(full_train.x[index], full_train.y[index])


class CellStats:
    """Per-image calibration terms of one cell: confidence, correctness, bin, NLL and Brier (float64)."""

    def __init__(self, logits: torch.Tensor, labels: torch.Tensor, bins: int) -> None:
        confidence, correct, index = calibration_bins(logits, labels, bins)
        self.confidence, self.correct, self.index = confidence.double(), correct.double(), index
        self.bins = bins
        logits = logits.double()
        self.nll = F.cross_entropy(logits, labels, reduction="none")
        probabilities = logits.softmax(1)
        self.brier = (probabilities - F.one_hot(labels, logits.shape[1]).double()).pow(2).sum(1)

    def gaps(self) -> torch.Tensor:
        """[n, bins]: (correct - confidence) in the image's bin, 0 elsewhere; ECE = sum_b |column sum| / n."""
        return F.one_hot(self.index, self.bins).double() * (self.correct - self.confidence)[:, None]

    def values(self) -> dict[str, float]:
        n = len(self.nll)
        return {"ece": 100 * float(self.gaps().sum(0).abs().sum() / n), "nll": float(self.nll.mean()),
                "brier": float(self.brier.mean())}


def cell_rows(cells: list[tuple[str, int, CellStats]], suffix: str, seed: int = intervals.SEED) -> list[dict]:
    """`ece`, `nll`, `brier` (+ `suffix`) of every cell, each with its percentile bootstrap interval over the images
    (the same resamples for every cell, as for the means)."""
    rows = []
    for c, s, stats in cells:
        n, gaps = len(stats.nll), stats.gaps()
        ece, nll, brier = [], [], []
        for counts in intervals.resample_counts(n, seed):
            weights = torch.from_numpy(counts).double()
            ece.append(100 * (weights @ gaps).abs().sum(1) / n)
            nll.append(weights @ stats.nll / n)
            brier.append(weights @ stats.brier / n)
        replicates = {"ece": torch.cat(ece), "nll": torch.cat(nll), "brier": torch.cat(brier)}
        rows += [{"metric": f"{metric}{suffix}", "subset": c, "level": s, "value": value,
                  **intervals.percentile(replicates[metric].numpy(), n)} for metric, value in stats.values().items()]
    return rows


def summary_rows(cells: list[tuple[str, int, CellStats]], suffix: str, seed: int = intervals.SEED) -> list[dict]:
    """`mean_ece`, `mean_nll`, `mean_brier` (+ `suffix`): the plain mean over the cells (all scoring the same
    images), with a percentile bootstrap interval over images (one resample shared by all cells), and the
    reliability diagram pooled over the cells: per bin, `reliability_acc` (accuracy, %, with its interval),
    `reliability_conf` (mean confidence, %) and `reliability_share` (share of cell-images in the bin, %), each
    with its interval."""
    if not cells:
        return []
    n, bins, count = len(cells[0][2].nll), cells[0][2].bins, len(cells)
    gaps = [stats.gaps() for _, _, stats in cells]
    mean_nll = torch.stack([s.nll for _, _, s in cells]).mean(0)
    mean_brier = torch.stack([s.brier for _, _, s in cells]).mean(0)
    members = sum(F.one_hot(s.index, bins).double() for _, _, s in cells)  # [n, bins]: cells putting the image in b
    hits = sum(F.one_hot(s.index, bins).double() * s.correct[:, None] for _, _, s in cells)
    confidence = sum(F.one_hot(s.index, bins).double() * s.confidence[:, None] for _, _, s in cells)
    ece, nll, brier, accuracy, conf, share = [], [], [], [], [], []
    for counts in intervals.resample_counts(n, seed):
        weights = torch.from_numpy(counts).double()
        ece.append(100 * torch.stack([(weights @ g).abs().sum(1) / n for g in gaps]).mean(0))
        nll.append(weights @ mean_nll / n)
        brier.append(weights @ mean_brier / n)
        accuracy.append(100 * (weights @ hits) / (weights @ members))  # NaN for a bin a resample leaves empty
        conf.append(100 * (weights @ confidence) / (weights @ members))
        share.append(100 * (weights @ members) / (n * count))
    replicates = {"ece": torch.cat(ece), "nll": torch.cat(nll), "brier": torch.cat(brier)}
    point = {"ece": 100 * float(np.mean([g.sum(0).abs().sum() / n for g in gaps])),
             "nll": float(mean_nll.mean()), "brier": float(mean_brier.mean())}
    rows = [{"metric": f"mean_{m}{suffix}", "value": point[m], "cells": count,
             **intervals.percentile(replicates[m].numpy(), n)} for m in METRICS]
    bin_replicates = {"acc": torch.cat(accuracy).numpy(), "conf": torch.cat(conf).numpy(),
                      "share": torch.cat(share).numpy()}
    total, in_bin = members.sum(0), members.sum(0) > 0
    for b in range(bins):
        if not in_bin[b]:
            continue
        edge = (b + 1) / bins
        point = {"acc": hits[:, b].sum() / total[b], "conf": confidence[:, b].sum() / total[b],
                 "share": total[b] / (n * count)}
        for name, value in point.items():
            kept = bin_replicates[name][:, b][~np.isnan(bin_replicates[name][:, b])]
            rows.append({"metric": f"reliability_{name}{suffix}", "level": edge, "cells": count,
                         "value": 100 * float(value), **intervals.percentile(kept, n)})
    return rows


# --- report -------------------------------------------------------------------------------------------------


def report_section(rows: pd.DataFrame, methods: list[str], figures_dir: Path) -> str:
    """Markdown for the calibration rows of the corruptions evaluation ("" when there are none)."""
    if not (rows["metric"] == "mean_ece").any():
        return ""
    rows = rows.assign(value=pd.to_numeric(rows["value"], errors="coerce"))
    clean = rows[rows["subset"] == "clean"]
    keyed = pd.concat([clean.assign(key="clean_" + clean["metric"]),
                       rows[rows["metric"].str.startswith("mean_") | (rows["metric"] == "temperature")]
                       .assign(key=lambda r: r["metric"])])
    scaled = (rows["metric"] == "mean_ece_ts").any()
    cells = int(pd.to_numeric(rows.loc[rows["metric"] == "mean_ece", "cells"], errors="coerce").max())
    columns = {"clean_ece": "Clean ECE (%)", "mean_ece": "ECE under corruption (%)", "clean_nll": "Clean NLL",
               "mean_nll": "NLL under corruption", "mean_brier": "Brier under corruption"}
    if scaled:
        columns.update({"temperature": "Temperature T", "clean_ece_ts": "Clean ECE, T-scaled (%)",
                        "mean_ece_ts": "ECE under corruption, T-scaled (%)", "mean_nll_ts": "NLL, T-scaled",
                        "mean_brier_ts": "Brier, T-scaled"})
    held = pd.to_numeric(rows.loc[rows["metric"] == "temperature", "n"], errors="coerce").max() if scaled else 0
    how = (f"T fitted per model by minimising the NLL of logits / T on {int(held):,} training images held out "
           "from training (outside the run's `data.train_subset` draw; never test images); T does not change "
           "any prediction" if scaled else
           "no temperature scaling: the runs trained on the whole training set, so no training image was held "
           "out to fit a temperature on (set `data.train_subset` to hold images out)")
    parts = [f"### Calibration under corruption\n\nECE (max-softmax confidence, 15 equal-width bins, %), NLL "
             f"(nats) and Brier score (sum over classes of squared probability error, 0–2) on the corrupted "
             f"images; \"under corruption\" = plain mean over the {cells} benchmark (corruption, severity) cells "
             f"(extras excluded, as the mCE). Raw and after temperature scaling ({how}). Mean ± std over seeds; "
             f"per-image bootstrap intervals of every mean in results.csv.",
             mean_std_table(keyed, columns, methods, column="key", transpose=True, first="Calibration")]
    benchmark = rows[rows["metric"].isin(["ece", "ece_ts"]) & (rows["subset"] != "clean")
                     & rows["subset"].isin(corruptions.BENCHMARK)]
    if len(benchmark):
        per_run = benchmark.groupby(["run", "method", "metric", "level"], as_index=False)["value"].mean()
        per_run["key"] = per_run["metric"] + ":" + per_run["level"].astype(float).map(lambda s: f"{s:g}")
        levels = sorted(per_run["level"].astype(float).unique())
        by_level = {f"{m}:{s:g}": f"{'T-scaled, ' if m == 'ece_ts' else ''}severity {s:g}"
                    for m in dict.fromkeys(per_run["metric"]) for s in levels}
        parts += ["ECE (%) by severity, mean over the evaluated benchmark corruptions:",
                  mean_std_table(per_run, by_level, methods, column="key", transpose=True, first="ECE (%)")]
    parts.append(reliability_figure(rows, methods, figures_dir, scaled))
    return "\n\n".join(parts)


def reliability_figure(rows: pd.DataFrame, methods: list[str], figures_dir: Path, scaled: bool) -> str:
    """Accuracy against confidence per bin, pooled over the benchmark cells, of each method's lowest seed,
    with its 95% bootstrap band over images; raw and (when fitted) temperature-scaled panels."""
    suffixes = ["", "_ts"] if scaled else [""]
    figure, axes = new_figure(1, len(suffixes), width=4.2, height=3.8)
    for ax, suffix in zip(axes[0], suffixes):
        for method in methods:
            mine = rows[rows["method"] == method]
            if mine.empty:
                continue
            run = mine.sort_values("seed")["run"].iloc[0]
            mine = mine[mine["run"] == run]
            acc = mine[mine["metric"] == f"reliability_acc{suffix}"].sort_values("level")
            conf = mine[mine["metric"] == f"reliability_conf{suffix}"].set_index("level")["value"]
            x = conf.reindex(acc["level"]).to_numpy(dtype=float)
            line, = ax.plot(x, acc["value"], marker="o", label=display_name(method))
            ax.fill_between(x, pd.to_numeric(acc["ci_low"]), pd.to_numeric(acc["ci_high"]), alpha=0.2,
                            color=line.get_color(), lw=0)
        ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls=":")
        ax.set(xlabel="confidence (%, mean in bin)", ylabel="accuracy (%)", xlim=(0, 100), ylim=(0, 100),
               title="Under corruption" + (", temperature-scaled" if suffix else ", raw"))
        ax.legend(loc="upper left")
    link = save_figure(figure, figures_dir, "reliability_corruptions", "reliability under corruption")
    return ("Reliability under corruption, pooled over the benchmark cells (lowest seed of each method; band: 95% "
            f"bootstrap interval over test images; dotted: perfect calibration):\n\n{link}")
