"""Image data as one uint8 NHWC tensor per split, validated once at load time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import BenchError


@dataclass
class Split:
    """Images `x` uint8 [N, H, W, C] and labels `y` int64 [N], both CPU tensors."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, size: int | None, seed: int = 0) -> Split:
        """A seeded random subset (rows of the shared files are grouped by class)."""
        if size is None or size >= len(self):
            return self
        index = torch.as_tensor(np.random.default_rng(seed).permutation(len(self))[:size])
        return Split(self.x[index], self.y[index])


class Dataset:
    """A named image source. Subclasses set the class attributes and implement `_load`."""

    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def load(self, split: str) -> Split:
        if split not in ("train", "test"):
            raise BenchError(f"split must be 'train' or 'test', got {split!r}")
        return self._load(split)

    def _load(self, split: str) -> Split:
        raise NotImplementedError


def as_split(x: np.ndarray, y: np.ndarray, source: str, num_classes: int | None = None) -> Split:
    """Check shape, dtype and label range of arrays read from `source` and wrap them as tensors."""
    if x.dtype != np.uint8:
        raise BenchError(f"{source}: images must be uint8, got {x.dtype}")
    if x.ndim != 4 or x.shape[3] not in (1, 3):
        raise BenchError(f"{source}: images must have shape [N, H, W, C] with C in (1, 3), got {list(x.shape)}")
    if 0 in x.shape:
        raise BenchError(f"{source}: expected at least one image of at least 1x1 pixels, got shape {list(x.shape)}")
    if y.ndim != 1 or len(y) != len(x):
        raise BenchError(f"{source}: labels must have shape [{len(x)}], got {list(y.shape)}")
    if not np.issubdtype(y.dtype, np.integer):
        raise BenchError(f"{source}: labels must be integers, got {y.dtype}")
    if len(y) and (y.min() < 0 or (num_classes is not None and y.max() >= num_classes)):
        expected = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise BenchError(f"{source}: labels must be in {expected}, got range [{y.min()}, {y.max()}]")
    if x.shape[3] == 1:
        x = np.repeat(x, 3, axis=3)
    return Split(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)))


def read_npz(path: Path, num_classes: int | None = None) -> Split:
    """Load `x` / `y` from an .npz without pickle; every failure names the file."""
    if not path.is_file():
        raise BenchError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise BenchError(f"{path}: missing array(s) {sorted(missing)}; expected 'x' uint8 NHWC and 'y' int")
            x, y = archive["x"], archive["y"]
    except BenchError:
        raise
    except Exception as exc:  # zipfile, pickle and format errors all mean the same thing to the user
        raise BenchError(f"{path}: not a readable .npz file ({exc})") from exc
    return as_split(x, y, str(path), num_classes)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (unbiased) std on [0, 1] of uint8 NHWC images, from exact integer
    histograms: a float64 copy of CIFAR's training set would take 1.2 GB and ten seconds."""
    flat = x.cpu().numpy().reshape(-1, x.shape[-1])
    n, values = len(flat), np.arange(256, dtype=np.int64)
    means, stds = [], []
    for channel in range(flat.shape[1]):
        counts = np.bincount(flat[:, channel], minlength=256)
        total, squares = int(counts @ values), int(counts @ values**2)
        means.append(total / n / 255)
        stds.append(math.sqrt((n * squares - total * total) / (n * (n - 1))) / 255 if n > 1 else math.nan)
    return tuple(means), tuple(stds)
