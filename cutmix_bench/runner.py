"""Runs a suite: every (method, seed) is one run, trained, evaluated and written to its own folder.

results/<suite>/runs/<run>/ holds config.yaml, last.ckpt, log.csv, eval/<evaluation>.csv and, once
complete, metrics.csv + DONE. The suite's results.csv is the concatenation of finished runs'
metrics.csv, so runs never write to a shared file. Finished runs and finished evaluations are
skipped on a rerun; an interrupted training resumes from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import multiprocessing
import os
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
import yaml

from .config import Suite
from .data import Dataset, Split, create_dataset
from .errors import BenchError
from .evaluations import EVALUATIONS, EvalContext
from .faults import kill_point
from .io import atomic_write, write_csv, write_text
from .loader import BatchLoader
from .methods import create_method
from .models import create_model
from .report import build_report
from .setups import differences, row_setup, setup_hash, training_setup
from .train import Classifier

log = logging.getLogger("cutmix_bench")
# Lightning's info lines (accelerator summary, tips) and deprecation chatter are noise in a suite log.
logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", module="pytorch_lightning")
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


@dataclass
class Run:
    method: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.method}-s{self.seed}"


def suite_runs(suite: Suite) -> list[Run]:
    """Every (method label, seed) of the suite, in report order."""
    return [Run(method, seed) for method in suite.methods for seed in suite.seeds]


def select_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise BenchError("device: 'cuda' requested but no CUDA device is available; use 'auto' or 'cpu'")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def output_dir(suite: Suite) -> Path:
    """`output_dir`, or results/<suite name> under the current directory."""
    return Path(suite.output_dir) if suite.output_dir else Path("results") / suite.name


def load_data(suite: Suite) -> tuple[Dataset, Split, Split]:
    params = dict(suite.data.params)
    if suite.data.root is not None:
        params["root"] = suite.data.root
    if suite.data.download:
        params["download"] = True
    dataset = create_dataset(suite.data.name, "data.params", **params)
    train = dataset.load("train").subset(suite.data.train_subset, suite.data.subset_seed)
    test = dataset.load("test").subset(suite.data.test_subset, suite.data.subset_seed)
    return dataset, train, test


class PeriodicCheckpoint(pl.Callback):
    """Writes `last.ckpt` every `every` epochs and after the last one, atomically (temp + rename),
    so a kill at any moment leaves the previous checkpoint intact."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = path, every

    def on_train_epoch_end(self, trainer: pl.Trainer, module: Classifier) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every == 0 or epoch == trainer.max_epochs:
            atomic_write(self.path, trainer.save_checkpoint)


