"""Deterministic, learnable 32x32 classes for tests and the smoke suite: no files, no network."""

from __future__ import annotations

import numpy as np

from ..errors import BenchError
from . import DATASETS
from .base import Dataset, Split, as_split, channel_stats


@DATASETS.register("synthetic")
class Synthetic(Dataset):
    """Each class is a shared background plus its own 4x4 colour pattern scaled by `separation`;
    samples are shifted, flipped, contrast-jittered, noisy copies, so a small CNN learns the classes
    in a few epochs without saturating. The same `seed` gives the same images on every machine."""

    def __init__(
        self, num_classes: int = 10, train_size: int = 5000, test_size: int = 1000, size: int = 32,
        noise: float = 0.4, separation: float = 0.1, seed: int = 0,
    ) -> None:
        if num_classes < 2 or train_size < 1 or test_size < 1 or size < 8:
            raise BenchError("synthetic data needs num_classes >= 2, train_size/test_size >= 1, size >= 8")
        self.num_classes, self.size, self.noise, self.seed = num_classes, size, noise, seed
        self.separation = separation
        self.sizes = {"train": train_size, "test": test_size}
        self.prototypes = self._prototypes()
        self.mean, self.std = channel_stats(self._load("train").x)

    def _prototypes(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0])
        coarse = 0.5 + self.separation * (rng.random((self.num_classes, 4, 4, 3)) - 0.5)
        coarse += 0.3 * (rng.random((1, 4, 4, 3)) - 0.5)
        # Upsample the 4x4 colour grid to size x size by repetition.
        reps = -(-self.size // 4)
        proto = coarse.repeat(reps, axis=1).repeat(reps, axis=2)[:, : self.size, : self.size]
        return proto

    def _load(self, split: str) -> Split:
        n = self.sizes[split]
        rng = np.random.default_rng([self.seed, 1 if split == "train" else 2])
        y = np.arange(n) % self.num_classes
        images = self.prototypes[y]
        shifts = rng.integers(-3, 4, size=(n, 2))
        images = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(images, shifts)])
        flip = rng.random(n) < 0.5
        images[flip] = images[flip, :, ::-1]
        contrast = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1))
        images = 0.5 + (images - 0.5) * contrast + self.noise * 0.5 * rng.standard_normal(images.shape)
        x = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
        return as_split(x, y, f"synthetic[{split}]", self.num_classes)
