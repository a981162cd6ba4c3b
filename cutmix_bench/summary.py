"""The report's first screen: one value per run for each headline metric, each method's difference
to the baseline with a 95% interval, and the difference of every pair of methods with a Holm-adjusted
p-value (`pairwise`).

With >= 2 seeds shared with the baseline, the interval is the paired t interval over seeds
(`scipy.stats.ttest_rel`: the same seed gives the same data order and initialisation, so seeds pair).
With one seed it is the per-image interval of results.csv's `ci_low` / `ci_high`, the two methods'
half-widths combined as if independent (sqrt of the sum of squares; conservative, as both are scored
on the same images); its p-value is the two-sided normal one of that interval."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    evaluation: str
    lower_is_better: bool
    select: Callable[[pd.DataFrame], pd.DataFrame]  # the evaluation's rows -> the rows averaged per run

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


def _metric(metric: str, **equal: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def select(rows: pd.DataFrame) -> pd.DataFrame:
        keep = rows["metric"] == metric
        for column, value in equal.items():
            if column not in rows:
                return rows.iloc[0:0]
            keep &= rows[column].astype(str) == str(value) if column != "level" else \
                pd.to_numeric(rows[column], errors="coerce") == value
        return rows[keep]

    return select


def _corruption_mean(rows: pd.DataFrame) -> pd.DataFrame:
    """mCE (all 15 x 5 benchmark cells), else the mean error over the evaluated cells."""
    mce = rows[rows["metric"] == "mce"]
    return mce if len(mce) else rows[rows["metric"] == "mean_err"]


def _ood_auroc(group: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """AUROC of the MSP detector (else the first score) over the group's sets: the evaluation's own
    `mean_auroc` row (one per run, with its bootstrap interval) when recorded, else the per-set rows,
    averaged per run."""

    def select(rows: pd.DataFrame) -> pd.DataFrame:
        if "group" not in rows or "score" not in rows:
            return rows.iloc[0:0]
        means = rows[(rows["metric"] == "mean_auroc") & (rows["group"] == group)]
        scored = means if len(means) else rows[(rows["metric"] == "auroc") & (rows["group"] == group)]
        scores = list(dict.fromkeys(scored["score"]))
        return scored[scored["score"] == ("msp" if "msp" in scores else scores[0])] if scores else scored

    return select


HEADLINES = [
    Headline("clean_err", "Clean top-1 error (%)", "clean", True, _metric("top1_err")),
    Headline("ece", "ECE (%)", "clean", True, _metric("ece")),
    Headline("mce", "Corruption mCE (%)", "corruptions", True, _corruption_mean),
    Headline("ece_shift", "ECE under corruption (%)", "corruptions", True, _metric("mean_ece")),
    Headline("auroc_near", "OOD AUROC near (%)", "ood", False, _ood_auroc("near")),
    Headline("auroc_far", "OOD AUROC far (%)", "ood", False, _ood_auroc("far")),
    Headline("occlusion_auc", "Occlusion AUC err, centre (%)", "occlusion", True, _metric("auc_err", subset="centre")),
    Headline("fgsm8", "FGSM 8/255 accuracy (%)", "adversarial", False,
             _metric("top1_acc", subset="fgsm", level=8.0)),
]


def headline_values(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (headline, run): columns headline, run, method, seed, value, half (the per-image 95%
    half-width, NaN when not recorded) and n. A mean over k rows (OOD sets) gets sqrt(sum h^2) / k."""
    out = []
    for headline in HEADLINES:
        rows = results[results["evaluation"] == headline.evaluation]
        if rows.empty:
            continue
        rows = headline.select(rows).copy()
        if rows.empty:
            continue
        rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
        low = pd.to_numeric(rows["ci_low"], errors="coerce") if "ci_low" in rows else np.nan
        high = pd.to_numeric(rows["ci_high"], errors="coerce") if "ci_high" in rows else np.nan
        rows["half"] = (high - low) / 2
        rows["n"] = pd.to_numeric(rows["n"], errors="coerce") if "n" in rows else np.nan
        for (run, method, seed), mine in rows.groupby(["run", "method", "seed"], sort=False):
            k = len(mine)
            half = math.sqrt((mine["half"] ** 2).sum()) / k if mine["half"].notna().all() else math.nan
            out.append({"headline": headline.key, "run": run, "method": method, "seed": int(seed),
                        "value": mine["value"].mean(), "half": half,
                        "n": mine["n"].sum() if mine["n"].notna().all() else math.nan})
    return pd.DataFrame(out, columns=["headline", "run", "method", "seed", "value", "half", "n"])


