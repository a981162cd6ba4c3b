"""The run's own Lightning callbacks and loggers: the atomic periodic checkpoint, and the per-epoch metrics,
logged through Lightning's own loggers (its CSVLogger always; TensorBoard, MLflow and W&B when `train.logger`
names them) and kept in the run's log.csv (the format `cutmix-bench report` and resumption read back).

What the trackers get, one name per quantity: the run's setup (setup.json) as hyperparameters, once per
training session; `per_step/lr` at every optimizer step from the first; `per_epoch/<column>` of log.csv once
per epoch (accuracies in %), with the `epoch` Lightning adds to each of its epoch-end lines; and, once the
run's evaluations are done, `eval/<label>/<headline>` (the report's headline values, `log_evaluations`).
Each tracker writes under the run folder: tensorboard/version_<session>/, mlflow/ (a file store:
`mlflow ui --backend-store-uri <run>/mlflow`), wandb/ (offline runs: `wandb sync <run>/wandb/wandb/offline-run-*`)."""

from __future__ import annotations

import importlib.util
import json
import os
import time
import uuid
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from ..errors import BenchError
from ..faults import kill_point
from ..io import atomic_write, write_csv, write_text
from ..rundir import RunDir
from .module import EPOCH_SUMS, Classifier

LOG_COLUMNS = ("epoch", "train_loss", "train_acc", "test_acc", "lr", "seconds")
TENSORBOARD_PACKAGES = ("tensorboard", "tensorboardX")  # either one serves Lightning's TensorBoardLogger


# not `epoch/`: an MLflow file store keeps a metric `a/b` as the file metrics/a/b, and Lightning's own `epoch`
# metric is the file metrics/epoch
EPOCH_PREFIX = "per_epoch/"
# the package each tracker needs (any one of them), and the pip extra that installs it
TRACKER_PACKAGES = {"tensorboard": TENSORBOARD_PACKAGES, "mlflow": ("mlflow",), "wandb": ("wandb",)}


def check_logger(choice: tuple[str, ...] | str) -> None:
    """Before anything trains: each tracker of `train.logger` needs its package installed."""
    for name in (choice,) if isinstance(choice, str) else choice:
        if name in TRACKER_PACKAGES and not any(importlib.util.find_spec(p) for p in TRACKER_PACKAGES[name]):
            raise BenchError(f"train.logger: '{name}' needs the {name} package (pip install 'cutmix-bench[{name}]' "
                             f"or pip install {name}), which is not installed; install it, or leave '{name}' out "
                             f"('csv', Lightning's CSVLogger, is always on)")


def loggers(run_dir: Path, choice: tuple[str, ...] | str, resume: bool = False) -> list[Logger]:
    """Lightning's loggers of a run: CSV always, and the trackers `train.logger` names. Each training session
    (a resume is a new one) writes a new version (a TensorBoard version_<n> folder, an MLflow run, a W&B
    offline run), so no session rewrites another's log; the session's ids are kept in the run folder's
    trackers.json. `resume`: the last session's trackers again, without CSV (log_evaluations)."""
    chosen_names = (choice,) if isinstance(choice, str) else tuple(choice)
    check_logger(chosen_names)
    folder = RunDir(run_dir)
    ids = json.loads(folder.trackers.read_text()) if resume and folder.trackers.exists() else {}
    chosen: list[Logger] = []
    if not resume:
        chosen.append(CSVLogger(run_dir, name=folder.lightning_logs.name, flush_logs_every_n_steps=1))
    if "tensorboard" in chosen_names and (not resume or "tensorboard" in ids):
        chosen.append(TensorBoardLogger(run_dir, name=folder.tensorboard_logs.name, default_hp_metric=False,
                                        version=ids.get("tensorboard"),
                                        # event files are named by the second they start: not the training's
                                        **({"filename_suffix": ".evaluations"} if resume else {})))
    if "mlflow" in chosen_names and (not resume or "mlflow" in ids):
        # a file store needs no server or database; MLflow 3 keeps it (in maintenance) behind this opt-in
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        chosen.append(MLFlowLogger(experiment_name="cutmix-bench", run_name=folder.name,
                                   tracking_uri=folder.mlflow_logs.resolve().as_uri(), run_id=ids.get("mlflow")))
    if "wandb" in chosen_names and (not resume or "wandb" in ids):
        chosen.append(WandbLogger(name=folder.name, project="cutmix-bench", save_dir=str(folder.wandb_logs),
                                  offline=True, id=ids.get("wandb") or uuid.uuid4().hex[:8],
                                  resume="allow" if resume else None))
    if not resume:
        for logger in chosen:  # fixed now, in this process (ddp_spawn ranks get them pickled)
            if isinstance(logger, MLFlowLogger):
                _ = logger.run_id  # creates the MLflow run
    return chosen


