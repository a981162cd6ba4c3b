"""The local executor: the runs on this machine, one after another in this process or `jobs` spawned worker
processes at a time (one CPU thread, or one GPU, each). Workers share out the runs through the run folders'
flock files (rundir.RunDir.lock): all of them run on this machine, where flock is reliable; separate commands
started on the same output folder on this machine join in the same way."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from ..config import ExecutorConfig, Suite
from . import EXECUTORS, Work


@EXECUTORS.register("local")
class LocalExecutor:
    local = True

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config

    def execute(self, suite: Suite, out: Path, pending: list[str], work: Work, jobs: int, data: Any,
                wait: bool) -> tuple[dict[str, str], dict[str, str]]:
        if jobs > 1:
            context = multiprocessing.get_context("spawn")
            with context.Pool(jobs) as pool:
                unrecorded = pool.starmap(work, [(suite.model_dump(), worker) for worker in range(jobs)])
        else:
            unrecorded = [work(suite.model_dump(), data=data)]
        return {name: error for errors in unrecorded for name, error in errors.items()}, {}
