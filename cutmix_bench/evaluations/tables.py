"""Markdown table helpers shared by the evaluations' report sections and the report builder: method names,
mean ± std cells over seeds, per-image sampling notes, page-wide level tables and the full tables saved as CSV
beside the report. Rows are those of results.csv (columns method, metric, value, subset, level, n, ci_low,
ci_high, ...)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from ..aggregate import Difference, half_width, spread, spread_by
from ..io import write_csv
from ..methods import METHODS


def display_name(method: str) -> str:
    """A method label as the report shows it: the display name its method declared at registration when the label
    is a registered method's name, else the label."""
    return METHODS.about(method).display if method in METHODS else method


def mean_std(values: pd.Series, digits: int = 2) -> str:
    cell = spread(values)
    return format_mean_std(cell["mean"], cell["std"], int(cell["count"]), digits)


def format_mean_std(mean: float, std: float, count: int, digits: int = 2) -> str:
    """Mean ± sample std as text, or the mean alone for a single value."""
    return f"{mean:.{digits}f}" if count < 2 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def difference_bound(label: str) -> float:
    """The largest possible difference of a headline: 100 points for a percentage, else none."""
    return 100.0 if "(%)" in label else math.inf


def format_difference(diff: Difference, bound: float = math.inf) -> str:
    """`+d [low, high] *`; the interval clipped to [-bound, +bound], the range a difference of the metric can take
    (±100 for a percentage: a 2-seed t interval, with t = 12.71, easily runs past it)."""
    if math.isnan(diff.delta):
        return "–"
    if math.isnan(diff.low):
        return f"{diff.delta:+.2f} (no interval)"
    mark = " *" if diff.significant else ""
    return f"{diff.delta:+.2f} [{max(diff.low, -bound):+.2f}, {min(diff.high, bound):+.2f}]{mark}"


def markdown_table(body: list[list[str]], header: list[str]) -> str:
    return tabulate(body, header, tablefmt="github", disable_numparse=True)


def mean_std_table(rows: pd.DataFrame, columns: dict[str, str], methods: list[str], column: str = "metric",
                   digits: int = 2, transpose: bool = False, first: str = "Method") -> str:
    """Markdown table of mean ± std over runs: one row per method (in `methods` order) and one column per
    key of `columns` (values of `rows[column]`, headed by the dict's values); `transpose` swaps them (for
    many keys: a table stays page-wide). No best-mean marks: a gap between two means is no evidence."""
    stats = {key: spread_by(rows[rows[column] == key], "method") for key in columns}

    def cell(key: str, method: str) -> str:
        table = stats[key]
        if method not in table.index or table.loc[method, "count"] == 0:
            return "–"
        mine = table.loc[method]
        return format_mean_std(mine["mean"], mine["std"], int(mine["count"]), digits)

    if transpose:
        body = [[label, *(cell(key, m) for m in methods)] for key, label in columns.items()]
        return markdown_table(body, [first, *map(display_name, methods)])
    body = [[display_name(m), *(cell(key, m) for key in columns)] for m in methods]
    return markdown_table(body, ["Method", *columns.values()])


def sampling_note(rows: pd.DataFrame) -> str:
    """"n = 500 images; 95% interval over images ±1.2 (median half-width)" from the rows' `n`, `ci_low` and
    `ci_high` (contract 1), or "" when results.csv does not carry them."""
    if "n" not in rows:
        return ""
    n = pd.to_numeric(rows["n"], errors="coerce").dropna()
    if n.empty:
        return ""
    sizes = f"n = {int(n.min()):,}" if n.min() == n.max() else f"n = {int(n.min()):,}–{int(n.max()):,}"
    if "ci_low" in rows and "ci_high" in rows:
        half = half_width(rows).dropna()
        if len(half):
            return f"{sizes} per cell; 95% interval over images ±{half.median():.2f} (median half-width over cells)."
    return f"{sizes} per cell."


def cell_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count over seeds of every (method, metric, subset, level, ...) cell of the rows, with
    the largest n and the median per-image half-width over seeds when recorded: the full table behind a
    section, for its CSV."""
    keys = [c for c in ("method", "metric", "subset", "group", "score", "level") if c in rows]
    frame = rows.assign(value=pd.to_numeric(rows["value"], errors="coerce"))
    extra = {}
    if "n" in rows:
        extra["n"] = ("n", "max")
    if "ci_low" in rows and "ci_high" in rows:
        frame["ci_half"] = half_width(frame)
        extra["median_ci_half_width"] = ("ci_half", "median")
    cells = spread_by(frame, keys, sort=False, dropna=False, **extra).rename(columns={"count": "seeds"})
    return cells.reset_index()


def save_table(out_dir: Path, name: str, frame: pd.DataFrame) -> str:
    """Write a full table as tables/<name>.csv beside the report; return a markdown link to it."""
    write_csv(out_dir / "tables" / f"{name}.csv", frame)
    return f"[tables/{name}.csv](tables/{name}.csv)"


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


def settings(rows: pd.DataFrame) -> str:
    """The distinct `setting` strings of the rows (normally one), for the report text."""
    values = sorted(rows["setting"].dropna().unique()) if "setting" in rows else []
    return "; ".join(str(v) for v in values) or "not recorded"


def portable_paths(text: str) -> str:
    """`text` without the machine's absolute paths: each becomes `…/` and its last two parts, so a committed
    report names no home folder or checkout (`--set data.root=/home/me/x/shared/data/cifar100` ->
    `--set data.root=…/data/cifar100`). Used for the recorded command and for notes that name files."""
    def shorten(match: re.Match) -> str:
        parts = [p for p in os.path.normpath(match.group(0)).split(os.sep) if p]
        return "…/" + "/".join(parts[-2:]) if len(parts) > 1 else match.group(0)

    return re.sub(r"(?<![\w.])/[^\s'\"`]+", shorten, text)
