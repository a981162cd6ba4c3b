"""Cutout + Mixup, one of the CutMix paper's combined baselines: Cutout on every image, then Mixup."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import METHODS
from .base import Method
from .cutout import Cutout
from .mixup import Mixup


@METHODS.register("cutout_mixup")
class CutoutMixup(Method):
    """Cutout + Mixup: each image gets its Cutout hole, then the holed batch is mixed by Mixup.

    Draws: Cutout's (centres, coin), then Mixup's (lam, coin, permutation), so each part samples exactly as
    the method alone. Labels are mixed by Mixup only (Cutout keeps them). Order Cutout-then-Mixup: both
    images of a mixed pair carry a hole, as in the CutMix paper's "Mixup + Cutout" baseline (Table 3)."""

    reference = ("Yun et al., CutMix, ICCV 2019, Table 3 baseline combining Cutout (uoguelph-mlrg/Cutout) and "
                 "Mixup (facebookresearch/mixup-cifar10); https://github.com/clovaai/CutMix-PyTorch")

    def __init__(self, size: int = 16, cutout_prob: float = 1.0, alpha: float = 1.0, prob: float = 1.0,
                 mode: str = "batch") -> None:
        self.cutout = Cutout(size=size, prob=cutout_prob)
        self.mixup = Mixup(alpha=alpha, prob=prob, mode=mode)

    def check_image(self, height: int, width: int) -> None:
        self.cutout.check_image(height, width)

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        return {"cutout": self.cutout.sample(batch_size, height, width, rng),
                "mixup": self.mixup.sample(batch_size, height, width, rng)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mixup.apply(*self.cutout.apply(x, y, params["cutout"]), params["mixup"])
