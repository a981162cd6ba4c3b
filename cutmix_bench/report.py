"""The markdown report: a header (setup, environment, wall time), the summary with differences to the
baseline, figures, then one section per evaluation.

Everything is read from the results directory (results.csv and the small files of `provenance`), so
`cutmix-bench report RESULTS_DIR` rebuilds the same bytes. Numbers are mean +- sample std over seeds of
the last-epoch model; no cell is marked unless a test backs the mark (see `summary`)."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .config import Reference, Suite
from .errors import BenchError
from .evaluations import Evaluation, ReportContext, evaluation_types
from .evaluations.tables import (
    difference_bound,
    display_name,
    format_difference,
    markdown_table,
    mean_std,
    mean_std_table,
    portable_paths,
    sampling_note,
    save_table,
)
from .io import write_text
from .provenance import read_json
from .published import published_note, published_rows, published_section
from .rundir import TRAIN, ResultsDir

MISSING = "missing"


# --- header -------------------------------------------------------------------------------------------------


def recorded_setup(suite: Suite, out_dir: Path) -> tuple[dict[str, Any], str]:
    """The data / model / train setup the runs recorded (`setups.json`: hash -> setup), when all runs share
    it, else the suite's; with a note on where it came from."""
    from_suite = {"data": suite.data.model_dump(mode="json"), "model": suite.model.model_dump(mode="json"),
                  "train": suite.train.model_dump(mode="json")}
    setups = read_json(ResultsDir(out_dir).setups, {})
    parsed = [json.loads(s) if isinstance(s, str) else s for s in setups.values()]
    shared = {json.dumps({k: s.get(k) for k in ("data", "model", "train")}, sort_keys=True) for s in parsed}
    if len(shared) == 1:
        return {**from_suite, **json.loads(shared.pop())}, "as recorded by the runs (setups.json)"
    if len(shared) > 1:
        return from_suite, f"from the suite file; the runs recorded {len(shared)} different setups (setups.json)"
    return from_suite, "from the suite file"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _minutes(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def header(suite: Suite, results: pd.DataFrame, out_dir: Path) -> str:
    setup, source = recorded_setup(suite, out_dir)
    env = read_json(ResultsDir(out_dir).environment, {})
    infos = read_json(ResultsDir(out_dir).runs_info, {})
    data, model, train = setup["data"], setup["model"], setup.get("train") or {}
    sizes = {(i.get("train_images", 0), i["test_images"]) for i in infos.values() if "test_images" in i}
    used = ("; used " + "; ".join(f"{a:,} train / {b:,} test images" if a else f"{b:,} test images (evaluated "
                                  f"models)" for a, b in sorted(sizes))) if sizes else "; images used not recorded"
    counts = sorted({i["parameters"] for i in infos.values() if "parameters" in i})
    parameters = f", {', '.join(f'{c:,}' for c in counts)} parameters" if counts else ""
    opt, sched = train.get("optimizer", {}), train.get("schedule", {})
    runs = results["run"].nunique() if len(results) else 0
    methods = "; ".join(f"{display_name(label)} ({_params(p) or 'no parameters'})"
                        for label, p in suite.methods.items())
    # an evaluated model's entry lists its own seeds (its checkpoints); a trained method has the suite's
    seeds_of = {label: p["seeds"] if p.get("method") == "evaluated" else suite.seeds for label, p in
                suite.methods.items()}
    all_seeds = sorted({seed for seeds in seeds_of.values() for seed in seeds})
    expected = sum(len(seeds) for seeds in seeds_of.values())
    lines = [
        ("Suite", f"{suite.name} (setup {source})"),
        ("Dataset", f"{data['name']}{' (' + _params(data.get('params', {})) + ')' if data.get('params') else ''}"
                    f"{used}"),
        ("Model", f"{model['name']}{' (' + _params(model.get('params', {})) + ')' if model.get('params') else ''}"
                  f"{parameters}"),
        ("Schedule", f"{train['epochs']} epochs, batch {train['batch_size']}, {opt.get('name')} lr {opt.get('lr')}"
                     f" ({sched.get('name')}), weight decay {opt.get('weight_decay')}, precision "
                     f"{ran_precision(train.get('precision'), infos)}" if not all_evaluated(suite) else
                     "not trained by this tool: models scored by `cutmix-bench evaluate` (see Methods)"),
        ("Methods", methods),
        ("Seeds", f"{', '.join(map(str, all_seeds))} ({runs} of {expected} runs finished)"),
        ("Device", f"{env.get('device', 'not recorded')}{ran_devices(suite, infos)}"),
        ("Software", f"torch {env['torch']}, Lightning {env['lightning']}, CUDA {env['cuda']}, Python {env['python']}"
         if env else "not recorded"),
        ("cutmix-bench", f"{env['cutmix_bench']}, commit {env['commit']}" if env else "not recorded"),
        *([("Plug-ins", "; ".join(f"`{m}`: {s}" for m, s in env["plugins"].items()))] if env.get("plugins") else []),
        ("Command", f"`{portable_paths(env['command'])}`" if env.get("command") else "not recorded"),
        ("Started", env.get("started", "not recorded")),
        ("Wall time", suite_wall_time(env)),
        ("Run time", wall_times(infos, list(suite.evaluations))),
    ]
    synthetic = ("**Synthetic data.** The images are generated patterns (`data.name: synthetic`), made to test the "
                 "pipeline end to end in minutes: the numbers below say nothing about the methods.\n\n"
                 if data["name"] == "synthetic" else "")
    return (f"# {suite.name}\n\n{synthetic}{markdown_table([[f'**{k}**', v] for k, v in lines], ['', ''])}\n\n"
            "All numbers are from the model of the **last epoch** (not the best epoch on the test set); mean ± "
            "sample std over seeds, a single seed shows the value alone.\n")


def all_evaluated(suite: Suite) -> bool:
    """Every row label is a model scored by `cutmix-bench evaluate` (its methods entry says `method: evaluated`)."""
    return bool(suite.methods) and all(p.get("method") == "evaluated" for p in suite.methods.values())


PRECISIONS = {"32-true": "fp32", "32": "fp32", "bf16-mixed": "bf16 autocast", "16-mixed": "fp16 autocast",
              "bf16-true": "bf16", "64-true": "fp64"}


def ran_precision(requested: str | None, infos: dict[str, dict]) -> str:
    """What the runs trained in (runs.json `precision`, Lightning's flag resolved from `auto`), else the request."""
    ran = sorted({PRECISIONS.get(str(i["precision"]), str(i["precision"])) for i in infos.values() if "precision" in i})
    if not ran:
        return PRECISIONS.get(str(requested)) or f"{requested} (as requested; what ran was not recorded)"
    return " / ".join(ran) + (f" (requested {requested})" if requested not in (None, *ran) else "")


def ran_devices(suite: Suite, infos: dict[str, dict]) -> str:
    """How runs on several devices trained (runs.json `devices`, `strategy`, `nodes`: Lightning's strategy as
    resolved), else the suite's request; "" where every run trains on one device (the row says the device)."""
    ran = sorted({(i["devices"], i.get("strategy"), i.get("nodes", 1)) for i in infos.values() if "devices" in i})
    if not ran:
        return (f"; {device_label(suite.train.devices, None, suite.executor.nodes)} (as requested; not recorded)"
                if suite.train.devices > 1 else "")
    return "" if ran == [(1, "single_device", 1)] else "; " + " / ".join(device_label(*label) for label in ran)


def device_label(devices: int, strategy: str | None, nodes: int) -> str:
    if devices == 1:
        return "trained on 1 device per run"
    where = f" over {nodes} nodes" if nodes > 1 else ""
    return f"trained on {devices} devices per run{where}" + (f" (strategy {strategy})" if strategy else "")


def suite_wall_time(env: dict) -> str:
    """From `started` to `finished` of environment.json (the last command that ran the suite, all workers)."""
    try:
        started, finished = (datetime.datetime.strptime(env[key], "%Y-%m-%d %H:%M:%S UTC")
                             for key in ("started", "finished"))
    except (KeyError, ValueError):
        return "not recorded (made before the finish time was recorded); the run time below sums the runs"
    return (f"{_minutes((finished - started).total_seconds())} for the suite (the last command that ran it, "
            f"all workers); the run time below sums the runs, which parallel workers overlap")


def wall_times(infos: dict[str, dict], evaluations: list[str]) -> str:
    """Total time per phase summed over the runs that recorded it (mean per run in brackets)."""
    parts = []
    for phase in [TRAIN, *evaluations]:
        seconds = [i["seconds"][phase] for i in infos.values() if phase in i.get("seconds", {})]
        if seconds:
            label = "training" if phase == TRAIN else phase
            parts.append(f"{label} {_minutes(sum(seconds))} ({_minutes(sum(seconds) / len(seconds))} per run)")
    return "; ".join(parts) or "not recorded"


# --- summary ------------------------------------------------------------------------------------------------


def baseline_of(methods: list[str]) -> str:
    return "baseline" if "baseline" in methods else methods[0]


TWO_SEEDS = (" **With 2 seeds** a paired t interval has one degree of freedom (t = 12.71): it is wide, and only a "
             "large, consistent difference excludes zero; read these as a smoke check, not a finding.")


def summary_section(suite: Suite, results: pd.DataFrame, methods: list[str], out_dir: Path) -> str:
    from .aggregate import paired_difference
    from .evaluations.figures import summary_bars
    from .summary import headline_values, pairwise, suite_headlines

    headlines = suite_headlines(suite)
    values = headline_values(results, headlines)
    evaluated = set(results["evaluation"])
    status = {h.key: ("not in suite" if h.evaluation not in suite.evaluations else
                      f"{MISSING} (no rows)" if h.evaluation not in evaluated else
                      f"{MISSING} (metric not produced)") for h in headlines}
    body, diffs_body, tests, seed_counts = [], [], set(), set()
    base = baseline_of(methods)
    others = [m for m in methods if m != base]
    for h in headlines:
        mine = values[values["headline"] == h.key]
        label = f"{h.label} {h.arrow}"
        if mine.empty and h.optional and not published_rows(suite.reference, h.key, h.label, methods):
            continue  # e.g. OOD far when no real far set was scored (and no published number to show beside it)
        if mine.empty:
            body.append([label, *([status[h.key]] * len(methods))])
            body += published_rows(suite.reference, h.key, h.label, methods)
            diffs_body.append([label, *([status[h.key]] * len(others))])
            continue
        body.append([label, *(mean_std(mine[mine["method"] == m]["value"]) if (mine["method"] == m).any()
                              else MISSING for m in methods)])
        body += published_rows(suite.reference, h.key, h.label, methods)
        row = [label]
        for m in others:
            diff = paired_difference(mine[mine["method"] == m], mine[mine["method"] == base])
            tests.add(diff.test)
            seed_counts.add(diff.seeds)
            row.append(format_difference(diff, difference_bound(h.label)))
        diffs_body.append(row)
    seeds = len(suite.seeds)
    parts = [f"## Summary\n\nHeadline metrics, mean ± std over seeds (↓ lower is better, ↑ higher is better). "
             f"Per-run values: {save_table(out_dir, 'summary_per_run', values)}.\n",
             markdown_table(body, ["Metric", *map(display_name, methods)]) + "\n"
             + (f"\n{published_note(suite.reference)}\n" if suite.reference else "")]
    if suite.reference is not None:
        main = next((label for label, kind in evaluation_types(suite).items() if kind.main_columns), None)
        parts.append(published_section(suite.reference, results, values, methods, main, out_dir))
    if others:
        how = []
        if "paired-t" in tests:
            how.append("with >= 2 seeds, a **paired t-test over seeds** (same seed = same data order and "
                       "initialisation; `scipy.stats.ttest_rel`), 95% t interval of the mean paired difference")
        if "per-image" in tests:
            how.append("with **one seed**, the **per-image** 95% intervals of the two methods (results.csv "
                       "`ci_low` / `ci_high`) combined as independent: ±sqrt(h₁² + h₂²), conservative as both "
                       "use the same images")
        if "none" in tests:
            how.append("“no interval”: one seed and no per-image interval recorded, or no spread over seeds")
        parts += [f"### Difference to {display_name(base)}\n\nMethod minus {display_name(base)}, with its 95% "
                  f"interval [low, high]; **\\*** marks an interval that excludes zero (a difference unlikely "
                  f"to be seed or sampling noise; check the arrow for better or worse). Intervals: "
                  f"{'; '.join(how) or 'none'}. {seeds} seed(s) in the suite; percentage intervals clipped to "
                  f"the metric's range (±100).{TWO_SEEDS if 2 in seed_counts else ''}\n",
                  markdown_table(diffs_body, ["Metric", *map(display_name, others)]) + "\n"]
    if len(others) >= 2 and len(values):
        parts.append(pairs_section(pairwise(values, methods), headlines, methods, out_dir))
    if len(values):
        parts.append(summary_bars(values, headlines, methods, ResultsDir(out_dir).figures) + "\n")
    return "\n".join(parts)


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def pairs_section(pairs: pd.DataFrame, headlines: list[Any], methods: list[str], out_dir: Path) -> str:
    """Every pair of methods (rows of `summary.pairwise`): the difference, its p-value and the
    Holm-adjusted one; the pairs that stay below 5% after the adjustment, named."""
    names = [(m, o) for j, m in enumerate(methods) for o in methods[:j]]
    body, survivors = [], []
    for h in headlines:
        mine = pairs[pairs["headline"] == h.key].set_index(["method", "other"])
        if mine.empty:
            continue
        row = [f"{h.label} {h.arrow}"]
        for method, other in names:
            pair = mine.loc[(method, other)]
            if math.isnan(pair["delta"]):
                row.append("–")
            elif math.isnan(pair["p_holm"]):
                row.append(f"{pair['delta']:+.2f} (untested)")
            else:
                survives = pair["p_holm"] < 0.05
                mark = " *" if survives else ""
                row.append(f"{pair['delta']:+.2f} (p {_p(pair['p'])}, Holm {_p(pair['p_holm'])}){mark}")
                if survives:
                    survivors.append(f"{display_name(method)} − {display_name(other)} on {h.label} "
                                     f"({pair['delta']:+.2f}, Holm p {_p(pair['p_holm'])})")
        body.append(row)
    columns = [f"{display_name(m)} − {display_name(o)}" for m, o in names]
    found = ("Differences that survive Holm at 5%: " + "; ".join(survivors) + ".") if survivors else \
        "No pairwise difference survives Holm at 5%."
    return (f"### Every pair of methods, Holm-adjusted\n\nEach column is one method minus another, by the test "
            f"of the table above, with its two-sided p-value and the **Holm-adjusted** p-value (Holm's "
            f"step-down over the {len(names)} pairs of each metric: one family per row; pairs without a test "
            f"are left out of the family); **\\*** marks a Holm-adjusted p < 0.05. The marks of the table "
            f"above are not adjusted for the number of comparisons. All pairs: "
            f"{save_table(out_dir, 'summary_pairs', pairs)}.\n\n"
            + markdown_table(body, ["Metric", *columns]) + f"\n\n{found}\n")


def figures_section(methods: list[str], out_dir: Path) -> str:
    """Training curves (from curves.csv) and the training-input grid (drawn at run time), when present."""
    from .evaluations.figures import training_curves

    parts = []
    curves_file = ResultsDir(out_dir).curves
    if curves_file.is_file():
        curves = pd.read_csv(curves_file)
        link = training_curves(curves, methods, ResultsDir(out_dir).figures)
        parts.append("Train loss (on the mixed targets) and test accuracy per epoch; mean over seeds, ± std "
                     f"shaded. Data: [curves.csv](curves.csv).\n\n{link}")
    if (ResultsDir(out_dir).figures / "training_inputs.png").is_file():
        parts.append("What each method feeds the model: the same training images through every method, with "
                     "the label weights of the mixed target under each image.\n\n"
                     "![training inputs](figures/training_inputs.png)")
    return "## Training\n\n" + "\n\n".join(parts) + "\n" if parts else ""


def main_table(results: pd.DataFrame, methods: list[str], label: str | None, columns: dict[str, str],
               reference: Reference | None = None) -> str:
    """The main-table columns of evaluation `label` (clean error and calibration) and training time per method;
    a "published" column beside each metric the suite's `reference:` reports."""
    clean = results[results["evaluation"].isin([label, TRAIN])]
    columns = {**columns, "train_minutes": "Train time (min)"}
    note = sampling_note(clean[clean["metric"].isin(["top1_err", "top5_err"])])
    notes = [f"Error rates: {note}"] if note else []
    if reference is not None:
        given = [{"method": m, "metric": f"published:{k}", "value": v} for m, metrics in reference.results.items()
                 for k, v in metrics.items()]
        clean = pd.concat([clean, pd.DataFrame(given)], ignore_index=True)
        reported = {k for metrics in reference.results.values() for k in metrics}
        columns = {key: text for metric, label in columns.items() for key, text in
                   [(metric, label), *([(f"published:{metric}", "published")] if metric in reported else [])]}
        notes.append(published_note(reference))
    return mean_std_table(clean, columns, methods) + "".join(f"\n\n{n}" for n in notes)


def check_one_setup(results: pd.DataFrame) -> None:
    """A table row averages one method's runs: they must share one recorded setup (results.csv `setup`;
    `setups.json` maps each hash to its setup)."""
    if "setup" not in results or results.empty:
        return
    counts = results.groupby("method")["setup"].nunique()
    mixed = counts[counts > 1]
    if len(mixed):
        method = mixed.index[0]
        hashes = sorted(results.loc[results["method"] == method, "setup"].astype(str).unique())
        raise BenchError(f"results: method {method} mixes runs of {len(hashes)} setups ({', '.join(hashes)}; see "
                         f"setups.json); report each setup from its own output_dir")


def build_report(suite: Suite, results: pd.DataFrame, out_dir: Path, failures: dict[str, str]) -> Path:
    """Write `report.md` (and figures) for the rows in `results`; return its path."""

    check_one_setup(results)
    methods = [m for m in suite.methods if m in set(results.get("method", []))]
    ctx = ReportContext(out_dir=out_dir, figures_dir=ResultsDir(out_dir).figures, methods=methods)
    parts = [header(suite, results, out_dir)]
    if methods:
        parts.append(summary_section(suite, results, methods, out_dir))
    findings = ResultsDir(out_dir).findings  # optional: the reader's interpretation, placed after the summary
    if findings.is_file():  # written by a person from the numbers; kept verbatim through every rebuild
        parts.append(findings.read_text(encoding="utf-8").rstrip("\n") + "\n")
    if failures:
        lines = "\n".join(f"- `{run}`: {error}" for run, error in sorted(failures.items()))
        parts.append(f"## Failed or unfinished runs\n\nThese runs are missing from the tables:\n\n{lines}\n")
    if methods:
        parts.append(figures_section(methods, out_dir))
        types = evaluation_types(suite)
        main = [label for label, evaluation in types.items() if evaluation.main_columns]
        for label in main:
            table = main_table(results, methods, label, types[label].main_columns, suite.reference)
            parts.append(f"## {section_title(suite, label, types[label])}\n\n{table}\n")
        if not main:
            parts.append(f"## Training time\n\n{main_table(results, methods, None, {})}\n")
        for label, evaluation in types.items():
            if label in main:
                continue
            rows = results[results["evaluation"] == label]
            section = evaluation.report(rows, ctx) if len(rows) else "Not evaluated: no finished run has rows."
            if section:
                parts.append(f"## {section_title(suite, label, evaluation)}\n\n{section}\n")
    path = ResultsDir(out_dir).report
    write_text(path, "\n".join(p for p in parts if p))
    return path


def section_title(suite: Suite, label: str, evaluation: type[Evaluation]) -> str:
    """The evaluation's title, with the label when it runs under another name than its own."""
    return evaluation.title if label == suite.evaluation_spec(label)[0] else f"{evaluation.title} (`{label}`)"


def load_results_dir(out_dir: Path) -> tuple[Suite, pd.DataFrame, dict[str, str]]:
    """The suite, results table and failures that a results directory recorded."""
    files = ResultsDir(out_dir)
    for path in (files.results, files.suite):
        if not path.is_file():
            raise BenchError(f"{out_dir}: not a results directory (no {path.name}); expected the output_dir of a run "
                             f"made by this version")
    try:
        suite = Suite.model_validate(json.loads(files.suite.read_text()))
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError and ValidationError are ValueErrors
        raise BenchError(f"{files.suite}: damaged suite record ({type(exc).__name__}); expected the "
                         f"suite.json a run wrote") from None
    path = files.results
    try:
        results = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types (parser, decode, empty) for one meaning
        raise BenchError(f"{path}: unreadable results table ({type(exc).__name__}); rebuild it with "
                         f"`cutmix-bench report SUITE`") from None
    missing = [c for c in ("run", "method", "seed", "evaluation", "metric", "value") if c not in results.columns]
    if missing or not (results.empty or pd.api.types.is_numeric_dtype(results["value"])):
        what = f"missing column(s) {', '.join(missing)}" if missing else "non-numeric values in column value"
        raise BenchError(f"{path}: damaged results table ({what}); rebuild it with `cutmix-bench report SUITE`")
    return suite, results, read_json(files.failures, {})


def report_from_dir(out_dir: Path) -> Path:
    """Rebuild report.md from what the results directory holds: no training, no model, no data."""
    suite, results, failures = load_results_dir(out_dir)
    return build_report(suite, results, out_dir, failures)
