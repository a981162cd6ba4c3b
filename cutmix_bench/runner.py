"""Runs a suite: every (method, seed) is one run, trained, evaluated and written to its own folder.

results/<suite>/runs/<run>/ holds config.yaml, last.ckpt, log.csv, eval/<evaluation>.csv and, once
complete, metrics.csv + DONE. The suite's results.csv is the concatenation of finished runs'
metrics.csv, so runs never write to a shared file. Finished runs and finished evaluations are
skipped on a rerun; an interrupted training resumes from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import traceback
from pathlib import Path

import pandas as pd
import torch
import yaml

from .components import components
from .config import Suite
from .data import Dataset, Split
from .errors import BenchError
from .evaluations import EvalContext
from .evaluations.figures import training_inputs
from .executors import create_executor
from .executors.state import held_by_job, write_state
from .faults import kill_point
from .io import write_csv, write_text
from .logs import configure_logging
from .plugins import load_plugins
from .provenance import copy_to_results, device_name, environment, record
from .report import report_from_dir
from .rundir import TRAIN, Run, RunDir, output_dir, suite_runs
from .setups import differences, row_setup, setup_hash, training_setup
from .suite_data import load_data, select_device
from .training import check_checkpoint, eval_batch_size, precision, train_run
from .training.callbacks import check_logger, read_log

log = logging.getLogger("cutmix_bench")


def evaluate_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device, folder: RunDir,
                 cache_dir: Path, share: bool = True) -> list[dict]:
    """Load the last checkpoint and run every evaluation not already saved under eval/. `share`: see
    `EvalContext.share` (False only to compare with the engine before sharing, benchmarks/eval_engine.py)."""
    dataset, train, test = data
    model = components(suite).model(dataset.num_classes)
    state = check_checkpoint(folder.checkpoint, {f"model.{k}": v for k, v in model.state_dict().items()})
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    model = model.to(device).eval()
    if suite.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if suite.eval_compile:
        model.compile()  # in place, as in training
    ctx = EvalContext(model=model, dataset=dataset, test=test, device=device, batch_size=eval_batch_size(suite, device),
                      seed=run.seed, run_dir=folder.path, cache_dir=cache_dir, train=train,
                      channels_last=suite.train.channels_last, test_draw=test_draw(suite), share=share)
    record(folder.path, parameters=sum(p.numel() for p in model.parameters()), device=device_name(device))
    evaluations = components(suite).evaluations
    # Every evaluation's clean images, finished ones too: a resumed run forwards the same batches (see engine.py)
    ctx.plan_clean([evaluation.clean_positions(test, device.type) for evaluation in evaluations.values()])
    rows = []
    for label, evaluation in evaluations.items():
        path = folder.eval_file(label)
        if not path.exists():
            log.info("%s: evaluation %s", run.name, label)
            started = time.perf_counter()
            result = pd.DataFrame(evaluation.run(ctx))
            record(folder.path, seconds={label: time.perf_counter() - started})
            kill_point(f"evaluation:{run.name}:{label}")
            result.insert(0, "evaluation", label)
            write_csv(path, result)
        rows.extend(pd.read_csv(path).to_dict("records"))
    return rows


def test_draw(suite: Suite) -> tuple[int, int] | None:
    """How the run's test split was drawn from the dataset's test set (`EvalContext.test_draw`)."""
    return None if suite.data.test_subset is None else (suite.data.test_subset, suite.data.subset_seed)


def execute_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device, out: Path) -> None:
    folder = RunDir.of(out, run)
    folder.path.mkdir(parents=True, exist_ok=True)
    for stale in folder.path.rglob(".*.tmp"):  # left by a kill during an atomic write; we hold the run lock
        stale.unlink()
    setup, setup_file = training_setup(suite, run), folder.setup
    if setup_file.exists() and setup_file.read_text() != setup:  # checked by preflight; another process may race
        raise BenchError(f"{folder.path}: this run was started with another data / model / train / method setup; "
                         f"use another output_dir, or delete the run folder to retrain it")
    write_text(setup_file, setup)
    write_text(folder.config, yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False))
    train_file = folder.train_rows
    if not train_file.exists():
        started = time.perf_counter()
        write_csv(train_file, pd.DataFrame(train_run(suite, run, data, device, folder.path)))
        record(folder.path, seconds={TRAIN: time.perf_counter() - started})
    record(folder.path, train_images=len(data[1]), test_images=len(data[2]))
    rows = pd.read_csv(train_file).to_dict("records")
    rows += evaluate_run(suite, run, data, device, folder, out / "cache")
    frame = pd.DataFrame(rows)
    meta = {"run": run.name, "method": run.method, "seed": run.seed, "model": suite.model.name,
            "dataset": suite.data.name}
    for i, (key, value) in enumerate(meta.items()):
        frame.insert(i, key, value)
    write_csv(folder.metrics, frame)
    write_text(folder.done, "complete\n")
    kill_point(f"done:{run.name}")


def run_suite(suite: Suite, jobs: int = 1, wait: bool = True) -> tuple[Path, dict[str, str]]:
    """Run everything that is not finished; write results.csv and report.md. Returns the output
    directory and the failed runs with their errors (the caller decides the exit code).
    The suite's executor (executors/) decides where the runs execute; with wait=False (slurm only) the report
    lists the submitted runs as not finished (messages starting with executors.IN_FLIGHT).

    Everything that can be checked before training is checked first (recorded setups, resumable logs,
    the data against the training and evaluation parameters), so bad input stops the command with exit 2
    before any run starts. `jobs` > 1 starts that many worker processes (one thread each on CPU), capped
    at the runs to do and the CPUs (GPUs) available; workers, and separate processes started on the same
    output directory of this machine, share out the runs through per-run lock files."""
    executor = create_executor(suite.executor)
    if not wait and executor.local:
        raise BenchError("--no-wait: only with executor slurm (the local executor runs the runs in this command)")
    out = output_dir(suite)
    check_writable(out)
    device = select_device(suite.device) if executor.local else torch.device("cpu")  # a job checks its own
    if executor.local:  # fail before starting workers
        precision(suite.train.precision, device)
    check_logger(suite.train.logger)
    runs = suite_runs(suite)
    preflight(suite, out, runs)
    pending = [r for r in runs if not RunDir.of(out, r).finished(suite.evaluations)]
    data = None
    if pending:
        data = load_data(suite)
        check_data(suite, data)
    if pending or not (out / "environment.json").exists():  # the machine and command that did the work
        write_text(out / "environment.json", json.dumps(environment(device), indent=1, sort_keys=True) + "\n")
    if executor.local:
        jobs = capped_jobs(jobs, len(pending), device)
    unrecorded, in_flight = executor.execute(suite, out, [r.name for r in pending], work, jobs, data, wait)
    folders = {r.name: RunDir.of(out, r) for r in runs}
    failures = {name: f.failure() for name, f in folders.items() if f.failed.exists() and not f.is_done()}
    for name, error in {**unrecorded, **in_flight}.items():  # failures no FAILED file records; jobs in flight
        failures.setdefault(name, error)
    for r in runs:
        if not folders[r.name].is_done() and r.name not in failures:
            failures[r.name] = "not finished: still running in another process (rerun to complete the report)"
    write_results(out, runs)
    if not (out / "figures" / "training_inputs.png").exists():
        draw_training_inputs(suite, data or load_data(suite), out)
    copy_to_results(out, runs, suite.model_dump(mode="json"), failures)
    kill_point("report")
    report_from_dir(out)  # from what the results directory holds, as `cutmix-bench report` does
    return out, failures


def capped_jobs(jobs: int, pending: int, device: torch.device) -> int:
    """More workers than runs to do, or than CPUs (GPUs), only add memory and contention: cap with a warning."""
    if device.type == "cuda":
        limit, unit = torch.cuda.device_count(), "GPU(s)"
    else:
        limit = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        unit = "CPU(s)"
    capped = max(1, min(jobs, pending, limit))
    if capped < jobs:
        reason = "the runs left to do" if pending < limit else f"the {limit} {unit} available"
        log.warning("--jobs %d: capped at %d, %s", jobs, capped, reason)
    return capped


def preflight(suite: Suite, out: Path, runs: list[Run]) -> None:
    """Before anything trains: every run folder stays inside the output folder, every recorded setup equals
    the requested one (a finished run is never reused, nor a started one resumed, under another setup), and
    every log a run would resume from is readable. One BenchError names all that differs."""
    differing: dict[str, list[str]] = {}
    for run in runs:
        folder = RunDir(inside(out, RunDir.of(out, run).path))
        recorded = read_setup(folder)
        requested = training_setup(suite, run)
        if recorded is not None and recorded != requested:
            try:
                differing[run.name] = differences(json.loads(recorded), json.loads(requested), run.method)
            except json.JSONDecodeError:
                raise BenchError(f"{folder.setup}: not a valid setup record (expected JSON); delete the "
                                 f"run folder to retrain this run") from None
        if folder.log.exists() and not folder.is_done():
            read_log(folder.log)
    if differing:
        keys = list(dict.fromkeys(d for diffs in differing.values() for d in diffs)) or ["setup.json differs"]
        names = ", ".join(differing)
        raise BenchError(f"{out}: {len(differing)} run(s) ({names}) were made with another setup: {'; '.join(keys)}; "
                         f"use another output_dir, or delete those run folders under {out / 'runs'} to retrain them")


def read_setup(folder: RunDir) -> str | None:
    path = folder.setup
    try:
        return path.read_text() if path.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: unreadable setup record ({exc}); delete the run folder to retrain it") from None


def check_data(suite: Suite, data: tuple[Dataset, Split, Split]) -> None:
    """Checks of the loaded data against the suite that would otherwise fail (or mislead) after training."""
    dataset, train, test = data
    for name, split in (("train", train), ("test", test)):
        if len(split) == 0:
            raise BenchError(f"data: the {name} split of {suite.data.name} holds no images")
    if train.x.shape[1:] != test.x.shape[1:]:
        raise BenchError(f"data: train images are {list(train.x.shape[1:])} (H, W, C) but test images are "
                         f"{list(test.x.shape[1:])}; expected one image size")
    if not all(s > 0 for s in dataset.std):  # NaN fails too
        raise BenchError(f"data: the images of {suite.data.name} are constant (per-channel std {dataset.std}); "
                         f"normalisation would divide by zero; expected varied images")
    if suite.train.batch_size > len(train):
        raise BenchError(f"train.batch_size: {suite.train.batch_size} is larger than the training set ({len(train)} "
                         f"images)")
    side = max(test.x.shape[1:3])
    for label, params in suite.evaluations.items():
        sizes = params.get("sizes")
        if isinstance(sizes, list) and sizes and all(isinstance(s, int) for s in sizes) and max(sizes) > side:
            raise BenchError(f"evaluations.{label}.sizes: {max(sizes)} is larger than the image side {side}")


def inside(out: Path, path: Path) -> Path:
    """`path`, checked to lie inside the output folder (names are validated; this is the last line)."""
    if not path.resolve().is_relative_to(out.resolve()):
        raise BenchError(f"{path}: would be written outside the output folder {out}")
    return path


def draw_training_inputs(suite: Suite, data: tuple[Dataset, Split, Split], out: Path, count: int = 6) -> None:
    """The report's grid of what each method feeds the model: the first `count` training images."""
    dataset, train, _ = data
    count = min(count, len(train))
    methods = {}
    for label, method in components(suite).methods.items():
        if hasattr(method, "set_normalisation"):  # AugMix: shown as one of its views
            method.set_normalisation(dataset.mean, dataset.std)
        if method.input_space or hasattr(method, "loss"):  # hidden-feature mixing and PuzzleMix need the model
            methods[label] = method
    training_inputs(train.x[:count].numpy(), train.y[:count].numpy(), dataset.mean, dataset.std, methods,
                    dataset.num_classes, None, out / "figures")