class EpochLog(pl.Callback):
    """Appends one CSV line per epoch: train loss / accuracy (on the original labels), test accuracy."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_start(self, trainer: pl.Trainer, module: Classifier) -> None:
        if self.path.exists():  # resumed: keep the epochs before the checkpoint
            kept = read_log(self.path)
            write_csv(self.path, kept[kept["epoch"] < trainer.current_epoch])

    def on_train_epoch_end(self, trainer: pl.Trainer, module: Classifier) -> None:
        loss_sum, correct, seen = module.epoch_stats.tolist()
        test_acc = trainer.callback_metrics.get("test_acc")
        validated = test_acc is not None and (trainer.current_epoch + 1) % trainer.check_val_every_n_epoch == 0
        row = {"epoch": trainer.current_epoch, "train_loss": loss_sum / max(seen, 1),
               "train_acc": 100 * correct / max(seen, 1),
               "test_acc": 100 * float(test_acc) if validated else float("nan"),
               "lr": trainer.optimizers[0].param_groups[0]["lr"],
               "seconds": module.train_seconds}  # training batches only, not the per-epoch test pass
        frame = pd.read_csv(self.path) if self.path.exists() else pd.DataFrame()
        write_csv(self.path, pd.concat([frame, pd.DataFrame([row])], ignore_index=True))
        kill_point(f"epoch:{self.path.parent.name}:{trainer.current_epoch}")


def train_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device,
              run_dir: Path) -> list[dict]:
    """Train (or resume) one run and return its training rows."""
    dataset, train, test = data
    pl.seed_everything(run.seed, workers=False, verbose=False)
    model = create_model(suite.model.name, dataset.num_classes, "model", **suite.model.params)
    if suite.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    name, params = suite.method_spec(run.method)
    method = create_method(name, f"methods.{run.method}", **params)
    cfg = suite.train
    train_loader = BatchLoader(train, cfg.batch_size, dataset.mean, dataset.std, device, train=True, seed=run.seed)
    if len(train_loader) == 0:
        raise BenchError(f"train.batch_size: {cfg.batch_size} is larger than the training set ({len(train)})")
    test_loader = BatchLoader(test, eval_batch_size(suite, device), dataset.mean, dataset.std, device, train=False)
    module = Classifier(model, method, dataset.num_classes, cfg, len(train_loader), run.seed)
    if cfg.compile:
        module.model.compile()  # in place: parameter names (and so checkpoints) stay unchanged
    last = run_dir / "last.ckpt"
    if last.exists():
        check_checkpoint(last, module.state_dict())
    trainer = pl.Trainer(
        max_epochs=cfg.epochs, accelerator=device.type, devices=1 if device.index is None else [device.index],
        precision=precision(cfg.precision, device),
        logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        callbacks=[EpochLog(run_dir / "log.csv"), PeriodicCheckpoint(last, cfg.checkpoint_every)],
        check_val_every_n_epoch=cfg.eval_every or cfg.epochs + 1, num_sanity_val_steps=0,
        deterministic=device.type == "cpu", benchmark=device.type == "cuda",
    )
    started = time.perf_counter()
    trainer.fit(module, train_loader, test_loader if cfg.eval_every else None,
                ckpt_path=str(last) if last.exists() else None, weights_only=True)
    seconds = time.perf_counter() - started
    epoch_log = read_log(run_dir / "log.csv")
    images = len(train_loader) * cfg.batch_size * len(epoch_log)
    return [{"evaluation": "train", "metric": "train_minutes", "value": epoch_log["seconds"].sum() / 60},
            {"evaluation": "train", "metric": "images_per_second", "value": images / epoch_log["seconds"].sum()},
            {"evaluation": "train", "metric": "final_train_loss", "value": epoch_log["train_loss"].iloc[-1]},
            {"evaluation": "train", "metric": "wall_seconds_this_session", "value": seconds}]


def eval_batch_size(suite: Suite, device: torch.device) -> int:
    """Large batches suit a GPU; on a CPU a batch of 1024 falls out of the caches and is 1.2-1.4x slower
    than 128 (docs/performance.md)."""
    return suite.eval_batch_size or (1024 if device.type == "cuda" else 128)


def precision(choice: str, device: torch.device) -> str:
    """Lightning's precision flag: `auto` is bf16 autocast on GPUs that support it, fp16 autocast (with
    loss scaling) on older GPUs, fp32 on CPU."""
    if choice == "auto":
        if device.type != "cuda":
            return "32-true"
        return "bf16-mixed" if torch.cuda.is_bf16_supported(including_emulation=False) else "16-mixed"
    return "bf16-mixed" if choice == "bf16" else "32-true"


def check_checkpoint(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Load `path` safely and check that it holds the same parameter names and shapes as `expected`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as exc:
        raise BenchError(f"{path}: not a readable checkpoint ({type(exc).__name__}); delete it to retrain "
                         f"this run from scratch") from exc
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    wanted = {k: tuple(v.shape) for k, v in expected.items()}
    if shapes != wanted:
        differing = sorted(set(shapes.items()) ^ set(wanted.items()))[:3]
        raise BenchError(f"{path}: checkpoint is of another model (first differences: {differing}); "
                         f"delete the run folder or use another output_dir")
    return state


def evaluate_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device, run_dir: Path,
                 cache_dir: Path) -> list[dict]:
    """Load the last checkpoint and run every evaluation not already saved under eval/."""
    dataset, _, test = data
    model = create_model(suite.model.name, dataset.num_classes, "model", **suite.model.params)
    state = check_checkpoint(run_dir / "last.ckpt", {f"model.{k}": v for k, v in model.state_dict().items()})
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    model = model.to(device).eval()
    if suite.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ctx = EvalContext(model=model, dataset=dataset, test=test, device=device, batch_size=eval_batch_size(suite, device),
                      seed=run.seed, run_dir=run_dir, cache_dir=cache_dir,
                      channels_last=suite.train.channels_last)
    rows = []
    for name, params in suite.evaluations.items():
        path = run_dir / "eval" / f"{name}.csv"
        if not path.exists():
            log.info("%s: evaluation %s", run.name, name)
            result = pd.DataFrame(EVALUATIONS.create(name, f"evaluations.{name}", **params).run(ctx))
            kill_point(f"evaluation:{run.name}:{name}")
            result.insert(0, "evaluation", name)
            write_csv(path, result)
        rows.extend(pd.read_csv(path).to_dict("records"))
    return rows


def execute_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device, out: Path) -> None:
    run_dir = out / "runs" / run.name
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.rglob(".*.tmp"):  # left by a kill during an atomic write; we hold the run lock
        stale.unlink()
    setup, setup_file = training_setup(suite, run), run_dir / "setup.json"
    if setup_file.exists() and setup_file.read_text() != setup:  # checked by preflight; another process may race
        raise BenchError(f"{run_dir}: this run was started with another data / model / train / method setup; "
                         f"use another output_dir, or delete the run folder to retrain it")
    write_text(setup_file, setup)
    write_text(run_dir / "config.yaml", yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False))
    train_file = run_dir / "eval" / "train.csv"
    if not train_file.exists():
        write_csv(train_file, pd.DataFrame(train_run(suite, run, data, device, run_dir)))
    rows = pd.read_csv(train_file).to_dict("records")
    rows += evaluate_run(suite, run, data, device, run_dir, out / "cache")
    frame = pd.DataFrame(rows)
    meta = {"run": run.name, "method": run.method, "seed": run.seed, "model": suite.model.name,
            "dataset": suite.data.name}
    for i, (key, value) in enumerate(meta.items()):
        frame.insert(i, key, value)
    write_csv(run_dir / "metrics.csv", frame)
    write_text(run_dir / "DONE", "complete\n")
    kill_point(f"done:{run.name}")


def run_suite(suite: Suite, jobs: int = 1) -> tuple[Path, dict[str, str]]:
    """Run everything that is not finished; write results.csv and report.md. Returns the output
    directory and the failed runs with their errors (the caller decides the exit code).

    Everything that can be checked before training is checked first (recorded setups, resumable logs,
    the data against the training and evaluation parameters), so bad input stops the command with exit 2
    before any run starts. `jobs` > 1 starts that many worker processes (one thread each on CPU), capped
    at the runs to do and the CPUs (GPUs) available; workers, and separate processes started on the same
    output directory (e.g. on a cluster), share out the runs through per-run lock files."""
    out = output_dir(suite)
    check_writable(out)
    device = select_device(suite.device)  # fail before starting workers
    runs = suite_runs(suite)
    preflight(suite, out, runs)
    pending = [r for r in runs if not finished(suite, out / "runs" / r.name)]
    data = None
    if pending:
        data = load_data(suite)
        check_data(suite, data)
    jobs = capped_jobs(jobs, len(pending), device)
    if jobs > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(jobs) as pool:
            unrecorded = pool.starmap(work, [(suite.model_dump(), worker) for worker in range(jobs)])
    else:
        unrecorded = [work(suite.model_dump(), data=data)]
    failures = {r.name: failure(out / "runs" / r.name) for r in runs
                if (out / "runs" / r.name / "FAILED").exists() and not (out / "runs" / r.name / "DONE").exists()}
    for errors in unrecorded:  # failures whose FAILED file could not be written
        failures.update({name: error for name, error in errors.items() if name not in failures})
    for r in runs:
        if not (out / "runs" / r.name / "DONE").exists() and r.name not in failures:
            failures[r.name] = "not finished: still running in another process (rerun to complete the report)"
    results = write_results(out, runs)
    kill_point("report")
    build_report(suite, results, out, failures)
    return out, failures


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


def failure(run_dir: Path) -> str:
    """The first line of a run's FAILED file (which a full disk may have left empty or unreadable)."""
    try:
        lines = (run_dir / "FAILED").read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"failed (its FAILED file is unreadable: {exc.strerror})"
    return lines[0] if lines and lines[0] else "failed (no error recorded)"


