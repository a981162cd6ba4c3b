"""Corruption-robustness summaries from per-cell errors (corruption x severity).

Conventions (AugMix, Hendrycks et al. 2020; RobustBench): on CIFAR the mean corruption error `mce`
is the plain mean of the top-1 error over the 15 benchmark corruptions x 5 severities (no AlexNet
normalisation); the 4 extra corruptions are reported apart (`extra_err`); `relative_mce` is
mce minus the clean error. When a suite evaluates only part of the 75 benchmark cells, the same
plain mean is named `mean_err` (and `relative_mean_err`) so it is never mistaken for the mCE.
The C-bar family (Mintun et al. 2021) is summarised apart, never in the mCE: `cbar_err` is the plain mean
top-1 error over its 10 corruptions x 5 severities (as PixMix / IPMix report CIFAR-C-bar; no AlexNet
normalisation exists for C-bar), `cbar_mean_err` the same mean over the C-bar cells evaluated when not all 50
are, each with its `relative_` row (minus the clean error).
Every summary row carries `cells`, the number of (corruption, severity) cells averaged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import corruptions, intervals
from ..corruptions.registry import CATEGORIES


def summary_rows(cells: pd.DataFrame, clean_err: float, replicates: np.ndarray | None = None,
                 clean_replicates: np.ndarray | None = None, n: int | None = None) -> list[dict[str, Any]]:
    """`cells`: one row per evaluated cell with columns subset (corruption), level (severity),
    value (top-1 error, %). Returns mce / mean_err, relative, per category, extras, C-bar, per
    corruption (mean over its severities) and per severity (mean over benchmark corruptions).

    With bootstrap `replicates` of the cell errors ([resamples, len(cells)], columns in the order of
    `cells`' rows, the `n` test images resampled jointly across cells) and of the clean error, each row also
    gets n / ci_low / ci_high: the percentile interval of the same mean over each resample."""
    BENCHMARK, CATEGORY, EXTRA = corruptions.BENCHMARK, corruptions.CATEGORY, corruptions.EXTRA  # plug-ins included
    cells = cells.reset_index(drop=True)

    def summary(metric: str, part: pd.DataFrame, relative: bool = False, **keys: Any) -> dict[str, Any]:
        value = float(part["value"].mean()) - (clean_err if relative else 0.0)
        row = {"metric": metric, **keys, "value": value, "cells": len(part)}
        if replicates is not None and n is not None:
            means = replicates[:, part.index.to_numpy()].mean(1)
            row.update(intervals.percentile(means - clean_replicates if relative else means, n))
        return row

    rows: list[dict[str, Any]] = []
    bench = cells[cells["subset"].isin(BENCHMARK)]
    if len(bench):
        complete = len(bench) == len(BENCHMARK) * 5
        name = "mce" if complete else "mean_err"
        rows.append(summary(name, bench))
        rows.append(summary(f"relative_{name}", bench, relative=True))
        for category in CATEGORIES:
            part = bench[bench["subset"].map(CATEGORY) == category]
            if len(part):
                rows.append(summary("category_err", part, subset=category))
        for level, part in bench.groupby("level"):
            rows.append(summary("severity_err", part, level=int(level)))
    extra = cells[cells["subset"].isin(EXTRA)]
    if len(extra):
        rows.append(summary("extra_err", extra))
    cbar = cells[cells["subset"].isin(corruptions.CBAR)]
    if len(cbar):
        name = "cbar_err" if len(cbar) == len(corruptions.CBAR) * 5 else "cbar_mean_err"
        rows.append(summary(name, cbar))
        rows.append(summary(f"relative_{name}", cbar, relative=True))
    for corruption, part in cells.groupby("subset", sort=False):
        rows.append(summary("corruption_err", part, subset=corruption))
    return rows
