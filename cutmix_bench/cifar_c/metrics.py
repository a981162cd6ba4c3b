"""Corruption-robustness summaries from per-cell errors (corruption x severity).

Conventions (AugMix, Hendrycks et al. 2020; RobustBench): on CIFAR the mean corruption error `mce`
is the plain mean of the top-1 error over the 15 benchmark corruptions x 5 severities (no AlexNet
normalisation); the 4 extra corruptions are reported apart (`extra_err`); `relative_mce` is
mce minus the clean error. When a suite evaluates only part of the 75 benchmark cells, the same
plain mean is named `mean_err` (and `relative_mean_err`) so it is never mistaken for the mCE.
Every summary row carries `cells`, the number of (corruption, severity) cells averaged.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

CATEGORIES = ("noise", "blur", "weather", "digital")


def summary_rows(cells: pd.DataFrame, clean_err: float) -> list[dict[str, Any]]:
    """`cells`: one row per evaluated cell with columns subset (corruption), level (severity),
    value (top-1 error, %). Returns mce / mean_err, relative, per category, extras, per
    corruption (mean over its severities) and per severity (mean over benchmark corruptions)."""
    from ..corruptions import BENCHMARK, CATEGORY, EXTRA

    rows: list[dict[str, Any]] = []
    bench = cells[cells["subset"].isin(BENCHMARK)]
    if len(bench):
        complete = len(bench) == len(BENCHMARK) * 5
        name = "mce" if complete else "mean_err"
        mean = float(bench["value"].mean())
        rows.append({"metric": name, "value": mean, "cells": len(bench)})
        rows.append({"metric": f"relative_{name}", "value": mean - clean_err, "cells": len(bench)})
        for category in CATEGORIES:
            part = bench[bench["subset"].map(CATEGORY) == category]
            if len(part):
                rows.append({"metric": "category_err", "subset": category, "value": float(part["value"].mean()),
                             "cells": len(part)})
        for level, part in bench.groupby("level"):
            rows.append({"metric": "severity_err", "level": int(level), "value": float(part["value"].mean()),
                         "cells": len(part)})
    extra = cells[cells["subset"].isin(EXTRA)]
    if len(extra):
        rows.append({"metric": "extra_err", "value": float(extra["value"].mean()), "cells": len(extra)})
    for corruption, part in cells.groupby("subset", sort=False):
        rows.append({"metric": "corruption_err", "subset": corruption, "value": float(part["value"].mean()),
                     "cells": len(part)})
    return rows
