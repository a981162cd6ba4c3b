"""Report pieces shared by the robustness evaluations: metric-vs-level tables and curves with the
mean +- std over seeds per method. Rows are those of results.csv (columns method, metric, value, subset,
level, setting)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes

from ..report import display_name, mean_std_table


def keyed(rows: pd.DataFrame, metric: str, subset: str) -> pd.DataFrame:
    """The rows of one metric and subset, with a `key` column "<level>" for table columns."""
    selected = rows[(rows["metric"] == metric) & (rows["subset"] == subset)].copy()
    selected["level"] = selected["level"].astype(float)
    selected["key"] = selected["level"].map(lambda level: f"{level:g}")
    return selected


def level_table(rows: pd.DataFrame, metric: str, subset: str, levels: Sequence[float], prefix: str,
                methods: list[str], digits: int = 1) -> str:
    """Cells mean +- std over seeds, one column per level (headed `prefix`<level>) and one row per method;
    with more than 6 levels transposed (one row per level), so the table stays page-wide."""
    selected = keyed(rows, metric, subset)
    columns = {f"{level:g}": f"{prefix}{level:g}" for level in levels}
    return mean_std_table(selected, columns, methods, column="key", digits=digits, transpose=len(columns) > 6,
                          first=prefix.rstrip("="))


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


def settings(rows: pd.DataFrame) -> str:
    """The distinct `setting` strings of the rows (normally one), for the report text."""
    values = sorted(rows["setting"].dropna().unique()) if "setting" in rows else []
    return "; ".join(str(v) for v in values) or "not recorded"
