"""The markdown report: a header, the main paper-style table, then one section per evaluation.

Numbers are mean +- sample std over seeds of the last-epoch model; the best mean per column is bold."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .config import Suite
from .io import write_text

DISPLAY = {"baseline": "Baseline", "cutout": "Cutout", "mixup": "Mixup", "cutmix": "CutMix"}


def display_name(method: str) -> str:
    return DISPLAY.get(method, method)


def mean_std(values: pd.Series, digits: int = 2) -> str:
    return format_mean_std(values.mean(), values.std(ddof=1), len(values), digits)


def format_mean_std(mean: float, std: float, count: int, digits: int = 2) -> str:
    """Mean ± sample std as text, or the mean alone for a single value."""
    return f"{mean:.{digits}f}" if count < 2 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def mean_std_table(rows: pd.DataFrame, columns: dict[str, str], methods: list[str], column: str = "metric",
                   lower_is_better: bool = True, digits: int = 2) -> str:
    """Markdown table: one row per method (in `methods` order), one column per key of `columns`
    (values of `rows[column]`, headed by the dict's values), cells mean +- std over runs.

    The best mean is bold; a mean within one std (the larger of the two) of the best gets "≈": that
    difference is within seed noise."""
    header = ["Method"] + list(columns.values())
    stats = {key: rows[rows[column] == key].groupby("method")["value"].agg(["mean", "std", "count"])
             for key in columns}
    best = {key: (table["mean"].idxmin() if lower_is_better else table["mean"].idxmax())
            for key, table in stats.items() if table["count"].sum()}
    body = []
    for method in methods:
        line = [display_name(method)]
        for key in columns:
            table = stats[key]
            if method not in table.index or table.loc[method, "count"] == 0:
                line.append("–")
                continue
            mine, top = table.loc[method], table.loc[best[key]]
            cell = format_mean_std(mine["mean"], mine["std"], int(mine["count"]), digits)
            if len(table) > 1 and round(mine["mean"], digits) == round(top["mean"], digits):
                cell = f"**{cell}**"
            elif len(table) > 1 and within_noise(mine, top):
                cell = f"{cell} ≈"
            line.append(cell)
        body.append(line)
    return tabulate(body, header, tablefmt="github", disable_numparse=True)


def within_noise(a: pd.Series, b: pd.Series) -> bool:
    """True when two methods' means differ by at most the larger of their stds (needs >= 2 seeds each)."""
    if min(a["count"], b["count"]) < 2:
        return False
    return abs(a["mean"] - b["mean"]) <= max(a["std"], b["std"])


def main_table(results: pd.DataFrame, methods: list[str]) -> str:
    clean = results[results["evaluation"].isin(["clean", "train"])]
    columns = {"top1_err": "Top-1 err (%)", "top5_err": "Top-5 err (%)", "nll": "NLL", "ece": "ECE (%)",
               "train_minutes": "Train time (min)"}
    return mean_std_table(clean, columns, methods)


def header(suite: Suite, results: pd.DataFrame) -> str:
    model = suite.model.name + (f" {suite.model.params}" if suite.model.params else "")
    subset = f", training subset {suite.data.train_subset} images" if suite.data.train_subset else ""
    seeds = ", ".join(str(s) for s in suite.seeds)
    runs = results["run"].nunique() if len(results) else 0
    return (f"# {suite.name}\n\n"
            f"Dataset **{suite.data.name}**{subset}; model **{model}**; **{suite.train.epochs} epochs**, batch "
            f"{suite.train.batch_size}, {suite.train.optimizer.name} lr {suite.train.optimizer.lr} "
            f"({suite.train.schedule.name}), weight decay {suite.train.optimizer.weight_decay}; seeds {seeds} "
            f"({runs} finished runs).\n\n"
            f"All numbers are from the **last epoch** (not the best epoch on the test set), as mean ± sample std "
            f"over seeds; a single seed shows the value alone. Best mean per column in bold; ≈ marks a mean within "
            f"one standard deviation of the best, a difference within seed noise (with one seed, noise cannot be "
            f"judged).\n")


def build_report(suite: Suite, results: pd.DataFrame, out_dir: Path, failures: dict[str, str]) -> Path:
    """Write `report.md` (and figures) for the rows in `results`; return its path."""
    from .evaluations import EVALUATIONS, ReportContext

    methods = [m for m in suite.methods if m in set(results.get("method", []))]
    ctx = ReportContext(out_dir=out_dir, figures_dir=out_dir / "figures", methods=methods)
    parts = [header(suite, results)]
    if failures:
        lines = "\n".join(f"- `{run}`: {error}" for run, error in sorted(failures.items()))
        parts.append(f"## Failed or unfinished runs\n\nThese runs are missing from the tables:\n\n{lines}\n")
    if methods:
        parts.append(f"## Main results\n\n{main_table(results, methods)}\n")
        for label in suite.evaluations:
            rows = results[results["evaluation"] == label]
            name = suite.evaluation_spec(label)[0]
            if name == "clean" or rows.empty:
                continue
            evaluation = EVALUATIONS.get(name)
            section = evaluation.report(rows, ctx)
            if section:
                title = evaluation.title if label == name else f"{evaluation.title} (`{label}`)"
                parts.append(f"## {title}\n\n{section}\n")
    path = out_dir / "report.md"
    write_text(path, "\n".join(parts))
    return path
