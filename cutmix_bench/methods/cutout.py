"""Cutout (DeVries & Taylor, 2017): one square hole per image, label unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..checks import check_integer
from . import METHODS
from .base import Method, box_bounds, box_mask, check_probability, to_device


@METHODS.register("cutout", display="Cutout")
class Cutout(Method):
    """Cutout: one square hole per image filled with the normalised 0, labels unchanged.

    A `size` x `size` hole (`size` - 1 for an odd size, as the official code), centre uniform over the
    image, clipped at the border (so it can be partly outside), filled with 0 in normalised space, i.e.
    the dataset mean colour."""

    reference = ("DeVries & Taylor, Improved Regularization of Convolutional Neural Networks with Cutout, "
                 "arXiv 2017; https://github.com/uoguelph-mlrg/Cutout")

    def __init__(self, size: int = 16, prob: float = 1.0) -> None:
        self.size = check_integer("size", size, 1)
        self.prob = check_probability("prob", prob)

    def check_image(self, height: int, width: int) -> None:
        if self.size > max(height, width):
            raise ValueError(f"size {self.size} is larger than the image ({height}x{width}); expected at most "
                             f"{max(height, width)}")

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        cy = rng.integers(0, height, batch_size)
        cx = rng.integers(0, width, batch_size)
        side = np.full(batch_size, self.size)
        y0, y1 = box_bounds(cy, side, height)
        x0, x1 = box_bounds(cx, side, width)
        active = rng.random(batch_size) < self.prob
        return {"box": (y0, y1, x0, x1), "active": active}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = box_mask(*params["box"], x.shape[2], x.shape[3], x.device)
        mask &= to_device(params["active"], x.device)[:, None, None, None]
        return x.clone().masked_fill_(mask, 0.0), y  # clone keeps channels_last; masked_fill would not