def work(suite_dump: dict, worker: int | None = None, data: tuple[Dataset, Split, Split] | None = None,
         only: list[str] | None = None, lock: bool = True) -> dict[str, str]:
    """Train and evaluate every run (of `only`, if given) that is neither finished nor locked by another process.
    A pool worker (`worker` = its index) uses one CPU thread, or GPU number `worker` modulo the count.
    A failing run, even one whose folder cannot be written, never stops the others. Returns the failures
    that could not be recorded in a FAILED file (run name -> error). `lock=False`: a scheduler job that owns its
    run through state.json (executors/slurm.py), where flock may not work across machines."""
    suite = Suite.model_validate(suite_dump)
    load_plugins(suite.plugins)  # a spawned worker starts with the package's own registries only
    if worker is not None:  # a spawned worker process starts unconfigured
        configure_logging()
    out, device = output_dir(suite), select_device(suite.device)
    if worker is not None and device.type == "cpu":
        torch.set_num_threads(1)
    elif suite.train.threads:
        torch.set_num_threads(suite.train.threads)
    if worker is not None and device.type == "cuda":
        device = torch.device("cuda", worker % torch.cuda.device_count())
        torch.cuda.set_device(device)
    runs = [r for r in suite_runs(suite) if only is None or r.name in only]
    unrecorded: dict[str, str] = {}
    for i, run in enumerate(runs, 1):
        folder = RunDir.of(out, run)
        if folder.finished(suite.evaluations):
            log.info("[%d/%d] %s: finished earlier, skipped", i, len(runs), run.name)
            continue
        try:
            with folder.lock() if lock else contextlib.nullcontext(True) as locked:
                if not locked or folder.finished(suite.evaluations):
                    continue
                if lock and held_by_job(folder):  # a scheduler job of the slurm executor takes no lock
                    log.info("[%d/%d] %s: held by a scheduler job (state.json), skipped", i, len(runs), run.name)
                    continue
                data = data or load_data(suite)
                log.info("[%d/%d] %s: training on %s", i, len(runs), run.name, device)
                folder.failed.unlink(missing_ok=True)
                if lock:  # for `cutmix-bench status` (a scheduler job records its own state)
                    write_state(folder, fresh=True, state="running", cluster="process", job_id=str(os.getpid()),
                                host=socket.gethostname())
                execute_run(suite, run, data, device, out)
        except Exception as exc:  # one failed run must not stop the others; the report lists it
            if not record_failure(run, folder, exc):
                unrecorded[run.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return unrecorded


def record_failure(run: Run, folder: RunDir, exc: Exception) -> bool:
    """Log the error and write it to the run's FAILED file; False when that file cannot be written (disk
    full, read-only folder), which is logged too: the failure handler never raises."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    log.error("%s failed: %s: %s", run.name, type(exc).__name__, message)
    try:
        write_text(folder.failed, f"{type(exc).__name__}: {message}\n\n{traceback.format_exc()}")
    except Exception as again:  # noqa: BLE001 (the failure handler must not fail the command)
        log.error("%s: could not record the failure in %s: %s", run.name, folder.failed, again)
        return False
    return True


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
    write_csv(out / "results.csv", results)
    write_text(out / "setups.json", json.dumps(setups, indent=2, sort_keys=True) + "\n")
    return results


def check_recorded(suite: Suite, out: Path, runs: list[Run]) -> None:
    """For `report`: the finished runs were made with the setup the suite describes (its header says so)."""
    preflight(suite, out, [r for r in runs if RunDir.of(out, r).is_done()])


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"output_dir: {out} is not writable ({exc.strerror})") from exc
