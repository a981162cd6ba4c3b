"""Report pieces shared by the robustness evaluations: metric-vs-level tables and curves with the
mean +- std over seeds per method. Rows are those of results.csv (columns method, metric, value, subset,
level, setting)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from tabulate import tabulate

from ..report import display_name, mean_std, mean_std_table


def keyed(rows: pd.DataFrame, metric: str, subset: str) -> pd.DataFrame:
    """The rows of one metric and subset, with a `key` column "<level>" for table columns."""
    selected = rows[(rows["metric"] == metric) & (rows["subset"] == subset)].copy()
    selected["level"] = selected["level"].astype(float)
    selected["key"] = selected["level"].map(lambda level: f"{level:g}")
    return selected


def level_table(rows: pd.DataFrame, metric: str, subset: str, levels: Sequence[float], prefix: str,
                methods: list[str], lower_is_better: bool | None, digits: int = 1) -> str:
    """Methods x levels (columns headed `prefix`<level>), cells mean +- std over seeds; best mean in bold
    unless `lower_is_better` is None (for quantities without a better direction)."""
    selected = keyed(rows, metric, subset)
    columns = {f"{level:g}": f"{prefix}{level:g}" for level in levels}
    if lower_is_better is not None:
        return mean_std_table(selected, columns, methods, column="key", lower_is_better=lower_is_better,
                              digits=digits)
    body = []
    for method in methods:
        line = [display_name(method)]
        for key in columns:
            values = selected[(selected["key"] == key) & (selected["method"] == method)]["value"].dropna()
            line.append(mean_std(values, digits) if len(values) else "–")
        body.append(line)
    return tabulate(body, ["Method", *columns.values()], tablefmt="github", disable_numparse=True)


def plot_curves(ax: Axes, rows: pd.DataFrame, metric: str, subset: str, methods: list[str]) -> None:
    """One line per method: mean over seeds against the level, with a +- std band when there are >= 2 seeds."""
    selected = keyed(rows, metric, subset)
    for method in methods:
        stats = selected[selected["method"] == method].groupby("level")["value"].agg(["mean", "std"]).sort_index()
        if stats.empty:
            continue
        line, = ax.plot(stats.index, stats["mean"], marker="o", markersize=3, label=display_name(method))
        if stats["std"].notna().any():
            ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    ax.grid(alpha=0.3)


def new_figure(rows: int, cols: int) -> tuple[Figure, list[list[Axes]]]:
    """A figure without pyplot (no global backend state), as a rows x cols grid of axes."""
    figure = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, [list(row) for row in axes]


def save_figure(figure: Figure, figures_dir: Path, name: str) -> str:
    """Save `name`.png into figures_dir; return the markdown image link relative to the report."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    figure.savefig(figures_dir / f"{name}.png", dpi=120)
    return f"![{name}](figures/{name}.png)"


def settings(rows: pd.DataFrame) -> str:
    """The distinct `setting` strings of the rows (normally one), for the report text."""
    values = sorted(rows["setting"].dropna().unique()) if "setting" in rows else []
    return "; ".join(str(v) for v in values) or "not recorded"
