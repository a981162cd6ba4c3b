"""Finishing a suite, the one step after the runs that `run`, `report SUITE` and `report DIR` share: collect the
finished runs' metrics into results.csv (with setups.json), write the metadata files (provenance), name the
failed or unfinished runs, draw the training-input figure once, and build report.md from the results directory
alone."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pandas as pd

from .components import components
from .config import Suite
from .data import Dataset, Split
from .errors import BenchError
from .evaluations.figures import training_inputs
from .faults import kill_point
from .io import write_csv, write_text
from .methods.base import has_own_loss
from .preflight import preflight, read_setup
from .provenance import copy_to_results, read_json
from .report import report_from_dir
from .rundir import ResultsDir, Run, RunDir
from .setups import row_setup, setup_hash
from .suite_data import load_data

UNFINISHED = "not finished: still running in another process (rerun to complete the report)"


def finish_suite(suite: Suite, out: Path, runs: list[Run], known: dict[str, str] | None = None,
                 data: tuple[Dataset, Split, Split] | None = None, draw_inputs: bool = True,
                 unfinished: str = UNFINISHED, ran: bool = True) -> dict[str, str]:
    """results.csv, setups.json, the metadata files with the failures, the training-input figure (when
    `draw_inputs` and not drawn yet; loads the data unless given) and report.md. Returns the failed or
    unfinished runs (run name -> message): FAILED files first, then `known` (failures no FAILED file records,
    jobs in flight), then `unfinished` for any other run not done."""
    results = ResultsDir(out)
    with results.finishing():  # one command at a time reads the run folders and writes what follows
        failures = results.failed_runs(runs, known, unfinished)
        write_results(out, runs)
        if draw_inputs and training_inputs_key(suite) != recorded_inputs_key(results):
            draw_training_inputs(suite, data or load_data(suite), out)
        copy_to_results(out, runs, suite.model_dump(mode="json"), failures)
        if ran:  # the command that ran the runs records when it ended; `report` and `evaluate` rebuild, they did not
            stamp_finished(results)
        kill_point("report")
        report_from_dir(out)  # from what the results directory holds, as `cutmix-bench report DIR` does
    return failures


RESULT_COLUMNS = ("run", "method", "seed", "evaluation", "metric", "value")

def collect_results(out: Path, runs: list[Run]) -> pd.DataFrame:
    """The finished runs' metrics.csv, validated, each with the `setup` hash of its recorded setup.json."""
    frames = []
    for r in runs:
        folder = RunDir.of(out, r)
        if not folder.is_done():
            continue
        frame = read_metrics(folder.metrics)
        recorded = read_setup(folder)
        frame.insert(min(5, len(frame.columns)), "setup", setup_hash(recorded) if recorded is not None else "")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run", "method", "seed", "model", "dataset", "setup", "evaluation", "metric", "value"])

def read_metrics(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types (parser, decode, empty, missing) for one meaning
        raise BenchError(f"{path}: unreadable metrics file ({type(exc).__name__}); delete the run's DONE file "
                         f"to evaluate it again") from None
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing or not pd.api.types.is_numeric_dtype(frame["value"]):
        what = f"missing column(s) {', '.join(missing)}" if missing else "non-numeric values in column value"
        raise BenchError(f"{path}: damaged metrics file ({what}; expected columns {', '.join(RESULT_COLUMNS)}); "
                         f"delete the run's DONE file to evaluate it again")
    return frame

def write_results(out: Path, runs: list[Run]) -> pd.DataFrame:
    """results.csv of the finished runs, and setups.json: each setup hash in it -> the recorded setup (less
    the seed)."""
    results = collect_results(out, runs)
    setups = {}
    for r in runs:
        recorded = read_setup(RunDir.of(out, r))
        if recorded is not None and RunDir.of(out, r).is_done():
            setups[setup_hash(recorded)] = row_setup(recorded)
    write_csv(ResultsDir(out).results, results)
    write_text(ResultsDir(out).setups, json.dumps(setups, indent=2, sort_keys=True) + "\n")
    return results

def check_recorded(suite: Suite, out: Path, runs: list[Run]) -> None:
    """For `report`: the finished runs were made with the setup the suite describes (its header says so)."""
    preflight(suite, out, [r for r in runs if RunDir.of(out, r).is_done()])

INPUTS_KEY = "training_inputs.json"  # beside the figure: what it shows, so a changed suite redraws it
INPUTS_COUNT = 6


def training_inputs_key(suite: Suite) -> dict:
    """What the training-inputs figure depends on: each method label's entry, the data (less where it lies) and
    the image count. The figure is redrawn when this differs from the one recorded beside it."""
    return {"methods": {label: list(suite.method_spec(label)) for label in suite.methods},
            "data": suite.data.model_dump(mode="json", exclude={"root", "download"}), "count": INPUTS_COUNT}


def recorded_inputs_key(results: ResultsDir) -> dict | None:
    """The key recorded beside the figure; None when absent or damaged (the figure is then drawn again)."""
    try:
        return read_json(results.figures / INPUTS_KEY, None)
    except (OSError, ValueError):
        return None


def draw_training_inputs(suite: Suite, data: tuple[Dataset, Split, Split], out: Path,
                         count: int = INPUTS_COUNT) -> None:
    """The report's grid of what each method feeds the model: the first `count` training images; records
    `training_inputs_key` beside it."""
    dataset, train, _ = data
    count = min(count, len(train))
    methods = {}
    for label, method in components(suite).methods.items():
        if hasattr(method, "set_normalisation"):  # AugMix: shown as one of its views
            method.set_normalisation(dataset.mean, dataset.std)
        if method.input_space or has_own_loss(method):  # hidden-feature mixing and PuzzleMix need the model
            methods[label] = method
    figures = ResultsDir(out).figures
    training_inputs(train.x[:count].numpy(), train.y[:count].numpy(), dataset.mean, dataset.std, methods,
                    dataset.num_classes, None, figures)
    write_text(figures / INPUTS_KEY, json.dumps(training_inputs_key(suite), indent=1, sort_keys=True) + "\n")


def stamp_finished(results: ResultsDir) -> None:
    """environment.json's `finished`: with its `started`, the suite's wall time (the report shows it beside the
    runs' summed time, which parallel workers make larger)."""
    if results.environment.is_file():
        recorded = json.loads(results.environment.read_text())
        recorded["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        write_text(results.environment, json.dumps(recorded, indent=1, sort_keys=True) + "\n")
