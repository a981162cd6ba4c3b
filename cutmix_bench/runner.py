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
from .plugins import load_plugins
from .report import build_report
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
            kept = pd.read_csv(self.path)
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
    epoch_log = pd.read_csv(run_dir / "log.csv")
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
    dataset, train, test = data
    model = create_model(suite.model.name, dataset.num_classes, "model", **suite.model.params)
    state = check_checkpoint(run_dir / "last.ckpt", {f"model.{k}": v for k, v in model.state_dict().items()})
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    model = model.to(device).eval()
    if suite.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    ctx = EvalContext(model=model, dataset=dataset, test=test, device=device, batch_size=eval_batch_size(suite, device),
                      seed=run.seed, run_dir=run_dir, cache_dir=cache_dir, train=train,
                      channels_last=suite.train.channels_last)
    rows = []
    for label in suite.evaluations:
        name, params = suite.evaluation_spec(label)
        path = run_dir / "eval" / f"{label}.csv"
        if not path.exists():
            log.info("%s: evaluation %s", run.name, label)
            result = pd.DataFrame(EVALUATIONS.create(name, f"evaluations.{label}", **params).run(ctx))
            kill_point(f"evaluation:{run.name}:{label}")
            result.insert(0, "evaluation", label)
            write_csv(path, result)
        rows.extend(pd.read_csv(path).to_dict("records"))
    return rows


def training_setup(suite: Suite, run: Run) -> str:
    """What decides a run's trained model, as canonical JSON: a run folder must not be resumed or
    reported under a different setup."""
    train = suite.train.model_dump(mode="json", include={"epochs", "batch_size", "optimizer", "schedule", "precision"})
    setup = {"data": suite.data.model_dump(mode="json"), "model": suite.model.model_dump(mode="json"),
             "train": train, "method": suite.method_spec(run.method), "seed": run.seed}
    return json.dumps(setup, sort_keys=True)


def execute_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device, out: Path) -> None:
    run_dir = out / "runs" / run.name
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.rglob(".*.tmp"):  # left by a kill during an atomic write; we hold the run lock
        stale.unlink()
    setup, setup_file = training_setup(suite, run), run_dir / "setup.json"
    if setup_file.exists() and setup_file.read_text() != setup:
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

    `jobs` > 1 starts that many worker processes (one thread each on CPU); workers, and separate
    processes started on the same output directory (e.g. on a cluster), share out the runs through
    per-run lock files."""
    out = output_dir(suite)
    check_writable(out)
    select_device(suite.device)  # fail before starting workers
    runs = suite_runs(suite)
    if jobs > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(jobs) as pool:
            pool.starmap(work, [(suite.model_dump(), worker) for worker in range(jobs)])
    else:
        work(suite.model_dump())
    failures = {r.name: (out / "runs" / r.name / "FAILED").read_text().splitlines()[0] for r in runs
                if (out / "runs" / r.name / "FAILED").exists() and not (out / "runs" / r.name / "DONE").exists()}
    for r in runs:
        if not (out / "runs" / r.name / "DONE").exists() and r.name not in failures:
            failures[r.name] = "not finished: still running in another process (rerun to complete the report)"
    results = collect_results(out, runs)
    write_csv(out / "results.csv", results)
    kill_point("report")
    build_report(suite, results, out, failures)
    return out, failures


def work(suite_dump: dict, worker: int | None = None) -> None:
    """Train and evaluate every run that is neither finished nor locked by another process.
    A pool worker (`worker` = its index) uses one CPU thread, or GPU number `worker` modulo the count."""
    suite = Suite.model_validate(suite_dump)
    load_plugins(suite.plugins)  # a spawned worker starts with the package's own registries only
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
    data = None
    for i, run in enumerate(runs, 1):
        run_dir = out / "runs" / run.name
        if finished(suite, run_dir):
            log.info("[%d/%d] %s: finished earlier, skipped", i, len(runs), run.name)
            continue
        with run_lock(run_dir) as locked:
            if not locked or finished(suite, run_dir):
                continue
            data = data or load_data(suite)
            log.info("[%d/%d] %s: training on %s", i, len(runs), run.name, device)
            (run_dir / "FAILED").unlink(missing_ok=True)
            try:
                execute_run(suite, run, data, device, out)
            except Exception as exc:  # one failed run must not stop the others; the report lists it
                message = str(exc).splitlines()[0] if str(exc) else ""
                write_text(run_dir / "FAILED", f"{type(exc).__name__}: {message}\n\n{traceback.format_exc()}")
                log.error("%s failed: %s: %s", run.name, type(exc).__name__, message)


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


def collect_results(out: Path, runs: list[Run]) -> pd.DataFrame:
    frames = [pd.read_csv(out / "runs" / r.name / "metrics.csv") for r in runs
              if (out / "runs" / r.name / "DONE").exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run", "method", "seed", "model", "dataset", "evaluation", "metric", "value"])


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise BenchError(f"output_dir: {out} is not writable ({exc.strerror})") from exc
