"""Whole-batch loading on the device: the dataset is one uint8 tensor, augmentation is one gather.

Standard CIFAR training augmentation (random crop 32 with zero padding 4, horizontal flip) is done
for a whole batch with a single indexing operation, then normalised; the result is NCHW in
channels_last memory format without a copy (NHWC storage permuted).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
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


def crop_flip(x: torch.Tensor, rng: np.random.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding `pad` and random horizontal flip of a uint8 NHWC batch."""
    batch, height, width, _ = x.shape
    padded = torch.nn.functional.pad(x, (0, 0, pad, pad, pad, pad))
    oy = to_device(rng.integers(0, 2 * pad + 1, batch), x.device)
    ox = to_device(rng.integers(0, 2 * pad + 1, batch), x.device)
    flip = to_device(rng.random(batch) < 0.5, x.device)
    cols = torch.arange(width, device=x.device)
    cols = torch.where(flip[:, None], width - 1 - cols, cols) + ox[:, None]
    rows = torch.arange(height, device=x.device) + oy[:, None]
    index = torch.arange(batch, device=x.device)[:, None, None]
    return padded[index, rows[:, :, None], cols[:, None, :]]


class BatchLoader:
    """Iterates (images, labels) batches of a split held on `device`.

    train=True shuffles, augments and drops the last incomplete batch; train=False keeps order.
    `sampler` / `batch_sampler` are the two attributes Lightning inspects on a loader."""

    batch_sampler = None

    def __init__(self, split: Split, batch_size: int, mean: tuple[float, ...], std: tuple[float, ...],
                 device: torch.device, train: bool, seed: int = 0) -> None:
        self.x = split.x.to(device)
        self.y = split.y.to(device)
        self.batch_size, self.train = batch_size, train
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
                x, y = self.x[order[index]], self.y[order[index]]
                x = crop_flip(x, rng)
            yield normalise(x, self.mean, self.std), y
