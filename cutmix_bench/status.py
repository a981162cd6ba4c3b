"""`cutmix-bench status SUITE`: where each run of a suite stands, from its run folder alone: done, running,
queued, requeued, failed or to do, with its job id and last epoch, and a one-line count. A run's job is its
state.json (executors/state.py), checked against the scheduler where submitit can tell cheaply (a process of
this machine, sacct on SLURM); a job that ended without finishing its run shows as to do."""

from __future__ import annotations

import csv
from collections import Counter

from .config import Suite
from .executors.state import ACTIVE, job_alive, read_state
from .rundir import RunDir, output_dir, suite_runs

ORDER = ("done", "running", "requeued", "queued", "failed", "to do")


def run_status(suite: Suite, folder: RunDir) -> dict[str, str]:
    """{run, state, job, epoch, note} of one run folder."""
    state = read_state(folder)
    row = {"run": folder.name, "state": "to do", "job": str(state.get("job_id") or ""),
           "epoch": last_epoch(folder, suite.train.epochs), "note": ""}
    if folder.finished(suite.evaluations):
        row["state"] = "done"
    elif folder.has_failed():
        row["state"], row["note"] = "failed", folder.failure()
    elif state.get("state") in ACTIVE:
        alive = job_alive(state)
        if alive is False:
            row["note"] = f"its job ended without finishing it ({state['state']} when last recorded)"
        else:
            row["state"] = state["state"]
            row["note"] = "" if alive else "not verified: the scheduler cannot tell from here"
    elif folder.is_done():
        row["note"] = f"trained; to evaluate: {', '.join(folder.missing(suite.evaluations))}"
    if row["state"] == "to do" and not row["note"] and folder.checkpoint.exists():
        row["note"] = "resumes from last.ckpt"
    return row


def last_epoch(folder: RunDir, epochs: int) -> str:
    """`done/total` epochs from log.csv ('' before the first epoch, '?' for an unreadable log)."""
    if not folder.log.exists():
        return ""
    try:  # the csv module, not pandas: status answers in well under a second (pandas alone costs ~0.5 s)
        with folder.log.open(newline="") as handle:
            logged = [int(float(row["epoch"])) for row in csv.DictReader(handle)]
    except (OSError, KeyError, ValueError, TypeError, csv.Error):  # `run` names the damage, status only reports
        return "?"
    return f"{max(logged) + 1}/{epochs}" if logged else f"0/{epochs}"


def status_table(suite: Suite) -> str:
    """One line per run and the summary line."""
    out = output_dir(suite)
    rows = [run_status(suite, RunDir.of(out, run)) for run in suite_runs(suite)]
    widths = {key: max(len(key), *(len(r[key]) for r in rows)) for key in ("run", "state", "job", "epoch")}
    lines = ["  ".join(key.ljust(widths[key]) for key in widths) + "  note"]
    lines += ["  ".join(r[key].ljust(widths[key]) for key in widths) + "  " + r["note"] for r in rows]
    counts = Counter(r["state"] for r in rows)
    lines.append(f"{out}: {len(rows)} run(s): " + ", ".join(f"{counts[s]} {s}" for s in ORDER if counts[s] or s in
                                                                   ("done", "to do")))
    return "\n".join(line.rstrip() for line in lines)