def record_trackers(run_dir: Path, chosen: list[Logger]) -> None:
    """The session's tracker ids (trackers.json), for the end-of-run evaluation metrics."""
    ids = {}
    for logger in chosen:
        if isinstance(logger, TensorBoardLogger):
            ids["tensorboard"] = logger.version
        elif isinstance(logger, MLFlowLogger):
            ids["mlflow"] = logger.run_id
        elif isinstance(logger, WandbLogger):
            ids["wandb"] = logger.version
    write_text(RunDir(run_dir).trackers, json.dumps(ids) + "\n")
    finish_wandb(chosen)


def finish_wandb(chosen: list[Logger]) -> None:
    """End the process's W&B run: the next run of a worker must not attach to this one (`wandb.run`)."""
    if any(isinstance(logger, WandbLogger) for logger in chosen):
        import wandb  # noqa: PLC0415 (installed: the logger ran)

        wandb.finish()


def log_evaluations(run_dir: Path, choice: tuple[str, ...] | str, values: dict[str, float]) -> None:
    """The run's evaluation metrics (`eval/<label>/<headline>`), once, to the trackers of its last training
    session (its own metrics.csv holds them for CSV). Nothing when the run trained with no tracker."""
    chosen = loggers(run_dir, choice, resume=True)
    for logger in chosen:
        logger.log_metrics(values)
        logger.finalize("success")
    finish_wandb(chosen)


def step_lr() -> LearningRateMonitor:
    """The learning rate of every optimizer step, the first included (the Trainer's log_every_n_steps is 1)."""
    return LearningRateMonitor(logging_interval="step")


class Hyperparameters(pl.Callback):
    """The run's setup as the trackers' hyperparameters, once per training session (Lightning logs only a
    module's save_hyperparameters, which would be its model object here)."""

    def __init__(self, setup: dict) -> None:
        self.setup = setup

    def on_fit_start(self, trainer: pl.Trainer, module: Classifier) -> None:
        if trainer.is_global_zero and self.setup:
            for logger in trainer.loggers:
                logger.log_hyperparams(self.setup)


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


class PeriodicCheckpoint(pl.Callback):
    """Writes `last.ckpt` every `every` epochs and after the last one, atomically (temp + rename),
    so a kill at any moment leaves the previous checkpoint intact."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = path, every

    def on_train_epoch_end(self, trainer: pl.Trainer, module: Classifier) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every == 0 or epoch == trainer.max_epochs:
            if trainer.is_global_zero:
                atomic_write(self.path, trainer.save_checkpoint)
            else:  # under DDP every rank calls it (it ends in a barrier); only rank 0 writes
                trainer.save_checkpoint(self.path)


class EpochLog(pl.Callback):
    """One row per epoch: train loss / accuracy (on the original labels), test accuracy, lr, seconds. The module's
    epoch sums and test accuracy come from `trainer.callback_metrics` (Lightning sums them over the ranks); the
    seconds are this callback's own clock. Logged with `log_dict` as `per_epoch/<column>` (to Lightning's loggers,
    at the epoch's last step), and appended to log.csv. log.csv is written here, not converted from Lightning's CSV,
    because resumption truncates it at the checkpoint's epoch and every write of it must be atomic (a kill leaves the
    previous file whole); Lightning's own CSV appends in place, one file per session."""

    def __init__(self, path: Path) -> None:
        self.path, self.started, self.seconds = path, 0.0, 0.0

    def on_train_start(self, trainer: pl.Trainer, module: Classifier) -> None:
        if self.path.exists() and trainer.is_global_zero:  # resumed: keep the epochs before the checkpoint
            kept = read_log(self.path)
            write_csv(self.path, kept[kept["epoch"] < trainer.current_epoch])

    def on_train_epoch_start(self, trainer: pl.Trainer, module: Classifier) -> None:
        self.started, self.seconds = time.perf_counter(), 0.0

    def on_train_batch_end(self, trainer: pl.Trainer, module: Classifier, *args: object) -> None:
        self.seconds = time.perf_counter() - self.started  # training batches only, not the per-epoch test pass

    def on_train_epoch_end(self, trainer: pl.Trainer, module: Classifier) -> None:
        metrics = trainer.callback_metrics  # read on every rank: the sums are synchronised over the ranks here
        loss_sum, correct, seen = (float(metrics[name]) for name in EPOCH_SUMS)
        if not trainer.is_global_zero:
            return
        test_acc = metrics.get("test_acc")
        validated = test_acc is not None and (trainer.current_epoch + 1) % trainer.check_val_every_n_epoch == 0
        row = {"epoch": trainer.current_epoch, "train_loss": loss_sum / max(seen, 1),
               "train_acc": 100 * correct / max(seen, 1),
               "test_acc": 100 * float(test_acc) if validated else float("nan"),
               "lr": trainer.optimizers[0].param_groups[0]["lr"], "seconds": self.seconds}
        module.log_dict({f"{EPOCH_PREFIX}{k}": float(v) for k, v in row.items() if k != "epoch"}, on_step=False,
                        on_epoch=True)
        frame = pd.read_csv(self.path) if self.path.exists() else pd.DataFrame()
        write_csv(self.path, pd.concat([frame, pd.DataFrame([row])], ignore_index=True))
        kill_point(f"epoch:{self.path.parent.name}:{trainer.current_epoch}")
