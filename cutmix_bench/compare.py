"""Side by side: the headline metrics of two results directories (e.g. CPU vs GPU runs of one suite, or two
models with --allow-different), each method's B - A difference with Welch's t interval over seeds (the runs
of A and B are independent: `scipy.stats.ttest_ind(equal_var=False)`). With one seed on each side, each value
shows its per-image 95% interval (results.csv's ci_low / ci_high) and the difference the two combined as if
independent (`aggregate.per_image_difference`, as the report's one-seed differences); one seed on one side only
gives no interval.

The folders are read as `report` reads them. Folders of different datasets (settings or recorded image digests),
models, training setups, method or evaluation parameters are refused unless allowed (then the header names both
sides of each difference); the header also names every difference in how the runs executed (devices, strategy,
nodes, precision, compilation), which is not part of a setup. A folder compared with itself, or one that
holds no results, is refused. The comparison is never written into a results folder, nor over an existing file,
without `force`; a results folder's own files are never overwritten."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .aggregate import per_image_difference, welch
from .config import Suite
from .errors import BenchError
from .evaluations.tables import display_name, markdown_table, mean_std
from .io import write_text
from .provenance import read_json
from .rundir import ResultsDir
from .setups import TRAIN_KEYS
from .summary import headline_values, suite_headlines


def describe(out: Path) -> str:
    env = read_json(ResultsDir(out).environment, {})
    suite = read_json(ResultsDir(out).suite, {})
    model = suite.get("model", {})
    return (f"`{out}`: suite {suite.get('name', '?')}, dataset {suite.get('data', {}).get('name', '?')}, "
            f"model {model.get('name', '?')}, "
            f"{suite.get('train', {}).get('epochs', '?')} epochs, seeds {suite.get('seeds', '?')}; device "
            f"{env.get('device', 'not recorded')}; commit {env.get('commit', 'not recorded')}")


RECORDED = ("results.csv", "suite.json", "setups.json", "failures.json", "environment.json", "report.md")


def setup_parts(suite: Suite, out: Path | None = None) -> dict[str, Any]:
    """What must agree for two folders' numbers to sit side by side: the data (less where it lies on disk; with
    `out`, the digest of its images that the runs recorded), the model, the training recipe (the keys of a run's
    recorded setup) and the parameters of each method and evaluation label."""
    parts = {"dataset": suite.data.model_dump(mode="json", exclude={"root", "download"}),
             "model": suite.model.model_dump(mode="json"),
             "training setup": suite.train.model_dump(mode="json", include=TRAIN_KEYS)}
    contents = recorded_contents(out) if out is not None else []
    if len(contents) == 1:  # runs of one data content (a folder of several is refused by `report` anyway)
        parts["dataset images"] = contents[0]
    for label in suite.methods:
        name, params = suite.method_spec(label)
        parts[f"methods.{label}"] = {"method": name, **params}
    for label in suite.evaluations:
        name, params = suite.evaluation_spec(label)
        parts[f"evaluations.{label}"] = {"evaluation": name, **params}
    return parts


def recorded_contents(out: Path) -> list[Any]:
    """The distinct digests of the train and test images that the folder's runs recorded (setups.json)."""
    setups = read_json(ResultsDir(out).setups, {})
    parsed = [json.loads(s) if isinstance(s, str) else s for s in setups.values()]
    digests = {json.dumps(s.get("data", {}).get("content"), sort_keys=True) for s in parsed}
    return [json.loads(d) for d in sorted(digests) if d != "null"]


def setup_differences(suite_a: Suite, suite_b: Suite, a_dir: Path | None = None,
                      b_dir: Path | None = None) -> list[str]:
    """`key: A value vs B value` per differing leaf of the parts of `setup_parts` that both folders have."""
    a, b = setup_parts(suite_a, a_dir), setup_parts(suite_b, b_dir)
    common = [key for key in a if key in b]
    old, new = flatten({k: a[k] for k in common}), flatten({k: b[k] for k in common})
    missing = object()
    show = lambda value: "(none)" if value is missing else json.dumps(value)  # noqa: E731
    return [f"{key}: A {show(old.get(key, missing))} vs B {show(new.get(key, missing))}"
            for key in dict.fromkeys([*old, *new]) if old.get(key, missing) != new.get(key, missing)]


REQUESTED = " (requested; what ran was not recorded)"


def execution(suite: Suite, out: Path) -> dict[str, str]:
    """How a folder's runs executed, which is not part of their setup but can move the numbers: precision and
    compilation in the last digits, devices through the mixing draws (each rank draws for its own shard). What the
    runs recorded (runs.json: Lightning's precision and strategy as resolved) where they did, else the suite's."""
    infos = read_json(ResultsDir(out).runs_info, {})

    def ran(key: str, requested: Any) -> str:
        values = sorted({str(i[key]) for i in infos.values() if key in i})
        return " / ".join(values) if values else f"{requested}{REQUESTED}"

    train = suite.train
    return {"train.devices": ran("devices", train.devices), "train.strategy": ran("strategy", suite.strategy_ran()),
            "executor.nodes": ran("nodes", suite.executor.nodes), "precision": ran("precision", train.precision),
            "train.channels_last": str(train.channels_last), "train.compile": str(train.compile),
            "eval_compile": str(suite.eval_compile)}


