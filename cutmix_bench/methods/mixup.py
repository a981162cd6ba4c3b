"""Mixup (Zhang et al., ICLR 2018): convex combination of a batch and a permutation of it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import METHODS
from .base import Method, check_mode, check_positive, check_probability, partners, to_device


@METHODS.register("mixup")
class Mixup(Method):
    """x = lam*x + (1-lam)*x[perm], same for targets; lam ~ Beta(alpha, alpha).

    mode 'batch' draws one lam per batch (the official code); 'elem' one per sample."""

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, mode: str = "batch") -> None:
        self.alpha = check_positive("alpha", alpha)
        self.prob = check_probability("prob", prob)
        self.mode = check_mode(mode)

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        draws = 1 if self.mode == "batch" else batch_size
        lam = rng.beta(self.alpha, self.alpha, draws)
        lam = np.where(rng.random(draws) < self.prob, lam, 1.0)
        return {"lam": np.broadcast_to(lam, batch_size).copy(), "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        perm = to_device(params["perm"], x.device)
        lam = to_device(params["lam"], x.device, x.dtype)
        # In place on fresh temporaries: the same arithmetic as x*lam + x[perm]*(1-lam), half the allocations.
        mixed_x = (x * lam[:, None, None, None]).add_(partners(x, perm).mul_(1 - lam[:, None, None, None]))
        lam_y = lam.to(y.dtype)[:, None]
        return mixed_x, y * lam_y + y[perm] * (1 - lam_y)
