"""Manifold Mixup (Verma et al., ICML 2019): Mixup of the hidden features at a random layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import METHODS
from .base import blend, criterion_for, partners, to_device
from .hidden import HiddenMixing


@METHODS.register("manifold_mixup")
class ManifoldMixup(HiddenMixing):
    """Manifold Mixup: Mixup of the features at a random one of the input and the first stage outputs.

    As the official code (vikasverma1077/manifold_mixup, models/preresnet.py and wide_resnet.py with
    mixup_hidden): layer_mix = randint(0, 2), i.e. k uniform over {0: input, 1: after stage 1, 2: after
    stage 2} (`layers`), lam ~ Beta(alpha, alpha) with alpha = 2.0 (its CIFAR setting), one permutation; the
    features at k become lam*h + (1-lam)*h[perm] and the targets are mixed with the same lam. Draws: k, lam,
    `prob` coin, perm; 'elem' = one lam per sample (the point stays one per batch).

    Loss: by default (`loss: soft_ce`) the runner's soft cross-entropy -sum_k t_k log softmax_k on the mixed
    targets t, as for every method. The official code trains with `bce_loss(softmax(output), reweighted_target)`
    (nn.BCELoss on the softmax: -mean over classes of t log p + (1 - t) log(1 - p)), a different objective (it
    also pushes the other classes' probabilities down, at 1/K of the scale): `loss: bce` trains with it."""

    reference = ("Verma et al., Manifold Mixup: Better Representations by Interpolating Hidden States, ICML 2019; "
                 "https://github.com/vikasverma1077/manifold_mixup")

    def __init__(self, alpha: float = 2.0, layers: Sequence[int] = (0, 1, 2), prob: float = 1.0,
                 mode: str = "batch", loss: str = "soft_ce") -> None:
        super().__init__(alpha, layers, prob, mode)
        self.criterion = criterion_for(loss)

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        point = self.draw_point(rng)
        draws = 1 if self.mode == "batch" else batch_size
        lam = rng.beta(self.alpha, self.alpha, draws)
        lam = np.where(rng.random(draws) < self.prob, lam, 1.0)
        return {"point": point, "lam": np.broadcast_to(lam, batch_size).copy(), "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if params["point"] == 0:
            return blend(x, y, params["lam"], params["perm"])
        perm = to_device(params["perm"], y.device)
        lam_y = to_device(params["lam"], y.device, y.dtype)[:, None]
        target = y * lam_y + y[perm] * (1 - lam_y)

        def mix(h: torch.Tensor) -> torch.Tensor:
            lam = to_device(params["lam"], h.device, h.dtype)[:, None, None, None]
            return (h * lam).add_(partners(h, perm.to(h.device)).mul_(1 - lam))

        self.arm(params["point"], mix)
        return x, target
