"""Executors: how a suite's pending runs get done, chosen by the suite's `executor:` (or `--executor`).

`local` (local.py) trains them on this machine, one after another or `jobs` worker processes at a time;
`slurm` (slurm.py) submits one submitit job per run. Executors are a registry: a plug-in adds one with
`@EXECUTORS.register("name")` on a class taking the suite's `ExecutorConfig` (the `Executor` protocol below).
The runner keeps everything around them (preflight, data checks, results.csv, the report) and hands the
executor its `work` function, so that this package never imports the runner (docs/scaleout.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..config import ExecutorConfig, Suite
from ..registry import Registry

Work = Callable[..., dict[str, str]]  # executing.work: (suite dump, worker, data, only, lock) -> unrecorded failures
IN_FLIGHT = "not finished: "  # the prefix of a run's message in the report while its job is queued or running


class Executor(Protocol):
    local: bool  # runs in this machine's processes: the runner caps `jobs` at its CPUs (GPUs)

    def execute(self, suite: Suite, out: Path, pending: list[str], work: Work, jobs: int, data: Any,
                wait: bool) -> tuple[dict[str, str], dict[str, str]]:
        """Get the `pending` runs done (or submitted, with wait=False). Returns the failures no FAILED file
        records, and the runs still in flight (run name -> message starting with IN_FLIGHT)."""
        ...


EXECUTORS: Registry[Executor] = Registry("executor")

from . import local, slurm  # noqa: E402,F401  (registration)


def create_executor(config: ExecutorConfig) -> Executor:
    return EXECUTORS.get(config.name, "executor.name")(config)
