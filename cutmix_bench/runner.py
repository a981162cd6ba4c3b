"""Runs a suite: every (method, seed) is one run, trained, evaluated and written to its own folder.

The jobs are one module each: preflight.py plans (checks before anything trains, worker count), the suite's
executor (executors/) gets the pending runs done through executing.py (train, then evaluating.py), and
finish.py writes results.csv, the metadata and the report. The suite's results.csv is the concatenation of
finished runs' metrics.csv, so runs never write to a shared file. Finished runs and finished evaluations are
skipped on a rerun; an interrupted training resumes from its last checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import Suite
from .errors import BenchError
from .executing import work
from .executors import create_executor
from .finish import finish_suite
from .io import write_text
from .plugins import plugin_sources
from .preflight import capped_jobs, check_data, check_methods, check_writable, preflight
from .provenance import environment
from .rundir import ResultsDir, RunDir, output_dir, suite_runs
from .suite_data import load_data, select_device
from .training import precision
from .training.callbacks import check_logger


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
    # the suite as run (overrides applied), before the first training, so `status DIR` and `resume DIR` can read
    # it; a recorded one is left to the end of the suite (finish.py), so that a rerun refused later changes nothing
    if not ResultsDir(out).suite.exists():
        write_text(ResultsDir(out).suite, json.dumps(suite.model_dump(mode="json"), indent=1) + "\n")
    pending = [r for r in runs if not RunDir.of(out, r).finished(suite.evaluations)]
    data = None
    if pending:
        data = load_data(suite)
        check_data(suite, data)
        check_methods(suite, data)
    if pending or not ResultsDir(out).environment.exists():  # the machine and command that did the work
        recorded = environment(device, plugin_sources(suite.plugins))
        write_text(ResultsDir(out).environment, json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    if executor.local:
        jobs = capped_jobs(jobs, len(pending), device)
    unrecorded, in_flight = executor.execute(suite, out, [r.name for r in pending], work, jobs, data, wait)
    return out, finish_suite(suite, out, runs, {**unrecorded, **in_flight}, data)
