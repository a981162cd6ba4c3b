"""Named crash points for the resume tests: with CUTMIX_BENCH_KILL_AT=<point> the process SIGKILLs
itself on reaching that point (no cleanup, exactly like `kill -9`). CUTMIX_BENCH_KILL_SIGNAL=USR2 sends that
signal instead (submitit's preemption signal: a job checkpoints and requeues itself), and with
CUTMIX_BENCH_KILL_ONCE=<file> only the first process to reach the point fires (it creates the file), so that a
requeued job runs on. Unset, this does nothing."""

import os
import signal


def kill_point(name: str) -> None:
    if os.environ.get("CUTMIX_BENCH_KILL_AT") != name:
        return
    once = os.environ.get("CUTMIX_BENCH_KILL_ONCE")
    if once:
        try:
            open(once, "x").close()
        except FileExistsError:
            return
    os.kill(os.getpid(), getattr(signal, "SIG" + os.environ.get("CUTMIX_BENCH_KILL_SIGNAL", "KILL")))
