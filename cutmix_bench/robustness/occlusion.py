"""Centred square holes (CutMix paper, Fig. 5a): where they sit, the occluded images, the curve summary.

Convention: a centred s x s square covers rows [y0, y0 + s) and columns [x0, x0 + s) with
y0 = (H - s) // 2 and x0 = (W - s) // 2 (floor), clipped to the image. When H - s is odd the extra row
lies below the square (likewise the extra column to its right), i.e. the square sits half a pixel up
and left of the exact centre. Within the image (s <= min(H, W)) it has exactly s * s pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

Mode = Literal["centre", "boundary"]
MODES: tuple[Mode, ...] = ("centre", "boundary")


def centred_bounds(size: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the centred `size` x `size` square as [y0, y1) x [x0, x1), clipped to the image."""
    y0, x0 = (height - size) // 2, (width - size) // 2
    return max(y0, 0), min(y0 + size, height), max(x0, 0), min(x0 + size, width)


def centred_mask(size: int, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean [H, W], true inside the centred `size` x `size` square."""
    y0, y1, x0, x1 = centred_bounds(size, height, width)
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[y0:y1, x0:x1] = True
    return mask


def occlude(x: torch.Tensor, size: int, mode: Mode, fill: torch.Tensor) -> torch.Tensor:
    """`x` [B, C, H, W] with the centred square ("centre") or everything outside it ("boundary") set to
    `fill` (broadcastable to [1, C, 1, 1], e.g. the dataset mean colour); other pixels are untouched."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    mask = centred_mask(size, x.shape[2], x.shape[3], x.device)
    if mode == "boundary":
        mask = ~mask
    return torch.where(mask, fill.to(x.dtype).reshape(1, -1, 1, 1), x)


def default_sizes(side: int, points: int = 9) -> list[int]:
    """`points` evenly spaced hole sizes from 0 to `side` (0, 4, ..., 32 for a 32-pixel image)."""
    return sorted({side * k // (points - 1) for k in range(points)})


def normalised_auc(sizes: Sequence[int], errors: Sequence[float], side: int) -> float:
    """Trapezoid area under error(s) over s / side, divided by the span of s / side: the mean error over the
    grid's range (over [0, 1] when the grid runs from 0 to the side), in the units of `errors`."""
    if len(sizes) < 2:
        raise ValueError("the area under the curve needs at least two sizes")
    order = np.argsort(sizes)
    fraction = np.asarray(sizes, dtype=float)[order] / side
    error = np.asarray(errors, dtype=float)[order]
    area = float(np.sum(np.diff(fraction) * (error[1:] + error[:-1]) / 2))
    return area / float(fraction[-1] - fraction[0])
