"""A run's scheduler state: `state.json` in its run folder (RunDir.state) names the job that owns the run (a
submission token, its job id, log files, host) and what it is doing: queued, running, requeued (preempted or
timed out, waiting to resume), done, failed, interrupted (ended without finishing: resubmit).

The local executor records the process that holds the run's lock (cluster `process`, job id = its pid). For
the slurm executor, the submitting command writes it before the submission (owner token, `queued`) and adds the
job id after it; from then on only the job writes it. Every write is atomic (io.write_text: temp file + rename),
which network file systems keep, whereas flock across machines they may not: a job whose token is not the
recorded one (the run was resubmitted since) leaves the run alone."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from ..io import write_text
from ..rundir import RunDir

ACTIVE = ("queued", "running", "requeued")  # a job holds the run


def read_state(folder: RunDir) -> dict[str, Any]:
    """The recorded state, or {} when there is none; a damaged file reads as none (no job owns the run)."""
    try:
        state = json.loads(folder.state.read_text()) if folder.state.exists() else {}
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(folder: RunDir, fresh: bool = False, **fields: Any) -> dict[str, Any]:
    """Update the recorded state with `fields` (and the time), atomically; `fresh`: replace it (a new
    submission). Returns the new state."""
    state = {**({} if fresh else read_state(folder)), **fields, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_text(folder.state, json.dumps(state, indent=1, sort_keys=True) + "\n")
    return state


def job_alive(state: dict[str, Any]) -> bool | None:
    """Whether the recorded job still holds its run: True or False, None where nobody can tell from here (a
    local job of another host, a scheduler that does not answer). Asks the scheduler through submitit (sacct)."""
    if state.get("state") not in ACTIVE or not state.get("job_id"):
        return False
    cluster, job_id = state.get("cluster"), str(state["job_id"])
    if cluster == "process":  # the local executor: the process that holds the run's lock
        return process_alive(state.get("host"), job_id)
    if cluster == "local":  # submitit's local executor: the job id is its controller's process id
        return process_alive(state.get("submit_host"), job_id)
    if cluster == "slurm":
        import submitit

        scheduler_state = submitit.SlurmJob(folder=state.get("job_folder", "."), job_id=job_id).state
        if scheduler_state.startswith("UNKNOWN"):
            return None
        return scheduler_state.split()[0] in SLURM_ACTIVE
    return False


SLURM_ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
                "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}


def held_by_job(folder: RunDir) -> bool:
    """A live scheduler job owns the run (for a local process, which holds the run's lock: the lock says it)."""
    state = read_state(folder)
    return state.get("cluster") != "process" and job_alive(state) is True


def process_alive(host: Any, pid: str) -> bool | None:
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return None
    return True
