"""The slurm executor: one submitit job per run (all of them one job array), each job training and evaluating
exactly one run folder. SLURM signals a job before preempting it or at its time limit; submitit then calls the
job's `checkpoint` and requeues it, and the requeued job resumes the run from its last.ckpt. The command waits for
the jobs (or, with --no-wait, returns once they are submitted).

`executor.cluster` is submitit's cluster type: `slurm` on a cluster; `local` (jobs as processes of this machine,
signals and requeues included) runs the very same code without a cluster, which is how the tests run it. Job
ids, log files and states go to each run's state.json (state.py)."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from ..config import ExecutorConfig, Suite
from ..errors import BenchError
from ..logs import configure_logging
from ..rundir import Run, RunDir, suite_runs
from . import EXECUTORS, IN_FLIGHT, Work
from .state import ACTIVE, job_alive, read_state, write_state

log = logging.getLogger("cutmix_bench")
# <output_dir>/submitit/: submitit's pickles and the jobs' stdout / stderr, each file named by its job id. One
# folder, not submitit's `%j` folder pattern: submitit's local controller (1.5.4, local.py `start_tasks`) creates
# the pattern itself as a folder literally named `%j` beside the jobs' folders.
SUBMITIT_DIR = "submitit"


def import_submitit() -> ModuleType:
    try:
        import submitit
    except ImportError:
        raise BenchError("executor.name: slurm needs submitit, which is not installed (pip install "
                         "'cutmix-bench[slurm]')") from None
    return submitit


class RunJob:
    """One run as a submitit job. submitit requeues a job whose function has a `checkpoint` method (its
    Checkpointable protocol) with what that method returns: this same job, which resumes from the run's own
    last.ckpt, so nothing but the owner token needs to travel. A job whose token is no longer the run's recorded
    one (the run was resubmitted since) leaves the run alone."""

    def __init__(self, work: Work, suite_dump: dict, out: Path, run: Run, token: str) -> None:
        self.work, self.suite_dump, self.out, self.run, self.token = work, suite_dump, out, run, token

    @property
    def folder(self) -> RunDir:
        return RunDir.of(self.out, self.run)

    def owns_run(self) -> bool:
        return read_state(self.folder).get("token") == self.token

    def __call__(self) -> dict[str, str]:
        import torch

        submitit = import_submitit()
        configure_logging()
        if not self.owns_run():
            log.warning("%s: resubmitted since this job was queued; this job leaves it alone", self.run.name)
            return {}
        env = submitit.JobEnvironment()
        if not self.suite_dump["train"].get("threads") and hasattr(os, "sched_getaffinity"):
            torch.set_num_threads(len(os.sched_getaffinity(0)))  # the CPUs the scheduler gave the task
        if env.global_rank != 0:  # a run over several nodes: this task trains its rank, rank 0 keeps the folder
            return self.work(self.suite_dump, only=[self.run.name], lock=False, rank=env.global_rank)
        attempt = read_state(self.folder).get("attempt", 0) + 1
        write_state(self.folder, state="running", job_id=env.job_id, host=env.hostname, pid=os.getpid(),
                    attempt=attempt, stdout=str(env.paths.stdout), stderr=str(env.paths.stderr))
        unrecorded = self.work(self.suite_dump, only=[self.run.name], lock=False)
        finished = self.folder.finished(self.suite_dump["evaluations"])
        write_state(self.folder, state="done" if finished else "failed")
        return unrecorded

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption or time-out, in global rank 0 only (the other tasks end with the job):
        requeue this job (None: not requeued)."""
        submitit = import_submitit()
        if not self.owns_run():
            return None
        write_state(self.folder, state="requeued")
        log.warning("%s: preempted or timed out; requeued, it resumes from %s", self.run.name, self.folder.checkpoint)
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def parameters(suite: Suite, cfg: ExecutorConfig) -> dict[str, Any]:
    """submitit's AutoExecutor parameters: generic ones, and slurm_* ones that other cluster types ignore. On one
    node a job has one task: a multi-device run starts its own ranks (Lightning ddp_spawn). Over `nodes` > 1 every
    rank is a task, train.devices / nodes of them per node, each with its share of the run's GPUs and CPUs."""
    tasks = suite.train.devices // cfg.nodes if cfg.nodes > 1 else 1
    params: dict[str, Any] = {"name": f"cutmix-bench-{suite.name}", "timeout_min": cfg.timeout_min,
                              "nodes": cfg.nodes, "tasks_per_node": tasks,
                              "gpus_per_node": cfg.gpus_per_run // cfg.nodes,
                              "cpus_per_task": max(1, cfg.cpus_per_run // (tasks * cfg.nodes)),
                              "slurm_array_parallelism": cfg.array_parallelism}
    if cfg.mem_gb is not None:
        params["mem_gb"] = cfg.mem_gb
    for key in ("partition", "account", "qos", "constraint", "exclude", "mail_user", "mail_type"):
        if getattr(cfg, key) is not None:
            params[f"slurm_{key}"] = getattr(cfg, key)
    if cfg.setup:
        params["slurm_setup"] = list(cfg.setup)
    if cfg.additional_parameters:
        params["slurm_additional_parameters"] = dict(cfg.additional_parameters)
    return params


@EXECUTORS.register("slurm")
class SlurmExecutor:
    local = False

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config

    def execute(self, suite: Suite, out: Path, pending: list[str], work: Work, jobs: int, data: Any,
                wait: bool) -> tuple[dict[str, str], dict[str, str]]:
        cfg = self.config
        submitit = import_submitit()
        if suite.train.devices > 1 and cfg.gpus_per_run and cfg.gpus_per_run < suite.train.devices:
            raise BenchError(f"executor.gpus_per_run: {cfg.gpus_per_run} is fewer than train.devices "
                             f"({suite.train.devices}); expected at least as many GPUs per job as devices per run")
        runs = {r.name: r for r in suite_runs(suite)}
        in_flight, jobs_of = {}, {}
        for name in pending:
            state = read_state(RunDir.of(out, runs[name]))
            if job_alive(state):  # submitted by an earlier command and still queued or running
                in_flight[name] = f"{IN_FLIGHT}{state['state']} as job {state['job_id']} (submitted earlier)"
            else:
                jobs_of[name] = RunJob(work, suite.model_dump(), out, runs[name], uuid.uuid4().hex)
        if not jobs_of:
            return {}, in_flight
        try:
            executor = submitit.AutoExecutor(folder=out / SUBMITIT_DIR, cluster=cfg.cluster)
        except RuntimeError as exc:  # submitit's "Could not detect srun": not a SLURM machine
            raise BenchError(f"executor.cluster: {cfg.cluster}: {exc} (submit from a login node of the "
                             f"cluster)") from None
        executor.update_parameters(**parameters(suite, cfg))
        for job in jobs_of.values():  # owned before it can start
            write_state(job.folder, fresh=True, state="queued", token=job.token, cluster=cfg.cluster, attempt=0,
                        submit_host=socket.gethostname(), submitted=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        with executor.batch():
            submitted = {name: executor.submit(job) for name, job in jobs_of.items()}
        for name, job in submitted.items():
            write_state(jobs_of[name].folder, job_id=job.job_id, job_folder=str(job.paths.folder),
                        stdout=str(job.paths.stdout), stderr=str(job.paths.stderr))
            log.info("%s: submitted as job %s (%s)", name, job.job_id, cfg.cluster)
        if not wait:
            return {}, {**in_flight, **{name: f"{IN_FLIGHT}queued as job {job.job_id} (see `cutmix-bench status`)"
                                        for name, job in submitted.items()}}
        unrecorded: dict[str, str] = {}
        for name, job in submitted.items():
            try:
                unrecorded.update(job.results()[0] or {})  # task 0: global rank 0 keeps the run folder
            except Exception as exc:  # noqa: BLE001 (the job died without a result: killed, cancelled, node lost)
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                folder = jobs_of[name].folder
                if jobs_of[name].owns_run() and read_state(folder).get("state") in ACTIVE:
                    write_state(folder, state="interrupted", error=message)
                if not folder.failed.exists():
                    unrecorded[name] = f"job {job.job_id} ended without finishing the run ({message}); rerun to " \
                                       f"resubmit it"
        return unrecorded, in_flight
