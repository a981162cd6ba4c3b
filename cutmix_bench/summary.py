"""The report's first screen: the headline rows the suite's evaluations declare, and one value per run for
each (its difference to the baseline, with a 95% interval, is `aggregate.paired_difference`)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from .aggregate import per_run
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
