"""Side by side: the headline metrics of two results directories (e.g. two models, or CPU vs GPU runs of
one suite), each method's B - A difference with Welch's t interval over seeds (the runs of A and B are
independent: `scipy.stats.ttest_ind(equal_var=False)`); one seed on either side gives no interval."""

from __future__ import annotations

import math
from pathlib import Path

from .aggregate import welch
from .evaluations.tables import display_name, markdown_table, mean_std
from .io import write_text
from .provenance import read_json
from .rundir import ResultsDir
from .summary import headline_values, suite_headlines


def describe(out: Path) -> str:
    env = read_json(ResultsDir(out).environment, {})
    suite = read_json(ResultsDir(out).suite, {})
    model = suite.get("model", {})
    return (f"`{out}`: suite {suite.get('name', '?')}, model {model.get('name', '?')}, "
            f"{suite.get('train', {}).get('epochs', '?')} epochs, seeds {suite.get('seeds', '?')}; device "
            f"{env.get('device', 'not recorded')}; commit {env.get('commit', 'not recorded')}")


def compare_dirs(a: Path, b: Path, path: Path) -> Path:
    """Write the comparison of results directories `a` and `b` to `path` (markdown)."""
    from .report import load_results_dir

    (suite_a, results_a, _), (suite_b, results_b, _) = load_results_dir(a), load_results_dir(b)
    headlines = suite_headlines(suite_a, suite_b)
    values_a, values_b = headline_values(results_a, headlines), headline_values(results_b, headlines)
    methods = list(dict.fromkeys([*suite_a.methods, *suite_b.methods]))
    body = []
    for headline in headlines:
        for method in methods:
            mine_a = values_a[(values_a["headline"] == headline.key) & (values_a["method"] == method)]["value"]
            mine_b = values_b[(values_b["headline"] == headline.key) & (values_b["method"] == method)]["value"]
            if mine_a.empty and mine_b.empty:
                continue
            cells = [mean_std(v) if len(v) else "missing" for v in (mine_a, mine_b)]
            if len(mine_a) and len(mine_b):
                delta, low, high = welch(mine_a, mine_b)
                mark = " *" if not math.isnan(low) and (low > 0 or high < 0) else ""
                diff = f"{delta:+.2f}" + (f" [{low:+.2f}, {high:+.2f}]{mark}" if not math.isnan(low) else "")
            else:
                diff = "–"
            body.append([f"{headline.label} {headline.arrow}", display_name(method), *cells, diff])
    text = (f"# Comparison: {suite_a.name} (A) vs {suite_b.name} (B)\n\n- **A** {describe(a)}\n- **B** {describe(b)}"
            f"\n\nMean ± std over seeds. B − A with Welch's 95% t interval over seeds (independent runs); "
            "**\\*** marks an interval that excludes zero; no interval with fewer than 2 seeds on a side.\n\n"
            f"{markdown_table(body, ['Metric', 'Method', 'A', 'B', 'B − A [95% interval]'])}\n\n"
            f"Full reports: [A]({(a / 'report.md').as_posix()}), [B]({(b / 'report.md').as_posix()}).\n")
    write_text(path, text)
    return path