def execution_differences(suite_a: Suite, a: Path, suite_b: Suite, b: Path) -> list[str]:
    """`key: A value vs B value` per differing entry of `execution`."""
    mine, other = execution(suite_a, a), execution(suite_b, b)
    return [f"{key}: A {mine[key]} vs B {other[key]}" for key in mine
            if mine[key].removesuffix(REQUESTED) != other[key].removesuffix(REQUESTED)]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"dataset.params.train_size": 128, ...}: one entry per leaf (an empty mapping has none, so `params: {}`
    against `params: {width: 16}` is the one difference `params.width`)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def side_by_side(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The A cell, the B cell and B − A of one headline and method (rows of `headline_values`: value, half)."""
    if len(a) == len(b) == 1:
        cells = [with_half(rows["value"].iloc[0], rows["half"].iloc[0]) for rows in (a, b)]
        one = per_image_difference(float(b["value"].iloc[0] - a["value"].iloc[0]), a["half"].iloc[0], b["half"].iloc[0])
        return [*cells, difference_cell(one.delta, one.low, one.high)]
    cells = [mean_std(rows["value"]) if len(rows) else "missing" for rows in (a, b)]
    if a.empty or b.empty:
        return [*cells, "–"]
    return [*cells, difference_cell(*welch(a["value"], b["value"]))]


def difference_cell(delta: float, low: float, high: float) -> str:
    mark = " *" if not math.isnan(low) and (low > 0 or high < 0) else ""
    return f"{delta:+.2f}" + (f" [{low:+.2f}, {high:+.2f}]{mark}" if not math.isnan(low) else "")


def with_half(value: float, half: float) -> str:
    """One run's value with its per-image 95% half-width (none where results.csv has no interval)."""
    return f"{value:.2f}" if math.isnan(half) else f"{value:.2f} ± {half:.2f}"


def check_destination(path: Path, folders: tuple[Path, Path], force: bool) -> None:
    """Never over a results folder's own files; into a results folder or over an existing file only with force."""
    target = path.resolve()
    for folder in folders:
        inside = target.is_relative_to(folder.resolve())
        if inside and (target.relative_to(folder.resolve()).parts[:1] == ("runs",)
                       or (target.name in RECORDED and target.parent == folder.resolve())):
            raise BenchError(f"--out {path}: is a file of the results folder {folder}; write the comparison "
                             f"elsewhere")
        if inside and not force:
            raise BenchError(f"--out {path}: is inside the results folder {folder}; write the comparison elsewhere "
                             f"or pass --force")
    if path.is_dir():
        raise BenchError(f"--out {path}: is a directory; expected a markdown file name")
    if path.exists() and not force:
        raise BenchError(f"--out {path}: exists; pass --force to overwrite it, or choose another file")


def compare_dirs(a: Path, b: Path, path: Path, allow_different: bool = False, force: bool = False) -> Path:
    """Write the comparison of results directories `a` and `b` to `path` (markdown)."""
    from .report import load_results_dir

    if a.resolve() == b.resolve():
        raise BenchError(f"{a} and {b} are the same results folder; expected two different folders")
    check_destination(path, (a, b), force)
    (suite_a, results_a, _), (suite_b, results_b, _) = load_results_dir(a), load_results_dir(b)
    for folder, results in ((a, results_a), (b, results_b)):
        if results.empty:
            raise BenchError(f"{folder}: holds no results (results.csv has no rows); expected a folder with "
                             f"finished runs")
    differing = setup_differences(suite_a, suite_b, a, b)
    if differing and not allow_different:
        raise BenchError(f"{a} and {b} were made with different setups ({'; '.join(differing)}); their numbers "
                         f"are not comparable as they stand; pass --allow-different to compare them anyway")
    headlines = suite_headlines(suite_a, suite_b)
    values_a, values_b = headline_values(results_a, headlines), headline_values(results_b, headlines)
    methods = list(dict.fromkeys([*suite_a.methods, *suite_b.methods]))
    body = []
    for headline in headlines:
        for method in methods:
            rows_a, rows_b = (values[(values["headline"] == headline.key) & (values["method"] == method)]
                              for values in (values_a, values_b))
            if rows_a.empty and rows_b.empty:
                continue
            body.append([f"{headline.label} {headline.arrow}", display_name(method), *side_by_side(rows_a, rows_b)])
    warning = ("\n\n**Different setups** (compared with --allow-different): B − A mixes the effect of the method "
               "with these differences:\n\n" + "\n".join(f"- {d}" for d in differing)) if differing else ""
    ran = execution_differences(suite_a, a, suite_b, b)
    warning += ("\n\n**Ran differently** (not part of a run's setup; it can move the numbers: precision and "
                "compilation in the last digits, devices through the mixing draws):\n\n"
                + "\n".join(f"- {d}" for d in ran)) if ran else ""
    text = (f"# Comparison: {suite_a.name} (A) vs {suite_b.name} (B)\n\n- **A** {describe(a)}\n- **B** {describe(b)}"
            f"{warning}\n\nMean ± std over seeds. B − A with Welch's 95% t interval over seeds (independent runs); "
            "**\\*** marks an interval that excludes zero. With one seed on each side: value ± its per-image 95% "
            "half-width, and B − A with the two combined as if independent, sqrt(hA² + hB²) (conservative: both are "
            "scored on the same images); no interval with one seed on one side only.\n\n"
            f"{markdown_table(body, ['Metric', 'Method', 'A', 'B', 'B − A [95% interval]'])}\n\n"
            f"Full reports: [A]({(a / 'report.md').as_posix()}), [B]({(b / 'report.md').as_posix()}).\n")
    write_text(path, text)
    return path
