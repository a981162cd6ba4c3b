"""Training: a LightningModule that owns the step (mixing + soft-target cross entropy) and the
optimiser; data comes in as device batches from `loader.BatchLoader`."""

from __future__ import annotations

import math

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..errors import BenchError
from ..methods import Method
from ..methods.base import has_own_loss, output_problem

LR_NAME = "per_step/lr"  # the scheduler's name: the trackers' key of the per-step learning rate (LearningRateMonitor)
# The epoch's sums the module logs for callbacks.EpochLog (trainer.callback_metrics, not the trackers): loss x images,
# correct predictions, images. Sums, not Lightning's mean: it divides in float32, log.csv has always divided in float64.
EPOCH_SUMS = ("epoch_sum/loss", "epoch_sum/correct", "epoch_sum/seen")


def mixing_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator of all mixing draws of an epoch (shared with the Lightning callback and the collate
    transform, so that they give the runner's batches for the same seed)."""
    return np.random.default_rng([seed, epoch, 1])


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k target_k log softmax(logits)_k; equals the official
    lam*CE(y_a) + (1-lam)*CE(y_b) for two-label targets."""
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


class Classifier(pl.LightningModule):
    """Model + mixing method + optimiser schedule. Mixing draws from a generator seeded by
    (seed, epoch), so a run resumed at an epoch boundary replays the same batches."""

    def __init__(self, model: torch.nn.Module, method: Method, num_classes: int, train: TrainConfig,
                 steps_per_epoch: int, seed: int, label: str = "") -> None:
        super().__init__()
        self.model, self.method, self.num_classes = model, method, num_classes
        self.label, self.output_checked = label or type(method).__name__, False
        if hasattr(method, "attach"):  # hidden-feature methods hook into the model; duck-typed user methods may lack it
            method.attach(model)
        self.cfg, self.steps_per_epoch, self.seed = train, steps_per_epoch, seed
        # Modules whose strength follows training progress (DropBlock's linear schedule), told at every step.
        self.scheduled = [m for m in model.modules() if hasattr(m, "set_progress")]
        self.rng = np.random.default_rng(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        # Everything random in an epoch (mixing, dropout, ShakeDrop) is seeded by (seed, epoch).
        self.rng = mixing_rng(self.seed, self.current_epoch)
        torch.manual_seed(int(np.random.default_rng([self.seed, self.current_epoch, 2]).integers(2**62)))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        target = F.one_hot(y, self.num_classes).to(x.dtype)
        own = self.method.loss(self.model, x, target, self.rng) if has_own_loss(self.method) else None
        if own is not None:  # a method with its own objective (AugMix's JSD)
            loss, logits = own
        else:
            mixed_x, mixed_target = self.method(x, target, self.rng)
            if not self.output_checked:
                self.check_output(x, target, mixed_x, mixed_target)
            x, target = mixed_x, mixed_target
            logits = self.model(x)
            loss = (getattr(self.method, "criterion", None) or soft_cross_entropy)(logits, target)
        with torch.no_grad():
            sums = (loss.detach() * len(y), (logits.argmax(1) == y).sum().float(),
                    torch.full_like(loss.detach(), len(y)))  # made on the device: no host-to-device copy
        # summed over the epoch (and the ranks under DDP, at its end) by Lightning
        self.log_dict(dict(zip(EPOCH_SUMS, sums)), reduce_fx="sum", on_step=False, on_epoch=True, sync_dist=True,
                      logger=False, batch_size=len(y))
        self.check_finite(loss, batch_idx)
        return loss

    def check_output(self, x: torch.Tensor, target: torch.Tensor, mixed_x: object, mixed_target: object) -> None:
        """The method's output contract, once per run (the first batch): a wrong shape, dtype, non-finite value
        or target rows that are not distributions stop the run naming the method."""
        problem = output_problem(x, target, mixed_x, mixed_target)
        if problem:
            raise BenchError(f"methods.{self.label}: the method's output breaks its contract on the first batch: "
                             f"{problem}")
        self.output_checked = True

    def check_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        """Stop a diverged run. Checked every 32 steps and at the epoch's last step (before its checkpoint), as each
        check makes the CPU wait for the GPU; a non-finite loss makes the weights non-finite, so it does not pass
        unseen between two checks."""
        last = batch_idx == self.trainer.num_training_batches - 1
        if (batch_idx % 32 == 31 or last) and not torch.isfinite(loss):
            raise BenchError(f"training diverged: non-finite loss by epoch {self.current_epoch}, step {batch_idx}; "
                             f"lower train.optimizer.lr")

    def on_train_batch_start(self, batch: object, batch_idx: int) -> None:
        for module in self.scheduled:
            module.set_progress(self.global_step / max(1, self.cfg.epochs * self.steps_per_epoch))

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        correct = (self.model(x).argmax(1) == y).float().mean()
        # for EpochLog only (it logs `per_epoch/test_acc` in %): not a second name of one quantity in the trackers
        self.log("test_acc", correct, on_epoch=True, batch_size=len(y), prog_bar=False, logger=False)

    def configure_optimizers(self):  # noqa: ANN201 (Lightning's return type is a union)
        opt_cfg, sched = self.cfg.optimizer, self.cfg.schedule
        params, decay = self.model.parameters(), opt_cfg.weight_decay  # on all parameters, as the official code
        if opt_cfg.name == "sgd":
            optimizer = torch.optim.SGD(params, lr=opt_cfg.lr, momentum=opt_cfg.momentum, nesterov=opt_cfg.nesterov,
                                        weight_decay=decay)
        else:
            optimizer = torch.optim.AdamW(params, lr=opt_cfg.lr, weight_decay=decay)
        total = self.cfg.epochs * self.steps_per_epoch
        warmup = sched.warmup_epochs * self.steps_per_epoch

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if sched.name == "cosine":
                return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
            if sched.name == "multistep":
                epoch = step // self.steps_per_epoch
                return sched.gamma ** sum(epoch >= m for m in sched.milestones)
            return 1.0

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": LR_NAME}}
