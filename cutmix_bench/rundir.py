"""The layout of a results directory in one place: `<output_dir>/runs/<method label>-s<seed>/` per run, the
files that hold a run's state, and the files the end of a suite writes beside them. Code that reads or writes a
results directory names its files through `ResultsDir` and `RunDir`, never as string literals.

A results directory holds results.csv (the finished runs' rows), setups.json (setup hash -> setup), suite.json,
environment.json, runs.json (run -> info.json), curves.csv, failures.json, report.md (with figures/ and
tables/), an optional findings.md written by a person, cache/ (shared by the runs) and .finish.lock (held
while a command writes those files).

A run folder holds config.yaml (the resolved suite), setup.json (what decides the trained model), last.ckpt,
log.csv (one line per epoch), eval/<evaluation label>.csv, and once complete metrics.csv + DONE; FAILED holds
the error of the last failed attempt; .lock is held by the process working on the run on this machine (local
executor); state.json records the scheduler job that owns the run (slurm executor, executors/state.py);
evaluated.json the file and SHA-256 of a model scored by `cutmix-bench evaluate` (scoring.py);
Lightning's loggers write lightning/version_<session>/ (and, as `train.logger` asks, tensorboard/version_<session>/,
mlflow/ and wandb/, with the last session's tracker ids in trackers.json).
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import Suite
from .io import locked

TRAIN = "train"  # the training rows' label: their file eval/train.csv and results.csv's `evaluation` column
RESERVED_LABELS = (TRAIN,)  # no evaluation may run under these labels: its rows would be the training rows


@dataclass(frozen=True)
class Run:
    method: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.method}-s{self.seed}"


def suite_runs(suite: Suite) -> list[Run]:
    """Every (method label, seed) of the suite, in report order."""
    return [Run(method, seed) for method in suite.methods for seed in suite.seeds]


def output_dir(suite: Suite) -> Path:
    """`output_dir`, or results/<suite name> under the current directory."""
    return Path(suite.output_dir) if suite.output_dir else Path("results") / suite.name


@dataclass(frozen=True)
class RunDir:
    """One run's folder and the names of its files."""

    path: Path

    @classmethod
    def of(cls, out: Path, run: Run) -> RunDir:
        return cls.named(out, run.name)

    @classmethod
    def named(cls, out: Path, name: str) -> RunDir:
        return cls(out / "runs" / name)

    @property
    def name(self) -> str:
        return self.path.name

    config = property(lambda self: self.path / "config.yaml")
    setup = property(lambda self: self.path / "setup.json")
    checkpoint = property(lambda self: self.path / "last.ckpt")
    log = property(lambda self: self.path / "log.csv")
    metrics = property(lambda self: self.path / "metrics.csv")
    done = property(lambda self: self.path / "DONE")
    failed = property(lambda self: self.path / "FAILED")
    state = property(lambda self: self.path / "state.json")
    evaluated = property(lambda self: self.path / "evaluated.json")  # `cutmix-bench evaluate`: the model's file
    train_rows = property(lambda self: self.eval_file(TRAIN))
    lightning_logs = property(lambda self: self.path / "lightning")
    tensorboard_logs = property(lambda self: self.path / "tensorboard")
    mlflow_logs = property(lambda self: self.path / "mlflow")  # an MLflow file store
    wandb_logs = property(lambda self: self.path / "wandb")  # W&B offline runs (wandb/wandb/offline-run-*)
    trackers = property(lambda self: self.path / "trackers.json")  # the last training session's tracker ids

    def eval_file(self, label: str) -> Path:
        return self.path / "eval" / f"{label}.csv"

    def is_done(self) -> bool:
        return self.done.exists()

    def missing(self, evaluations: Iterable[str]) -> list[str]:
        """The evaluation labels of `evaluations` with no saved result yet."""
        return [label for label in evaluations if not self.eval_file(label).exists()]

    def finished(self, evaluations: Iterable[str]) -> bool:
        """DONE and scored by every evaluation asked for: an evaluation added to the suite later is run on
        the finished model without retraining it."""
        return self.is_done() and not self.missing(evaluations)

    def has_failed(self) -> bool:
        """Its last attempt failed (FAILED) and it did not finish since."""
        return self.failed.exists() and not self.is_done()

    def failure(self) -> str:
        """The first line of the FAILED file (which a full disk may have left empty or unreadable)."""
        try:
            lines = self.failed.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"failed (its FAILED file is unreadable: {exc.strerror})"
        return lines[0] if lines and lines[0] else "failed (no error recorded)"

    @contextlib.contextmanager
    def lock(self) -> Iterator[bool]:
        """An exclusive, non-blocking lock on the run folder; yields False when another process holds it.
        The OS releases it when the holder dies, so a killed run is picked up again."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


_THREAD = threading.local()


def _held_by_this_thread() -> set[Path]:
    """The results folders whose finishing lock this thread holds (flock would block on a second open file)."""
    if not hasattr(_THREAD, "held"):
        _THREAD.held = set()
    return _THREAD.held


@dataclass(frozen=True)
class ResultsDir:
    """A results directory (`output_dir`): its run folders and the files of the whole suite."""

    path: Path

    results = property(lambda self: self.path / "results.csv")
    setups = property(lambda self: self.path / "setups.json")
    suite = property(lambda self: self.path / "suite.json")
    environment = property(lambda self: self.path / "environment.json")
    runs_info = property(lambda self: self.path / "runs.json")
    curves = property(lambda self: self.path / "curves.csv")
    failures = property(lambda self: self.path / "failures.json")
    report = property(lambda self: self.path / "report.md")
    findings = property(lambda self: self.path / "findings.md")
    figures = property(lambda self: self.path / "figures")
    cache = property(lambda self: self.path / "cache")

    def run(self, run: Run) -> RunDir:
        return RunDir.of(self.path, run)

    @contextlib.contextmanager
    def finishing(self) -> Iterator[None]:
        """An exclusive lock, waited for, held while a command collects the run folders and writes the suite's
        files (finish.py, `report`): a `report SUITE` while `run` ends takes its turn, so the later writer has read
        the later state and a stale results.csv or report.md never replaces a fresh one. Re-entrant in one thread
        (`report SUITE` holds it around its first build of the report and finish_suite)."""
        held, key = _held_by_this_thread(), self.path.resolve()
        if not self.path.is_dir() or key in held:  # nothing to finish yet, or held already
            yield
            return
        with locked(self.path / ".finish.lock"):
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)

    def failed_runs(self, runs: Iterable[Run], known: dict[str, str] | None = None,
                    unfinished: str = "not finished") -> dict[str, str]:
        """Run name -> why it is missing from the tables: the error of its FAILED file, else the message in
        `known` (failures no FAILED file records, jobs in flight), else `unfinished`, for every run not done."""
        out = {}
        for run in runs:
            folder = self.run(run)
            if folder.has_failed():
                out[run.name] = folder.failure()
            elif known and run.name in known:
                out[run.name] = known[run.name]
            elif not folder.is_done():
                out[run.name] = unfinished
        return out
