"""How per-run values become the report's numbers, in one place: mean, sample std and count over runs (seeds)
for every table cell, bar and curve; the per-run mean of several rows with its combined per-image interval;
and differences with 95% intervals: paired over seeds (same seed = same data order and initialisation), between
independent runs (Welch), against a published number (one-sample t), or from the per-image intervals when there
is one seed. The tables, the summary, the figures and `compare` call these functions, so changing how results
are aggregated is changing this file.

Rows are those of results.csv (columns run, method, seed, value and optionally n, ci_low, ci_high)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

RUN = ["run", "method", "seed"]


def spread(values: pd.Series) -> pd.Series:
    """mean, std (sample, ddof 1; NaN for one value) and count of one cell's per-run values."""
    return pd.Series({"mean": values.mean(), "std": values.std(ddof=1), "count": len(values)})


def spread_by(rows: pd.DataFrame, keys: str | Sequence[str], column: str = "value", sort: bool = True,
              dropna: bool = True, **extra: Any) -> pd.DataFrame:
    """`spread` of `column` for every group of `keys` (columns mean, std, count, then the named aggregations in
    `extra`, as pandas' `agg` takes them)."""
    return rows.groupby(keys, sort=sort, dropna=dropna).agg(mean=(column, "mean"), std=(column, "std"),
                                                            count=(column, "count"), **extra)


def half_width(rows: pd.DataFrame) -> pd.Series | float:
    """The per-image 95% half-width of each row, (ci_high - ci_low) / 2; NaN where not recorded."""
    if "ci_low" not in rows or "ci_high" not in rows:
        return np.nan
    return (pd.to_numeric(rows["ci_high"], errors="coerce") - pd.to_numeric(rows["ci_low"], errors="coerce")) / 2


def per_run(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """One value per run: the mean of its rows, with the half-width of that mean, sqrt(sum h^2) / k over its k
    rows (NaN unless every row has one), and n, the sum of the rows' n (NaN unless every row has one)."""
    rows = rows.assign(value=pd.to_numeric(rows["value"], errors="coerce"), half=half_width(rows),
                       n=pd.to_numeric(rows["n"], errors="coerce") if "n" in rows else np.nan)
    out = []
    for (run, method, seed), mine in rows.groupby(RUN, sort=False):
        k = len(mine)
        half = math.sqrt((mine["half"] ** 2).sum()) / k if mine["half"].notna().all() else math.nan
        out.append({"run": run, "method": method, "seed": int(seed), "value": mine["value"].mean(), "half": half,
                    "n": mine["n"].sum() if mine["n"].notna().all() else math.nan})
    return out


@dataclass(frozen=True)
class Difference:
    """method - baseline; `low`/`high` NaN when no interval can be given; `test` names how it was made."""

    delta: float
    low: float
    high: float
    test: str  # "paired-t", "one-sample-t", "per-image", "none"
    seeds: int
    p: float = math.nan  # two-sided p-value of "no difference" by the same test; NaN when untested

    @property
    def significant(self) -> bool:
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)


def paired_difference(mine: pd.DataFrame, base: pd.DataFrame) -> Difference:
    """The difference between a method's per-run values and the baseline's (columns seed, value, half, as
    `per_run` gives them), paired by seed: the paired t interval (`scipy.stats.ttest_rel`) with >= 2 seeds,
    else the two per-image half-widths combined as if independent, sqrt(h1^2 + h2^2) (conservative: both are
    scored on the same images), whose p-value is the two-sided normal one of that interval."""
    paired = mine[["seed", "value", "half"]].merge(base[["seed", "value", "half"]], on="seed",
                                                   suffixes=("", "_base")).sort_values("seed")
    if paired.empty:
        return Difference(math.nan, math.nan, math.nan, "none", 0)
    diffs = paired["value"] - paired["value_base"]
    delta = float(diffs.mean())
    if len(paired) >= 2:
        if np.ptp(diffs.to_numpy()) == 0:  # no spread: the t interval degenerates to a point
            return Difference(delta, math.nan, math.nan, "paired-t", len(paired))
        from scipy import stats  # here: `--dry-run` imports the tables, and scipy.stats costs seconds

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            test = stats.ttest_rel(paired["value"], paired["value_base"])
            interval = test.confidence_interval(0.95)
        return Difference(delta, float(interval.low), float(interval.high), "paired-t", len(paired),
                          float(test.pvalue))
    return per_image_difference(delta, paired["half"].iloc[0], paired["half_base"].iloc[0])


def per_image_difference(delta: float, half: float, half_other: float) -> Difference:
    """A difference of two one-seed values with per-image 95% half-widths: the two combined as if independent,
    sqrt(h1^2 + h2^2) (conservative when both are scored on the same images), and the two-sided normal p-value."""
    half = math.sqrt(half ** 2 + half_other ** 2)
    if math.isnan(half):
        return Difference(delta, math.nan, math.nan, "none", 1)
    from scipy import stats

    standard_error = half / stats.norm.ppf(0.975)  # the 95% half-width is 1.96 standard errors
    p = float(2 * stats.norm.sf(abs(delta) / standard_error)) if half > 0 else math.nan
    return Difference(delta, delta - half, delta + half, "per-image", 1, p)


def against_value(runs: pd.DataFrame, value: float) -> Difference:
    """The mean of per-run values (columns value, half, as `per_run` gives them) minus a number taken as exact (a
    published one): the one-sample t interval over runs (`scipy.stats.ttest_1samp`) with >= 2 runs, else the
    run's own per-image half-width."""
    if runs.empty:
        return Difference(math.nan, math.nan, math.nan, "none", 0)
    delta = float(runs["value"].mean() - value)
    if len(runs) == 1:
        return per_image_difference(delta, float(runs["half"].iloc[0]), 0.0)
    if np.ptp(runs["value"].to_numpy()) == 0:
        return Difference(delta, math.nan, math.nan, "one-sample-t", len(runs))
    from scipy import stats

    test = stats.ttest_1samp(runs["value"], value)
    interval = test.confidence_interval(0.95)
    return Difference(delta, float(interval.low) - value, float(interval.high) - value, "one-sample-t", len(runs),
                      float(test.pvalue))


def welch(a: pd.Series, b: pd.Series) -> tuple[float, float, float]:
    """(mean(b) - mean(a), low, high) of independent runs with Welch's 95% t interval
    (`scipy.stats.ttest_ind(equal_var=False)`); NaN bounds below 2 values a side or without spread."""
    delta = float(b.mean() - a.mean())
    if min(len(a), len(b)) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return delta, math.nan, math.nan
    from scipy import stats  # here: `--dry-run` imports the tables, and scipy.stats costs seconds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    return delta, float(interval.low), float(interval.high)
