"""Mixup (Zhang et al., ICLR 2018): convex combination of a batch and a permutation of it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import METHODS
from .base import BetaMixing, blend


@METHODS.register("mixup", display="Mixup")
class Mixup(BetaMixing):
    """Mixup: x = lam*x + (1-lam)*x[perm], same for targets; lam ~ Beta(alpha, alpha).

    mode 'batch' draws one lam per batch (the official code); 'elem' one per sample. Draws: lam, the
    `prob` coin, the permutation."""

    reference = ("Zhang et al., mixup: Beyond Empirical Risk Minimization, ICLR 2018; "
                 "https://github.com/facebookresearch/mixup-cifar10")

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        draws = self.draws(batch_size)
        lam = rng.beta(self.alpha, self.alpha, draws)
        lam = np.where(rng.random(draws) < self.prob, lam, 1.0)
        return {"lam": np.broadcast_to(lam, batch_size).copy(), "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return blend(x, y, params["lam"], params["perm"])
