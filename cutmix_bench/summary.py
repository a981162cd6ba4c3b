"""The report's first screen: the headline rows the suite's evaluations declare, one value per run for each
(its difference to the baseline, with a 95% interval and p-value, is `aggregate.paired_difference`), and the
difference of every pair of methods with a Holm-adjusted p-value (`pairwise`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from .aggregate import paired_difference, per_run
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
    half-width, NaN when not recorded) and n (`aggregate.per_run`)."""
    out = []
    for headline in headlines:
        rows = results[results["evaluation"] == headline.evaluation] if headline.evaluation else results.iloc[0:0]
        if rows.empty:
            continue
        rows = headline.select(rows)
        if rows.empty:
            continue
        out += [{"headline": headline.key, **value} for value in per_run(rows)]
    return pd.DataFrame(out, columns=["headline", "run", "method", "seed", "value", "half", "n"])


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
    `other` before `method` in `methods`, by `aggregate.paired_difference`, with the p-value Holm-adjusted over
    the pairs of that headline (one family per headline: m(m-1)/2 comparisons for m methods)."""
    rows = []
    for headline in dict.fromkeys(values["headline"]):
        mine = values[values["headline"] == headline]
        family = []
        for j, method in enumerate(methods):
            for other in methods[:j]:
                diff = paired_difference(mine[mine["method"] == method], mine[mine["method"] == other])
                family.append({"headline": headline, "method": method, "other": other, "delta": diff.delta,
                               "low": diff.low, "high": diff.high, "test": diff.test, "seeds": diff.seeds,
                               "p": diff.p})
        for row, adjusted in zip(family, holm([row["p"] for row in family])):
            rows.append({**row, "p_holm": adjusted})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)