def preflight(suite: Suite, out: Path, runs: list[Run]) -> None:
    """Before anything trains: every run folder stays inside the output folder, every recorded setup equals
    the requested one (a finished run is never reused, nor a started one resumed, under another setup), and
    every log a run would resume from is readable. One BenchError names all that differs."""
    differing: dict[str, list[str]] = {}
    for run in runs:
        run_dir = inside(out, out / "runs" / run.name)
        recorded = read_setup(run_dir)
        requested = training_setup(suite, run)
        if recorded is not None and recorded != requested:
            try:
                differing[run.name] = differences(json.loads(recorded), json.loads(requested), run.method)
            except json.JSONDecodeError:
                raise BenchError(f"{run_dir / 'setup.json'}: not a valid setup record (expected JSON); delete the "
                                 f"run folder to retrain this run") from None
        log_file = run_dir / "log.csv"
        if log_file.exists() and not (run_dir / "DONE").exists():
            read_log(log_file)
    if differing:
        keys = list(dict.fromkeys(d for diffs in differing.values() for d in diffs)) or ["setup.json differs"]
        names = ", ".join(differing)
        raise BenchError(f"{out}: {len(differing)} run(s) ({names}) were made with another setup: {'; '.join(keys)}; "
                         f"use another output_dir, or delete those run folders under {out / 'runs'} to retrain them")


