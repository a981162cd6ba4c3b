"""Named crash points for the resume tests: with CUTMIX_BENCH_KILL_AT=<point> the process SIGKILLs
itself on reaching that point (no cleanup, exactly like `kill -9`). Unset, this does nothing."""

import os
import signal


def kill_point(name: str) -> None:
    if os.environ.get("CUTMIX_BENCH_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
