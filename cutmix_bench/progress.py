"""Progress of `cutmix-bench run`: one bar for the suite (runs done / total, elapsed, ETA) and one per run in
progress (its epochs, then its evaluations), drawn with `rich` on a terminal; elsewhere (CI logs, a file) a
plain line now and then instead of control characters; nothing with `--quiet`.

The parent learns the state by polling the run folders (log.csv rows, eval/<label>.csv files, DONE, FAILED),
not from messages sent by the workers: the folders are written anyway, atomically, by any process working
on the suite (a local worker pool, a cluster job, a second command on the same output_dir), so progress
needs no channel to the workers and no change to how runs are executed or shared out."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import Suite
from .logs import LEVEL_ENV
from .rundir import RunDir, output_dir, suite_runs

log = logging.getLogger("cutmix_bench")

POLL_SECONDS = 1.0  # between two looks at the run folders
PLAIN_SECONDS = 30.0  # between two plain progress lines (a run that ends prints one at once)


@dataclass(frozen=True)
class RunState:
    """One run as its folder shows it. A unit of work is an epoch or an evaluation."""

    name: str
    state: str  # "done", "failed" (this session), "running" (started this session), "waiting"
    epochs_done: int
    epochs: int
    evaluations_done: int
    evaluations: int
    current: str  # what it does now: "epoch 3/10", "evaluation occlusion", ""

    @property
    def units(self) -> int:
        return self.epochs + self.evaluations

    @property
    def units_done(self) -> int:
        """A failed run counts as worked off: nothing more will be done on it in this session."""
        return self.units if self.state in ("done", "failed") else self.epochs_done + self.evaluations_done


def _rows(path: Path) -> int:
    """Data lines of a CSV file (log.csv: one per epoch); 0 when absent."""
    try:
        return max(0, len(path.read_bytes().splitlines()) - 1)
    except OSError:
        return 0


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _since(path: Path, since: float) -> bool:
    mtime = _mtime(path)
    return mtime is not None and mtime >= since


def run_state(folder: RunDir, epochs: int, evaluations: list[str], since: float) -> RunState:
    """The state of one run folder; `since` is the session's start (epoch seconds): a FAILED file or a
    setup.json (written when a process starts on the run) older than that belongs to an earlier session."""
    trained = folder.train_rows.exists()
    epochs_done = epochs if trained else min(epochs, _rows(folder.log))
    missing = folder.missing(evaluations)
    if folder.finished(evaluations):
        state = "done"
    elif folder.failed.exists() and _since(folder.failed, since):
        state = "failed"
    elif _since(folder.setup, since):
        state = "running"
    else:
        state = "waiting"
    if state != "running":
        current = ""
    elif not trained:
        current = f"epoch {min(epochs_done + 1, epochs)}/{epochs}"
    else:
        current = "evaluation " + (missing[0] if missing else "results")
    return RunState(folder.name, state, epochs_done, epochs, len(evaluations) - len(missing), len(evaluations),
                    current)


def eta(elapsed: float, units_at_start: int, units_now: int, units_total: int) -> float | None:
    """Seconds left at the rate of this session so far (units done since the start per second of `elapsed`,
    the time since work on a run began); None until a unit has been done. With N workers the rate is that of
    all N together."""
    done = units_now - units_at_start
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, (units_total - units_now) * elapsed / done)


@dataclass(frozen=True)
class Snapshot:
    runs: list[RunState]
    elapsed: float  # since the command started
    units_at_start: int
    working: float  # since a process of this session started on a run: the rate leaves out data loading and
    # worker start-up, which are not repeated per run
    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.runs)

    @property
    def units_now(self) -> int:
        return sum(r.units_done for r in self.runs)

    @property
    def units_total(self) -> int:
        return sum(r.units for r in self.runs)

    @property
    def eta(self) -> float | None:
        return eta(self.working, self.units_at_start, self.units_now, self.units_total)

    def summary(self, final: bool = False) -> str:
        """`3/8 runs done, 1 failed, elapsed 1:02, ETA 4:10` (no ETA once the work has ended)."""
        failed, left = self.count("failed"), self.eta
        text = (f"{self.count('done')}/{len(self.runs)} runs done{f', {failed} failed' if failed else ''}, "
                f"elapsed {clock(self.elapsed)}")
        return text if final else f"{text}, ETA {clock(left) if left is not None else '?'}"


def snapshot(suite: Suite, since: float, units_at_start: int | None = None) -> Snapshot:
    out, labels = output_dir(suite), list(suite.evaluations)
    folders = [RunDir.of(out, r) for r in suite_runs(suite)]
    runs = [run_state(folder, suite.train.epochs, labels, since) for folder in folders]
    units = sum(r.units_done for r in runs) if units_at_start is None else units_at_start
    started = [t for t in (_mtime(f.setup) for f in folders) if t is not None and t >= since]
    now = time.time()
    return Snapshot(runs, now - since, units, now - min(started) if started else 0.0)


def clock(seconds: float) -> str:
    """`4:05`, `1:02:03`."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Lines:
    """Where stderr is not a terminal: a plain log line every PLAIN_SECONDS and whenever a run ends."""

    def __init__(self) -> None:
        self.last_line, self.ended = 0.0, -1

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def show(self, now: Snapshot, final: bool = False) -> None:
        ended = now.count("done") + now.count("failed")
        if final or ended != self.ended or time.monotonic() - self.last_line >= PLAIN_SECONDS:
            running = [f"{r.name} {r.current}" for r in now.runs if r.state == "running"]
            log.info("progress: %s%s", now.summary(final), f"; running: {', '.join(running)}" if running else "")
            self.last_line, self.ended = time.monotonic(), ended