def read_setup(run_dir: Path) -> str | None:
    path = run_dir / "setup.json"
    try:
        return path.read_text() if path.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: unreadable setup record ({exc}); delete the run folder to retrain it") from None


LOG_COLUMNS = ("epoch", "train_loss", "train_acc", "test_acc", "lr", "seconds")


def read_log(path: Path) -> pd.DataFrame:
    """A run's log.csv, with the columns training and its summary need."""
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types (parser, decode, empty) for one meaning
        raise BenchError(f"{path}: unreadable training log ({type(exc).__name__}); delete it and last.ckpt to "
                         f"retrain this run") from None
    missing = [c for c in LOG_COLUMNS if c not in frame.columns]
    if missing or not pd.api.types.is_numeric_dtype(frame["epoch"]):
        raise BenchError(f"{path}: damaged training log (missing or non-numeric column(s) "
                         f"{', '.join(missing) or 'epoch'}; expected {', '.join(LOG_COLUMNS)}); delete it and "
                         f"last.ckpt to retrain this run")
    return frame


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
    for name, params in suite.evaluations.items():
        sizes = params.get("sizes")
        if isinstance(sizes, list) and sizes and all(isinstance(s, int) for s in sizes) and max(sizes) > side:
            raise BenchError(f"evaluations.{name}.sizes: {max(sizes)} is larger than the image side {side}")


def inside(out: Path, path: Path) -> Path:
    """`path`, checked to lie inside the output folder (names are validated; this is the last line)."""
    if not path.resolve().is_relative_to(out.resolve()):
        raise BenchError(f"{path}: would be written outside the output folder {out}")
    return path


