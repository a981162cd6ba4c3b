"""CutMix (Yun et al., ICCV 2019): paste a box from a shuffled partner, weight labels by area."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import METHODS
from .base import BetaMixing, cutmix_boxes, paste


@METHODS.register("cutmix", display="CutMix")
class CutMix(BetaMixing):
    """CutMix: a box of a shuffled partner pasted in, labels weighted by the exact pasted area.

    lam ~ Beta(alpha, alpha); box side = sqrt(1 - lam) of the image side, centre uniform, clipped
    at the border; the weight of the original label is recomputed as 1 - (clipped area) / (H * W).

    mode 'batch' (the official code) uses one lam and one box per batch, applied with probability
    `prob` per batch; 'elem' draws lam, box and the coin per sample. Draws: lam, cy, cx, coin, perm."""

    reference = ("Yun et al., CutMix: Regularization Strategy to Train Strong Classifiers with Localizable "
                 "Features, ICCV 2019; https://github.com/clovaai/CutMix-PyTorch")

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        draws = self.draws(batch_size)
        lam = rng.beta(self.alpha, self.alpha, draws)
        cy = rng.integers(0, height, draws)
        cx = rng.integers(0, width, draws)
        active = rng.random(draws) < self.prob
        box = cutmix_boxes(lam, cy, cx, active, batch_size, height, width)
        return {"lam": lam, "box": box, "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return paste(x, y, params["box"], params["perm"])
