"""Executing runs: `work` (what every executor hands its workers or jobs) takes the runs no other process holds
and, for each, `execute_run`: train or resume (the training rows), evaluate, then metrics.csv and DONE. A
failing run is recorded in its FAILED file and never stops the others."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import traceback
from pathlib import Path

import pandas as pd
import torch
import yaml

from .config import Suite
from .data import Dataset, Split
from .errors import BenchError
from .evaluating import evaluate_run
from .executors.state import held_by_job, write_state
from .faults import kill_point
from .io import write_csv, write_text
from .logs import configure_logging
from .plugins import load_plugins
from .provenance import record
from .rundir import TRAIN, ResultsDir, Run, RunDir, output_dir, suite_runs
from .setups import same_setup, training_setup
from .suite_data import load_data, select_device
from .summary import headline_values, suite_headlines
from .training import precision, train_run
from .training.callbacks import log_evaluations

log = logging.getLogger("cutmix_bench")


def execute_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device, out: Path) -> None:
    folder = RunDir.of(out, run)
    folder.path.mkdir(parents=True, exist_ok=True)
    for stale in folder.path.rglob(".*.tmp"):  # left by a kill during an atomic write; we hold the run lock
        stale.unlink()
    setup, setup_file = training_setup(suite, run), folder.setup
    if setup_file.exists() and not same_setup(setup_file.read_text(), setup):  # preflight checked; a race may not
        raise BenchError(f"{folder.path}: this run was started with another data / model / train / method setup; "
                         f"use another output_dir, or delete the run folder to retrain it")
    write_text(setup_file, setup)
    write_text(folder.config, yaml.safe_dump(resolved_suite(suite), sort_keys=False))
    train_file = folder.train_rows
    if not train_file.exists():
        started = time.perf_counter()
        write_csv(train_file, pd.DataFrame(train_run(suite, run, data, device, folder.path)))
        record(folder.path, seconds={TRAIN: time.perf_counter() - started}, devices=suite.train.devices,
               strategy=suite.strategy_ran(), nodes=suite.executor.nodes)  # what trained (a resume: its last part)
    record(folder.path, train_images=len(data[1]), test_images=len(data[2]),
           precision=precision(suite.train.precision, device))  # what ran: `auto` resolved
    rows = pd.read_csv(train_file).to_dict("records")
    rows += evaluate_run(suite, run, data, device, folder, ResultsDir(out).cache)
    meta = {"run": run.name, "method": run.method, "seed": run.seed, "model": suite.model.name,
            "dataset": suite.data.name}
    log_evaluations(folder.path, suite.train.logger, tracked_values(suite, with_meta(rows, meta)))
    finish_run(folder, rows, meta)
    kill_point(f"done:{run.name}")


def resolved_suite(suite: Suite) -> dict:
    """The suite as the run folder's config.yaml holds it: `train.strategy` the one that trains on several devices
    (ddp_spawn or ddp; `auto` stays for one device), still a valid suite."""
    dump = suite.model_dump(mode="json")
    if suite.train.devices > 1:
        dump["train"]["strategy"] = suite.strategy_ran()
    return dump


def with_meta(rows: list[dict], meta: dict) -> pd.DataFrame:
    """The run's rows, each led by the run's `meta` columns (metrics.csv's form)."""
    frame = pd.DataFrame(rows)
    for i, (key, value) in enumerate(meta.items()):
        frame.insert(i, key, value)
    return frame


def tracked_values(suite: Suite, frame: pd.DataFrame) -> dict[str, float]:
    """The run's headline values (the report's summary rows) under stable tracker names
    `eval/<evaluation label>/<headline>`."""
    values = headline_values(frame, suite_headlines(suite))
    keys = {h.key: f"eval/{h.evaluation}/{h.key.split(':')[0]}" for h in suite_headlines(suite)}
    return {keys[row.headline]: float(row.value) for row in values.itertuples()}


def finish_run(folder: RunDir, rows: list[dict], meta: dict) -> None:
    """metrics.csv (the rows, each led by the run's `meta` columns) and then DONE: the run is complete."""
    write_csv(folder.metrics, with_meta(rows, meta))
    write_text(folder.done, "complete\n")


def work(suite_dump: dict, worker: int | None = None, data: tuple[Dataset, Split, Split] | None = None,
         only: list[str] | None = None, lock: bool = True, rank: int = 0) -> dict[str, str]:
    """Train and evaluate every run (of `only`, if given) that is neither finished nor locked by another process.
    A pool worker (`worker` = its index) uses one CPU thread, or GPU number `worker` modulo the count.
    A failing run, even one whose folder cannot be written, never stops the others. Returns the failures
    that could not be recorded in a FAILED file (run name -> error). `lock=False`: a scheduler job that owns its
    run through state.json (executors/slurm.py), where flock may not work across machines. `rank` > 0: a task other
    than global rank 0 of a run over several nodes (executor.nodes, started by SLURM): it takes its part in training
    and leaves the run folder to rank 0, which alone evaluates and writes the run's files."""
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
    if rank:
        for run in runs:
            if not RunDir.of(out, run).finished(suite.evaluations):
                train_run(suite, run, data or load_data(suite), device, RunDir.of(out, run).path)
        return {}
    unrecorded: dict[str, str] = {}
    for i, run in enumerate(runs, 1):
        folder = RunDir.of(out, run)
        if folder.finished(suite.evaluations):
            if not worker:  # said once: every pool worker walks the same list
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
                log.info("[%d/%d] %s: training on %s", i, len(runs), run.name, suite.training_devices(device))
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
    full, read-only folder), which is logged too: the failure handler never raises. A finished run whose new
    evaluation failed is a failed run: its DONE goes (DONE and FAILED never coexist), so the report lists it
    among the failures and a rerun evaluates it again (its training log and saved evaluations are kept)."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    log.error("%s failed: %s: %s", run.name, type(exc).__name__, message)
    try:
        folder.done.unlink(missing_ok=True)
        write_text(folder.failed, f"{type(exc).__name__}: {message}\n\n{traceback.format_exc()}")
    except Exception as again:  # noqa: BLE001 (the failure handler must not fail the command)
        log.error("%s: could not record the failure in %s: %s", run.name, folder.failed, again)
        return False
    return True
