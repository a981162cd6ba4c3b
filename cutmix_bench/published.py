"""A suite's published numbers (its `reference:` block) in the report: a row under each summary metric and a
column in the main table, and a section that sets each published number against ours taken the same way.

Papers usually print the best test accuracy over training (the CutMix and RepDistiller scripts both do); this
tool reports the last epoch. So the section shows ours both ways: the last epoch, and the best of the test
evaluations during training (curves.csv `test_acc`, every `train.eval_every` epochs; top-1 error only, as the
curve records nothing else), each minus the published number with a 95% interval (`aggregate.against_value`)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .aggregate import against_value, per_run
from .config import Reference
from .evaluations.tables import difference_bound, display_name, format_difference, markdown_table, mean_std
from .intervals import binomial
from .rundir import ResultsDir

# a reference metric -> the summary row it joins
PUBLISHED_HEADLINES = {"top1_err": "clean_err", "ece": "ece", "auroc_near": "auroc_near", "auroc_far": "auroc_far"}
METRIC_NAMES = {"top1_err": "Top-1 error (%)", "top5_err": "Top-5 error (%)", "nll": "NLL", "ece": "ECE (%)",
                "auroc_near": "OOD AUROC near (%)", "auroc_far": "OOD AUROC far (%)"}
EPOCHS = {"best": "the **best epoch** (the highest test accuracy over training)", "last": "the **last epoch**",
          None: "an epoch the reference block does not state (`reference.epoch`)"}


def published_note(reference: Reference) -> str:
    taken = f"theirs from the {reference.epoch} epoch" if reference.epoch else "theirs from an epoch not stated"
    return (f"Published: {reference.citation}. A published number comes from its authors' code, hardware and "
            f"choice of epoch ({taken}); ours are from the last epoch of this suite's runs.")


def published_rows(reference: Reference | None, headline: str, label: str, methods: list[str]) -> list[list[str]]:
    """The summary row of the published numbers of `headline` (none when the reference has none)."""
    metric = next((m for m, h in PUBLISHED_HEADLINES.items() if h == headline), None)
    if reference is None or metric is None or not any(metric in v for v in reference.results.values()):
        return []
    cells = [f"{reference.results[m][metric]:.2f}" if metric in reference.results.get(m, {}) else "–"
             for m in methods]
    return [[f"{label}, published", *cells]]


def ours_per_run(results: pd.DataFrame, metric: str, values: pd.DataFrame, main_label: str | None) -> pd.DataFrame:
    """Our last-epoch value of a reference metric, one row per run (columns run, method, seed, value, half): the
    summary's headline where the metric has one (`values`: `summary.headline_values`), else the rows of the main
    evaluation (clean)."""
    headline = PUBLISHED_HEADLINES.get(metric)
    if headline is not None:
        return values[values["headline"] == headline]
    rows = results[(results["evaluation"] == main_label) & (results["metric"] == metric)]
    return pd.DataFrame(per_run(rows), columns=["run", "method", "seed", "value", "half", "n"])


def best_epochs(curves: pd.DataFrame, last: pd.DataFrame) -> pd.DataFrame:
    """Each run's best epoch on the test set from its training curve: the lowest top-1 error (100 - test_acc, the
    earliest epoch on ties), with the per-image half-width of the Clopper-Pearson interval on the `n` test images
    its last-epoch row (`last`, per run) was scored on; one row per run (run, method, seed, value, half, epoch,
    evaluations)."""
    rows = []
    tested = curves.dropna(subset=["test_acc"])
    for run, curve in tested.groupby("run", sort=False):
        best = curve.loc[curve["test_acc"].idxmax()]
        err = 100.0 - float(best["test_acc"])
        n = last.loc[last["run"] == run, "n"]
        half = math.nan
        if len(n) and not math.isnan(n.iloc[0]):
            interval = binomial(round(err / 100 * int(n.iloc[0])), int(n.iloc[0]))
            half = (interval["ci_high"] - interval["ci_low"]) / 2
        rows.append({"run": run, "method": best["method"], "seed": int(best["seed"]), "value": err, "half": half,
                     "epoch": int(best["epoch"]) + 1, "evaluations": len(curve)})
    return pd.DataFrame(rows, columns=["run", "method", "seed", "value", "half", "epoch", "evaluations"])


def _cell(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "–"
    text = mean_std(runs["value"])
    if len(runs) == 1 and not math.isnan(runs["half"].iloc[0]):
        value, half = runs["value"].iloc[0], runs["half"].iloc[0]
        text += f" [{value - half:.2f}, {value + half:.2f}]"
    if "epoch" in runs:
        text += f" (epoch{'s' if len(runs) > 1 else ''} {', '.join(map(str, runs['epoch']))})"
    return text


def published_section(reference: Reference, results: pd.DataFrame, values: pd.DataFrame, methods: list[str],
                      main_label: str | None, out_dir: Path) -> str:
    """Each published number against ours, last epoch and best epoch, with ours - published and its interval."""
    curves_file = ResultsDir(out_dir).curves
    curves = pd.read_csv(curves_file) if curves_file.is_file() else pd.DataFrame()
    body, counts = [], set()
    for method in methods:
        for metric, published in reference.results.get(method, {}).items():
            last = ours_per_run(results, metric, values, main_label)
            last = last[last["method"] == method]
            best = (best_epochs(curves[curves["method"] == method], last)
                    if metric == "top1_err" and "test_acc" in curves else pd.DataFrame())
            counts.update(best["evaluations"] if len(best) else ())
            bound = difference_bound(METRIC_NAMES[metric])
            body.append([display_name(method), METRIC_NAMES[metric], f"{published:.2f}", _cell(last),
                         _cell(best) if len(best) else "not recorded",
                         format_difference(against_value(last, published), bound),
                         format_difference(against_value(best, published), bound) if len(best) else "–"])
    like = {"best": "for a trained run the **Best − published** column compares like with like",
            "last": "the **Final − published** column compares like with like",
            None: "which of the two columns compares like with like is not known"}[reference.epoch]
    evaluations = f", {' or '.join(map(str, sorted(counts)))} evaluations per run" if counts else ""
    return (f"### Against the published numbers\n\n{reference.citation}. The published numbers are from "
            f"{EPOCHS[reference.epoch]}; {like}. Ours are shown both ways: the final model (the last epoch, this "
            f"tool's rule, used everywhere else in this report; for a model scored by `cutmix-bench evaluate`, the "
            f"file as given, such as a released best-epoch checkpoint) and the best of the test evaluations during "
            f"training "
            f"(curves.csv{evaluations}; top-1 error only), mean ± std over seeds or, with one seed, the value "
            f"± the half-width of its per-image 95% Clopper-Pearson interval. Ours − published: the one-sample t "
            f"interval over seeds, or with one seed the per-image interval, taking the published number as exact "
            f"(its own seed spread is not in the reference block). **\\*** marks an interval that excludes "
            f"zero. A best epoch is picked on the test set itself: its interval ignores that choice and it is "
            f"biased low, as the published best-epoch number is.\n\n"
            + markdown_table(body, ["Method", "Metric", "Published", "Ours, final model", "Ours, best epoch",
                                    "Final − published", "Best − published"]) + "\n")
