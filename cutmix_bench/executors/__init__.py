"""Executors: how a suite's pending runs get done, chosen by the suite's `executor:` (or `--executor`).

`local` (local.py) trains them on this machine, one after another or `jobs` worker processes at a time;
`slurm` (slurm.py) submits one submitit job per run. The runner keeps everything around them (preflight, data
checks, results.csv, the report) and hands the executor its `work` function, so that this package never imports
the runner (docs/scaleout.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..config import ExecutorConfig, Suite

Work = Callable[..., dict[str, str]]  # executing.work: (suite dump, worker, data, only, lock) -> unrecorded failures
IN_FLIGHT = "not finished: "  # the prefix of a run's message in the report while its job is queued or running


class Executor(Protocol):
    local: bool  # runs in this machine's processes: the runner caps `jobs` at its CPUs (GPUs)

    def execute(self, suite: Suite, out: Path, pending: list[str], work: Work, jobs: int, data: Any,
                wait: bool) -> tuple[dict[str, str], dict[str, str]]:
        """Get the `pending` runs done (or submitted, with wait=False). Returns the failures no FAILED file
        records, and the runs still in flight (run name -> message starting with IN_FLIGHT)."""
        ...


def create_executor(config: ExecutorConfig) -> Executor:
    from .local import LocalExecutor
    from .slurm import SlurmExecutor

    executors: dict[str, Callable[[ExecutorConfig], Executor]] = {"local": LocalExecutor, "slurm": SlurmExecutor}
    return executors[config.name](config)