def work(suite_dump: dict, worker: int | None = None,
         data: tuple[Dataset, Split, Split] | None = None) -> dict[str, str]:
    """Train and evaluate every run that is neither finished nor locked by another process.
    A pool worker (`worker` = its index) uses one CPU thread, or GPU number `worker` modulo the count.
    A failing run, even one whose folder cannot be written, never stops the others. Returns the failures
    that could not be recorded in a FAILED file (run name -> error)."""
    suite = Suite.model_validate(suite_dump)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # worker processes start unconfigured
    out, device = output_dir(suite), select_device(suite.device)
    if worker is not None and device.type == "cpu":
        torch.set_num_threads(1)
    elif suite.train.threads:
        torch.set_num_threads(suite.train.threads)
    if worker is not None and device.type == "cuda":
        device = torch.device("cuda", worker % torch.cuda.device_count())
        torch.cuda.set_device(device)
    runs = suite_runs(suite)
    unrecorded: dict[str, str] = {}
    for i, run in enumerate(runs, 1):
        run_dir = out / "runs" / run.name
        if finished(suite, run_dir):
            log.info("[%d/%d] %s: finished earlier, skipped", i, len(runs), run.name)
            continue
        try:
            with run_lock(run_dir) as locked:
                if not locked or finished(suite, run_dir):
                    continue
                data = data or load_data(suite)
                log.info("[%d/%d] %s: training on %s", i, len(runs), run.name, device)
                (run_dir / "FAILED").unlink(missing_ok=True)
                execute_run(suite, run, data, device, out)
        except Exception as exc:  # one failed run must not stop the others; the report lists it
            if not record_failure(run, run_dir, exc):
                unrecorded[run.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return unrecorded


def record_failure(run: Run, run_dir: Path, exc: Exception) -> bool:
    """Log the error and write it to the run's FAILED file; False when that file cannot be written (disk
    full, read-only folder), which is logged too: the failure handler never raises."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    log.error("%s failed: %s: %s", run.name, type(exc).__name__, message)
    try:
        write_text(run_dir / "FAILED", f"{type(exc).__name__}: {message}\n\n{traceback.format_exc()}")
    except Exception as again:  # noqa: BLE001 (the failure handler must not fail the command)
        log.error("%s: could not record the failure in %s: %s", run.name, run_dir / "FAILED", again)
        return False
    return True


def finished(suite: Suite, run_dir: Path) -> bool:
    """DONE and scored by every evaluation the suite asks for: an evaluation added to the suite later is
    run on the finished models without retraining them."""
    return (run_dir / "DONE").exists() and all((run_dir / "eval" / f"{name}.csv").exists()
                                               for name in suite.evaluations)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[bool]:
    """An exclusive, non-blocking lock on the run folder; yields False when another process holds it.
    The OS releases it when the holder dies, so a killed run is picked up again."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


RESULT_COLUMNS = ("run", "method", "seed", "evaluation", "metric", "value")


def collect_results(out: Path, runs: list[Run]) -> pd.DataFrame:
    """The finished runs' metrics.csv, validated, each with the `setup` hash of its recorded setup.json."""
    frames = []
    for r in runs:
        run_dir = out / "runs" / r.name
        if not (run_dir / "DONE").exists():
            continue
        frame = read_metrics(run_dir / "metrics.csv")
        recorded = read_setup(run_dir)
        frame.insert(min(5, len(frame.columns)), "setup", setup_hash(recorded) if recorded is not None else "")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run", "method", "seed", "model", "dataset", "setup", "evaluation", "metric", "value"])


def read_metrics(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types (parser, decode, empty, missing) for one meaning
        raise BenchError(f"{path}: unreadable metrics file ({type(exc).__name__}); delete the run's DONE file "
                         f"to evaluate it again") from None
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing or not pd.api.types.is_numeric_dtype(frame["value"]):
        what = f"missing column(s) {', '.join(missing)}" if missing else "non-numeric values in column value"
        raise BenchError(f"{path}: damaged metrics file ({what}; expected columns {', '.join(RESULT_COLUMNS)}); "
                         f"delete the run's DONE file to evaluate it again")
    return frame


def write_results(out: Path, runs: list[Run]) -> pd.DataFrame:
    """results.csv of the finished runs, and setups.json: each setup hash in it -> the recorded setup (less
    the seed)."""
    results = collect_results(out, runs)
    setups = {}
    for r in runs:
        recorded = read_setup(out / "runs" / r.name)
        if recorded is not None and (out / "runs" / r.name / "DONE").exists():
            setups[setup_hash(recorded)] = row_setup(recorded)
    write_csv(out / "results.csv", results)
    write_text(out / "setups.json", json.dumps(setups, indent=2, sort_keys=True) + "\n")
    return results


def check_recorded(suite: Suite, out: Path, runs: list[Run]) -> None:
    """For `report`: the finished runs were made with the setup the suite describes (its header says so)."""
    preflight(suite, out, [r for r in runs if (out / "runs" / r.name / "DONE").exists()])


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"output_dir: {out} is not writable ({exc.strerror})") from exc
