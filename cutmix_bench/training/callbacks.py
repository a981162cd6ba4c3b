"""The run's own Lightning callbacks and loggers: the atomic periodic checkpoint, and the per-epoch metrics,
logged through Lightning (its CSVLogger always, TensorBoard when asked) and kept in the run's log.csv (the
format `cutmix-bench report` and resumption read back)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from ..errors import BenchError
from ..faults import kill_point
from ..io import atomic_write, write_csv
from ..rundir import RunDir
from .module import Classifier

LOG_COLUMNS = ("epoch", "train_loss", "train_acc", "test_acc", "lr", "seconds")
TENSORBOARD_PACKAGES = ("tensorboard", "tensorboardX")  # either one serves Lightning's TensorBoardLogger


def check_logger(choice: str) -> None:
    """Before anything trains: `train.logger: tensorboard` needs a TensorBoard writer package installed."""
    if choice == "tensorboard" and not any(importlib.util.find_spec(p) for p in TENSORBOARD_PACKAGES):
        raise BenchError("train.logger: 'tensorboard' needs the tensorboard package (pip install tensorboard), "
                         "which is not installed; install it, or use 'csv' (Lightning's CSVLogger, always on)")


def loggers(run_dir: Path, choice: str) -> list[Logger]:
    """Lightning's loggers of a run: CSV always, TensorBoard too for `train.logger: tensorboard`. Each training
    session (a resume is a new one) writes a new version_<n> folder, so no session rewrites another's log."""
    check_logger(choice)
    folder = RunDir(run_dir)
    chosen: list[Logger] = [CSVLogger(run_dir, name=folder.lightning_logs.name, flush_logs_every_n_steps=1)]
    if choice == "tensorboard":
        chosen.append(TensorBoardLogger(run_dir, name=folder.tensorboard_logs.name, default_hp_metric=False))
    return chosen


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
    """One row per epoch: train loss / accuracy (on the original labels), test accuracy, lr, seconds. Logged
    with `log_dict` as `epoch/<column>` (to Lightning's loggers, at the epoch's last step), and appended to
    log.csv. log.csv is written here, not converted from Lightning's CSV, because resumption truncates it at
    the checkpoint's epoch and every write of it must be atomic (a kill leaves the previous file whole);
    Lightning's own CSV appends in place, one file per session."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_start(self, trainer: pl.Trainer, module: Classifier) -> None:
        if self.path.exists() and trainer.is_global_zero:  # resumed: keep the epochs before the checkpoint
            kept = read_log(self.path)
            write_csv(self.path, kept[kept["epoch"] < trainer.current_epoch])

    def on_train_epoch_end(self, trainer: pl.Trainer, module: Classifier) -> None:
        # summed over the ranks under DDP (one device: unchanged); only rank 0 writes the line
        loss_sum, correct, seen = trainer.strategy.reduce(module.epoch_stats.clone(), reduce_op="sum").tolist()
        if not trainer.is_global_zero:
            return
        test_acc = trainer.callback_metrics.get("test_acc")
        validated = test_acc is not None and (trainer.current_epoch + 1) % trainer.check_val_every_n_epoch == 0
        row = {"epoch": trainer.current_epoch, "train_loss": loss_sum / max(seen, 1),
               "train_acc": 100 * correct / max(seen, 1),
               "test_acc": 100 * float(test_acc) if validated else float("nan"),
               "lr": trainer.optimizers[0].param_groups[0]["lr"],
               "seconds": module.train_seconds}  # training batches only, not the per-epoch test pass
        module.log_dict({f"epoch/{k}": float(v) for k, v in row.items() if k != "epoch"}, on_step=False,
                        on_epoch=True)
        frame = pd.read_csv(self.path) if self.path.exists() else pd.DataFrame()
        write_csv(self.path, pd.concat([frame, pd.DataFrame([row])], ignore_index=True))
        kill_point(f"epoch:{self.path.parent.name}:{trainer.current_epoch}")
