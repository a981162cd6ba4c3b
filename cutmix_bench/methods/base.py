"""The contract of a mixing method: sample parameters in one place, apply them in another.

Methods work on whole batches already on the device: `x` is a normalised float batch [B, C, H, W],
`y` soft targets [B, K]. Random parameters come from a NumPy generator so that the same seed gives
the same batch on CPU and GPU; only the application touches the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class Method:
    """Base class: `__call__` = `apply(x, y, sample(batch_size, height, width, rng))`."""

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        return {}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def __call__(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, height, width = x.shape
        return self.apply(x, y, self.sample(batch, height, width, rng))


def check_positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def check_probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def check_mode(mode: str) -> str:
    if mode not in ("batch", "elem"):
        raise ValueError(f"mode must be 'batch' (one draw per batch, as the official code) or 'elem', got {mode!r}")
    return mode


def box_bounds(centre: np.ndarray, side: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """[centre - side//2, centre + side//2), clipped to [0, size]: the arithmetic of the official CutMix
    `rand_bbox` (clovaai/CutMix-PyTorch train.py) and of the official Cutout (uoguelph-mlrg/Cutout
    util/cutout.py). An odd `side` gives a box of side - 1 before clipping, as there."""
    half = side // 2
    return np.clip(centre - half, 0, size), np.clip(centre + half, 0, size)


def to_device(array: np.ndarray, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A host array on the device without a stream synchronisation: a blocking host-to-GPU copy waits
    for every queued kernel, which would stall the GPU once per batch and per parameter."""
    return torch.from_numpy(np.ascontiguousarray(array)).to(device, dtype, non_blocking=True)


def partners(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """`x[perm]` in x's memory format. `index_select` on the dense (NHWC for channels_last) layout is
    several times faster on CPU than advanced indexing of a channels_last batch."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).index_select(0, perm).permute(0, 3, 1, 2)
    return x.index_select(0, perm)


def box_mask(
    y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray, height: int, width: int, device: torch.device
) -> torch.Tensor:
    """Boolean masks [B, 1, H, W], true inside each box [y0, y1) x [x0, x1)."""
    bounds = to_device(np.stack([y0, y1, x0, x1], axis=1), device)
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    inside_rows = (rows >= bounds[:, 0:1]) & (rows < bounds[:, 1:2])
    inside_cols = (cols >= bounds[:, 2:3]) & (cols < bounds[:, 3:4])
    return (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]


def paste_boxes(x: torch.Tensor, source: torch.Tensor, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray,
                x1: np.ndarray) -> torch.Tensor:
    """`x` with the box [y0, y1) x [x0, x1) of each image taken from `source` (same shape and layout).

    For a channels_last batch the mask is built over the NHWC storage at [B, H, W*C] resolution: a mask
    broadcast over the innermost (channel) dimension makes `torch.where` about twice as slow on a CPU."""
    batch, channels, height, width = x.shape
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.where(box_mask(y0, y1, x0, x1, height, width, x.device), source, x)
    mask = box_mask(y0, y1, x0 * channels, x1 * channels, height, width * channels, x.device)[:, 0]
    rows = [t.permute(0, 2, 3, 1).reshape(batch, height, width * channels) for t in (source, x)]
    return torch.where(mask, *rows).view(batch, height, width, channels).permute(0, 3, 1, 2)
