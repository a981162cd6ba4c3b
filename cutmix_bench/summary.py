"""The report's first screen: one value per run for each headline metric, and each method's difference
to the baseline with a 95% interval.

With >= 2 seeds shared with the baseline, the interval is the paired t interval over seeds
(`scipy.stats.ttest_rel`: the same seed gives the same data order and initialisation, so seeds pair).
With one seed it is the per-image interval of results.csv's `ci_low` / `ci_high`, the two methods'
half-widths combined as if independent (sqrt of the sum of squares; conservative, as both are scored
on the same images)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from .config import Suite
from .evaluations import EVALUATIONS, Headline, evaluation_types

SUMMARY_ORDER = ("clean", "corruptions", "ood", "occlusion", "adversarial")  # built-in evaluations: shown first,
# in this order, and as "not in suite" rows when a suite does not run them


def suite_headlines(*suites: Suite) -> list[Headline]:
    """The summary's rows of the suites' evaluations (merged by key, in order): each evaluation label gets the
    headlines its evaluation declares (`Evaluation.headlines`); a label other than the evaluation's name is
    named in the row. The evaluations of SUMMARY_ORDER come first, with a row not bound to a label when no
    suite runs them; the others follow in suite order."""
    out: dict[str, Headline] = {}
    for suite in suites:
        types = evaluation_types(suite)
        names = {label: suite.evaluation_spec(label)[0] for label in suite.evaluations}
        for name in dict.fromkeys([*SUMMARY_ORDER, *names.values()]):
            labels = [label for label in suite.evaluations if names[label] == name]
            for h in (EVALUATIONS.get(name).headlines if name in EVALUATIONS else ()):
                if not labels and h.key not in out:
                    out[h.key] = h
            for label in labels:
                for h in types[label].headlines:
                    named = h if label == name else replace(h, key=f"{h.key}:{label}", label=f"{h.label} ({label})")
                    out[named.key] = replace(named, evaluation=label)
    return list(out.values())


def headline_values(results: pd.DataFrame, headlines: list[Headline]) -> pd.DataFrame:
    """One row per (headline, run): columns headline, run, method, seed, value, half (the per-image 95%
    half-width, NaN when not recorded) and n. A mean over k rows (OOD sets) gets sqrt(sum h^2) / k."""
    out = []
    for headline in headlines:
        rows = results[results["evaluation"] == headline.evaluation] if headline.evaluation else results.iloc[0:0]
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
            interval = stats.ttest_rel(paired["value"], paired["value_base"]).confidence_interval(0.95)
        return Difference(delta, float(interval.low), float(interval.high), "paired-t", len(paired))
    half = math.sqrt(paired["half"].iloc[0] ** 2 + paired["half_base"].iloc[0] ** 2)
    if math.isnan(half):
        return Difference(delta, math.nan, math.nan, "none", 1)
    return Difference(delta, delta - half, delta + half, "per-image", 1)
