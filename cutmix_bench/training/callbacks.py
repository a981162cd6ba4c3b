"""The run's own Lightning callbacks: the atomic periodic checkpoint and the per-epoch CSV log (the format
`cutmix-bench report` and resumption read back)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytorch_lightning as pl

from ..errors import BenchError
from ..faults import kill_point
from ..io import atomic_write, write_csv
from .module import Classifier

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
    """Appends one CSV line per epoch: train loss / accuracy (on the original labels), test accuracy."""

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
        frame = pd.read_csv(self.path) if self.path.exists() else pd.DataFrame()
        write_csv(self.path, pd.concat([frame, pd.DataFrame([row])], ignore_index=True))
        kill_point(f"epoch:{self.path.parent.name}:{trainer.current_epoch}")