@dataclass(frozen=True)
class Difference:
    """method - baseline; `low`/`high` NaN when no interval can be given; `test` names how it was made."""

    delta: float
    low: float
    high: float
    test: str  # "paired-t", "per-image", "none"
    seeds: int
    p: float = math.nan  # two-sided p-value of "no difference" by the same test; NaN when untested

    @property
    def significant(self) -> bool:
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)


def difference(mine: pd.DataFrame, base: pd.DataFrame) -> Difference:
    """The difference of one headline between a method's runs and the baseline's (rows of
    `headline_values`), paired by seed."""
    paired = mine[["seed", "value", "half"]].merge(base[["seed", "value", "half"]], on="seed",
                                                   suffixes=("", "_base")).sort_values("seed")
    if paired.empty:
        return Difference(math.nan, math.nan, math.nan, "none", 0)
    diffs = paired["value"] - paired["value_base"]
    delta = float(diffs.mean())
    if len(paired) >= 2:
        if np.ptp(diffs.to_numpy()) == 0:  # no spread: the t interval degenerates to a point
            return Difference(delta, math.nan, math.nan, "paired-t", len(paired))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            test = stats.ttest_rel(paired["value"], paired["value_base"])
            interval = test.confidence_interval(0.95)
        return Difference(delta, float(interval.low), float(interval.high), "paired-t", len(paired),
                          float(test.pvalue))
    half = math.sqrt(paired["half"].iloc[0] ** 2 + paired["half_base"].iloc[0] ** 2)
    if math.isnan(half):
        return Difference(delta, math.nan, math.nan, "none", 1)
    standard_error = half / stats.norm.ppf(0.975)  # the 95% half-width is 1.96 standard errors
    p = float(2 * stats.norm.sf(abs(delta) / standard_error)) if half > 0 else math.nan
    return Difference(delta, delta - half, delta + half, "per-image", 1, p)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN = untested, left out of the family and
    kept NaN): the k-th smallest of m gets max over j <= k of min(1, (m - j + 1) p_(j)).
    Written here, not imported: statsmodels' `multipletests` (which the tests compare with) would be a
    dependency for five lines, and scipy has only the FDR adjustments."""
    p = np.asarray(pvalues, dtype=np.float64)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.full(len(p), np.nan)
    adjusted[order] = stepped
    return adjusted.tolist()


PAIR_COLUMNS = ["headline", "method", "other", "delta", "low", "high", "test", "seeds", "p", "p_holm"]


def pairwise(values: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Every pair of methods on every headline (rows of `headline_values`): `method` - `other` for each
    `other` before `method` in `methods`, by `difference`, with the p-value Holm-adjusted over the pairs
    of that headline (one family per headline: m(m-1)/2 comparisons for m methods)."""
    rows = []
    for headline in dict.fromkeys(values["headline"]):
        mine = values[values["headline"] == headline]
        family = []
        for j, method in enumerate(methods):
            for other in methods[:j]:
                diff = difference(mine[mine["method"] == method], mine[mine["method"] == other])
                family.append({"headline": headline, "method": method, "other": other, "delta": diff.delta,
                               "low": diff.low, "high": diff.high, "test": diff.test, "seeds": diff.seeds,
                               "p": diff.p})
        for row, adjusted in zip(family, holm([row["p"] for row in family])):
            rows.append({**row, "p_holm": adjusted})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)