class Bars:
    """On a terminal: rich bars on stderr. Log lines of this process are printed above them (rich redirects
    stderr while the bars are live); the workers' own info lines are off (LEVEL_ENV) as the bars say the same."""

    def __init__(self, title: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), console=self.console, auto_refresh=False,
                                 redirect_stderr=True, redirect_stdout=True)
        self.suite_task = self.progress.add_task(f"suite {title}", total=None, info="")
        self.tasks: dict[str, int] = {}
        self.ended: set[str] | None = None  # runs whose end was shown (or that had ended before the command)
        self.streams: list[tuple[logging.StreamHandler, object]] = []

    def __enter__(self) -> Bars:
        self.progress.start()
        for handler in logging.getLogger().handlers:  # they hold the stderr of before the redirection
            if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.__stderr__, self.console.file):
                self.streams.append((handler, handler.setStream(sys.stderr)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handler, stream in self.streams:
            handler.setStream(stream)
        self.progress.stop()

    def show(self, now: Snapshot, final: bool = False) -> None:
        self.progress.update(self.suite_task, total=len(now.runs), completed=now.count("done") + now.count("failed"),
                             info=now.summary(final).split(", ", 1)[1])
        if self.ended is None:
            self.ended = {r.name for r in now.runs if r.state in ("done", "failed")}
        for run in now.runs:
            task = self.tasks.get(run.name)
            if run.state == "running":
                if task is None:
                    task = self.tasks[run.name] = self.progress.add_task(run.name, total=run.units, info="")
                self.progress.update(task, completed=run.units_done, info=run.current)
                continue
            if task is not None:
                self.progress.remove_task(self.tasks.pop(run.name))
            if run.state in ("done", "failed") and run.name not in self.ended:  # also a run too quick to be seen
                self.ended.add(run.name)
                self.console.print(f"{run.name}: {'finished' if run.state == 'done' else 'failed'}")
        self.progress.refresh()


@contextlib.contextmanager
def watch(suite: Suite, quiet: bool = False, terminal: bool | None = None) -> Iterator[None]:
    """Show the progress of the suite while the body runs it. `terminal` None: bars when stderr is a terminal
    (rich's test, which honours TTY_COMPATIBLE / FORCE_COLOR), else plain lines; `quiet`: nothing."""
    if quiet:
        yield
        return
    since = time.time()
    if terminal is None:
        from rich.console import Console

        terminal = Console(stderr=True).is_terminal
    start = snapshot(suite, since)
    display = Bars(suite.name) if terminal else Lines()
    stop = threading.Event()
    saved = os.environ.get(LEVEL_ENV), logging.getLogger().level

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            with contextlib.suppress(Exception):  # a glitch in showing progress must never fail the suite
                display.show(snapshot(suite, since, start.units_at_start))

    with display:
        if terminal:  # workers started from here inherit it
            os.environ[LEVEL_ENV] = "WARNING"
            logging.getLogger().setLevel(logging.WARNING)
        display.show(start)
        thread = threading.Thread(target=poll, name="cutmix-bench-progress", daemon=True)
        thread.start()
        try:
            yield
            ended = True
        except BaseException:  # an error stops the command: its message is the last line, not a progress line
            ended = False
            raise
        finally:
            stop.set()
            thread.join()
            if ended:
                display.show(snapshot(suite, since, start.units_at_start), final=True)
            if saved[0] is None:
                os.environ.pop(LEVEL_ENV, None)
            else:
                os.environ[LEVEL_ENV] = saved[0]
            logging.getLogger().setLevel(saved[1])
