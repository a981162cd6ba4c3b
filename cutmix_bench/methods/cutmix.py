"""CutMix (Yun et al., ICCV 2019): paste a box from a shuffled partner, weight labels by area."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import METHODS
from .base import Method, box_bounds, check_mode, check_positive, check_probability, partners, paste_boxes, to_device


@METHODS.register("cutmix")
class CutMix(Method):
    """lam ~ Beta(alpha, alpha); box side = sqrt(1 - lam) of the image side, centre uniform, clipped
    at the border; the weight of the original label is recomputed as 1 - (clipped area) / (H * W).

    mode 'batch' (the official code) uses one lam and one box per batch, applied with probability
    `prob` per batch; 'elem' draws lam, box and the coin per sample."""

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, mode: str = "batch") -> None:
        self.alpha = check_positive("alpha", alpha)
        self.prob = check_probability("prob", prob)
        self.mode = check_mode(mode)

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        draws = 1 if self.mode == "batch" else batch_size
        lam = rng.beta(self.alpha, self.alpha, draws)
        cy = rng.integers(0, height, draws)
        cx = rng.integers(0, width, draws)
        active = rng.random(draws) < self.prob
        cut = np.sqrt(1.0 - lam)
        y0, y1 = box_bounds(cy, (height * cut).astype(np.int64) * active, height)
        x0, x1 = box_bounds(cx, (width * cut).astype(np.int64) * active, width)
        box = [np.broadcast_to(b, batch_size).copy() for b in (y0, y1, x0, x1)]
        return {"lam": lam, "box": box, "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = x.shape[2], x.shape[3]
        y0, y1, x0, x1 = params["box"]
        perm = to_device(params["perm"], x.device)
        if all((b == b[0]).all() for b in params["box"]):  # one box for the batch: copy only the box
            mixed_x = x.clone()
            mixed_x[:, :, y0[0]:y1[0], x0[0]:x1[0]] = x[perm, :, y0[0]:y1[0], x0[0]:x1[0]]
        else:
            mixed_x = paste_boxes(x, partners(x, perm), y0, y1, x0, x1)
        pasted = to_device((y1 - y0) * (x1 - x0), x.device, y.dtype) / (height * width)
        keep = (1 - pasted)[:, None]
        return mixed_x, y * keep + y[perm] * (1 - keep)
