"""Whole-batch loading on the device: the dataset is one uint8 tensor, augmentation is one gather.

Standard CIFAR training augmentation (random crop 32 with zero padding 4, horizontal flip) is done
for a whole batch with a single indexing operation, then normalised; the result is NCHW in
channels_last memory format without a copy (NHWC storage permuted).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytorch_lightning as pl
import torch

from ..data import Split
from ..methods.base import to_device


class EpochSeed:
    """Lightning calls `sampler.set_epoch(epoch)` before every epoch, also after a resume, so the
    batches of an epoch depend only on (seed, epoch)."""

    def __init__(self, seed: int) -> None:
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, 0])


def normalise(x_uint8_nhwc: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> normalised float NCHW (channels_last storage)."""
    x = x_uint8_nhwc.float().div_(255).sub_(mean).div_(std)
    return x.permute(0, 3, 1, 2)


def crop_flip(x: torch.Tensor, rng: np.random.Generator, pad: int = 4, rank: int = 0, world: int = 1) -> torch.Tensor:
    """Random crop with zero padding `pad` and random horizontal flip of a uint8 NHWC batch. With `world` > 1
    ranks, `x` is rank `rank`'s rows r::world of the global batch: the draws are made for the global batch (the
    same on every rank and on one device) and `x` gets its rows' draws."""
    batch, height, width, _ = x.shape
    size = batch * world
    padded = torch.nn.functional.pad(x, (0, 0, pad, pad, pad, pad))
    oy = to_device(rng.integers(0, 2 * pad + 1, size)[rank::world], x.device)
    ox = to_device(rng.integers(0, 2 * pad + 1, size)[rank::world], x.device)
    flip = to_device((rng.random(size) < 0.5)[rank::world], x.device)
    cols = torch.arange(width, device=x.device)
    cols = torch.where(flip[:, None], width - 1 - cols, cols) + ox[:, None]
    rows = torch.arange(height, device=x.device) + oy[:, None]
    index = torch.arange(batch, device=x.device)[:, None, None]
    return padded[index, rows[:, :, None], cols[:, None, :]]


class BatchLoader:
    """Iterates (images, labels) batches of a split held on `device`.

    train=True shuffles, augments and drops the last incomplete batch; train=False keeps order.
    `sampler` / `batch_sampler` are the two attributes Lightning inspects on a loader (it is no torch DataLoader,
    so Lightning adds no DistributedSampler): with `world` > 1 ranks, `batch_size` is the global batch and rank r
    yields rows r::world of each global batch of the epoch's one seeded permutation, so that the ranks together
    see what one device sees."""

    batch_sampler = None

    def __init__(self, split: Split, batch_size: int, mean: tuple[float, ...], std: tuple[float, ...],
                 device: torch.device, train: bool, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        self.x = split.x.to(device)
        self.y = split.y.to(device)
        self.batch_size, self.train, self.rank, self.world = batch_size, train, rank, world
        self.mean = torch.tensor(mean, device=device)
        self.std = torch.tensor(std, device=device)
        self.sampler = EpochSeed(seed)

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = self.sampler.rng()
        order = to_device(rng.permutation(len(self.y)), self.y.device) if self.train else None
        for i in range(len(self)):
            index = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is None:
                x, y = self.x[index], self.y[index]
            else:
                rows = order[index][self.rank::self.world]
                x, y = self.x[rows], self.y[rows]
                x = crop_flip(x, rng, rank=self.rank, world=self.world)
            yield normalise(x, self.mean, self.std), y


class RunData(pl.LightningDataModule):
    """A run's train and test loaders, made in each process once the Trainer knows its rank, rank count and
    device: with ddp_spawn every rank is a fresh process, and a loader's data lives on its rank's device.
    `batch_size` is the global batch; every rank validates on the whole test set."""

    def __init__(self, train: Split, test: Split, batch_size: int, eval_batch_size: int, mean: tuple[float, ...],
                 std: tuple[float, ...], seed: int, validate: bool) -> None:
        super().__init__()
        self.train, self.test, self.mean, self.std, self.seed = train, test, mean, std, seed
        self.batch_size, self.eval_batch_size, self.validate = batch_size, eval_batch_size, validate

    def train_dataloader(self) -> BatchLoader:
        trainer = self.trainer
        return BatchLoader(self.train, self.batch_size, self.mean, self.std, trainer.strategy.root_device, train=True,
                           seed=self.seed, rank=trainer.global_rank, world=trainer.world_size)

    def val_dataloader(self) -> BatchLoader | list:
        if not self.validate:
            return []
        return BatchLoader(self.test, self.eval_batch_size, self.mean, self.std, self.trainer.strategy.root_device,
                           train=False)
