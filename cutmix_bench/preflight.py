"""Planning a suite's work before anything trains, shared by `run` and `run --dry-run` (which must refuse what
`run` refuses): the output folder is writable, every recorded setup equals the requested one, every log a run
would resume from is readable, the data fits the training, the evaluations (each checks its own parameters
against the image side), the methods and the model; and how many workers to start. Lightning is not imported
here (a dry run answers in seconds)."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import torch

from .components import components
from .config import Suite
from .data import Dataset, Split
from .errors import BenchError
from .rundir import ResultsDir, Run, RunDir
from .setups import differences, same_setup, training_setup

log = logging.getLogger("cutmix_bench")


def preflight(suite: Suite, out: Path, runs: list[Run]) -> None:
    """Before anything trains: every run folder stays inside the output folder, every recorded setup equals
    the requested one (a finished run is never reused, nor a started one resumed, under another setup), and
    every log a run would resume from is readable. One BenchError names all that differs."""
    check_no_orphan_results(out)
    differing: dict[str, list[str]] = {}
    for run in runs:
        folder = RunDir(inside(out, RunDir.of(out, run).path))
        recorded = read_setup(folder)
        requested = training_setup(suite, run)
        if recorded is not None and recorded != requested:
            try:
                old = json.loads(recorded)
            except json.JSONDecodeError:
                old = None
            if not isinstance(old, dict):
                raise BenchError(f"{folder.setup}: not a valid setup record (expected a JSON object); delete the "
                                 f"run folder to retrain this run")
            if not same_setup(recorded, requested):
                differing[run.name] = differences(old, json.loads(requested), run.method)
        if folder.log.exists() and not folder.is_done():
            from .training.callbacks import read_log  # here: Lightning is imported only where a run resumes

            read_log(folder.log)
    if differing:
        keys = list(dict.fromkeys(d for diffs in differing.values() for d in diffs)) or ["setup.json differs"]
        names = ", ".join(differing)
        raise BenchError(f"{out}: {len(differing)} run(s) ({names}) were made with another setup: {'; '.join(keys)}; "
                         f"use another output_dir, or delete those run folders under {out / 'runs'} to retrain them")


def check_no_orphan_results(out: Path) -> None:
    """A results folder whose results.csv names runs that have no folder under runs/ (a published copy, such as
    the committed results/cifar100-cpu, or a folder whose runs were deleted) would lose those rows when the
    suite rewrites results.csv and report.md: refuse it before anything is written."""
    results = ResultsDir(out).results
    try:
        with results.open(newline="") as handle:
            names = {row.get("run") or "" for row in csv.DictReader(handle)}
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BenchError(f"{results}: unreadable ({exc}); it would be overwritten: move it away first") from None
    orphans = sorted(name for name in names if name and not RunDir.named(out, name).path.is_dir())
    if orphans:
        raise BenchError(f"output_dir: {out} holds the results of {len(orphans)} run(s) that are not under "
                         f"{out / 'runs'} ({', '.join(orphans[:3])}{', ...' if len(orphans) > 3 else ''}), e.g. "
                         f"committed results; rerunning here would overwrite them: set output_dir to another "
                         f"folder, then `cutmix-bench compare {out} <that folder>`")


def read_setup(folder: RunDir) -> str | None:
    path = folder.setup
    try:
        return path.read_text() if path.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: unreadable setup record ({exc}); delete the run folder to retrain it") from None


def check_data(suite: Suite, data: tuple[Dataset, Split, Split]) -> None:
    """Checks of the loaded data against the suite that would otherwise fail (or mislead) after training."""
    dataset, train, test = data
    for name, split in (("train", train), ("test", test)):
        if len(split) == 0:
            raise BenchError(f"data: the {name} split of {suite.data.name} holds no images")
    if train.x.shape[1:] != test.x.shape[1:]:
        raise BenchError(f"data: train images are {list(train.x.shape[1:])} (H, W, C) but test images are "
                         f"{list(test.x.shape[1:])}; expected one image size")
    if not all(s > 0 for s in dataset.std):  # NaN fails too
        raise BenchError(f"data: the images of {suite.data.name} are constant (per-channel std {dataset.std}); "
                         f"normalisation would divide by zero; expected varied images")
    if suite.train.batch_size > len(train):
        raise BenchError(f"train.batch_size: {suite.train.batch_size} is larger than the training set ({len(train)} "
                         f"images)")
    side = max(test.x.shape[1:3])
    for label, evaluation in components(suite).evaluations.items():
        try:
            evaluation.check_image_side(side)
        except ValueError as exc:
            raise BenchError(f"evaluations.{label}.{exc}") from None


def check_methods(suite: Suite, data: tuple[Dataset, Split, Split]) -> None:
    """The methods against the data's image size and the suite's model (hidden-feature methods need its stages),
    before any run starts: a misfit stops the command instead of failing every run after it started."""
    dataset, train, _ = data
    height, width = train.x.shape[1:3]
    built = components(suite)
    model = built.model(dataset.num_classes)  # once, on the CPU: the model-dependent method checks need its stages
    for label, method in built.methods.items():  # getattr: a duck-typed plug-in method may lack the hooks
        try:
            getattr(method, "check_image", lambda h, w: None)(height, width)
            getattr(method, "check_model", lambda m: None)(model)
        except (ValueError, BenchError) as exc:
            raise BenchError(f"methods.{label}: {exc}") from None


def inside(out: Path, path: Path) -> Path:
    """`path`, checked to lie inside the output folder (names are validated; this is the last line)."""
    if not path.resolve().is_relative_to(out.resolve()):
        raise BenchError(f"{path}: would be written outside the output folder {out}")
    return path


def capped_jobs(jobs: int, pending: int, device: torch.device) -> int:
    """More workers than runs to do, or than CPUs (GPUs), only add memory and contention: cap with a warning."""
    if device.type == "cuda":
        limit, unit = torch.cuda.device_count(), "GPU(s)"
    else:
        limit = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        unit = "CPU(s)"
    capped = max(1, min(jobs, pending, limit))
    if capped < jobs:
        reason = "the runs left to do" if pending < limit else f"the {limit} {unit} available"
        log.warning("--jobs %d: capped at %d, %s", jobs, capped, reason)
    return capped


def check_writable(out: Path, create: bool = True) -> None:
    """The output folder can be written: created and probed, or with `create=False` (a dry run, which writes
    nothing) judged from its nearest existing folder's permissions and file system."""
    if not create:
        existing = next(p for p in (out, *out.parents) if p.exists())
        reason = ("Not a directory" if not existing.is_dir()
                  else "Read-only file system" if os.statvfs(existing).f_flag & os.ST_RDONLY
                  else None if os.access(existing, os.W_OK | os.X_OK) else "Permission denied")
        if reason:
            raise BenchError(f"output_dir: {out} is not writable ({reason})")
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"output_dir: {out} is not writable ({exc.strerror})") from exc
