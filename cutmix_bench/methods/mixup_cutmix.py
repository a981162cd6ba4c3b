"""timm's "Mixup or CutMix" recipe: per batch (or per sample) either Mixup or CutMix, each with its own alpha."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import METHODS
from .base import BetaMixing, blend, box_mask, check_positive, check_probability, cutmix_boxes, mask_mix, paste


@METHODS.register("mixup_cutmix")
class MixupCutMix(BetaMixing):
    """Mixup or CutMix per batch (timm's Mixup with mixup_alpha and cutmix_alpha > 0), switch_prob for CutMix.

    The sampling of timm's Mixup._params_per_batch / _params_per_elem (timm/data/mixup.py), in its order:
    'batch': coin < prob, then (if mixing) switch < switch_prob picks CutMix, then lam ~ Beta of the chosen
    alpha; 'elem': per sample switch < switch_prob, lam_cutmix ~ Beta(cutmix_alpha) and lam_mixup ~
    Beta(mixup_alpha) both drawn and one kept, then coin < prob (else lam = 1). CutMix boxes are timm's
    rand_bbox (= the official one: centre cy then cx uniform, side int(size * sqrt(1 - lam)), clipped), the
    label weight corrected to the exact pasted share (timm's correct_lam=True). Partners: `pairing: flip`
    pairs sample i with B-1-i as timm (x.flip(0)); `perm` uses a random permutation as the other methods.
    The box is the official CutMix box, and it is also current timm's: timm/data/mixup.py rand_bbox draws
    [c - side//2, c + side//2) clipped (so an odd side gives side - 1 before clipping) in every release from its
    2020-08 rewrite (8c9814e3) to v1.0.28 and the main branch at aa4b5850 (1.0.29.dev0), checked in their source;
    tests/test_methods_new.py holds that rand_bbox as an oracle.
    One difference from timm: timm asserts an even batch; here an odd batch's middle sample pairs with itself.
    Label smoothing: `smoothing: 0.1` as for every method (timm's label_smoothing, applied before mixing)."""

    reference = ("Wightman, timm (PyTorch Image Models) Mixup/CutMix recipe, 2019-; "
                 "https://github.com/huggingface/pytorch-image-models/blob/main/timm/data/mixup.py")

    def __init__(self, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, switch_prob: float = 0.5,
                 prob: float = 1.0, mode: str = "batch", pairing: str = "flip") -> None:
        self.mixup_alpha = check_positive("mixup_alpha", mixup_alpha)
        self.cutmix_alpha = check_positive("cutmix_alpha", cutmix_alpha)
        super().__init__(alpha=cutmix_alpha, prob=prob, mode=mode)
        self.switch_prob = check_probability("switch_prob", switch_prob)
        if pairing not in ("flip", "perm"):
            raise ValueError(f"pairing must be 'flip' (timm: sample i with B-1-i) or 'perm', got {pairing!r}")
        self.pairing = pairing

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        if self.mode == "batch":
            mixing = rng.random() < self.prob
            use_cutmix = mixing and rng.random() < self.switch_prob
            lam = 1.0
            if mixing:
                lam = rng.beta(self.cutmix_alpha, self.cutmix_alpha) if use_cutmix else \
                    rng.beta(self.mixup_alpha, self.mixup_alpha)
            use_cutmix, lam = np.array([use_cutmix]), np.array([lam])
        else:
            use_cutmix = rng.random(batch_size) < self.switch_prob
            lam = np.where(use_cutmix, rng.beta(self.cutmix_alpha, self.cutmix_alpha, batch_size),
                           rng.beta(self.mixup_alpha, self.mixup_alpha, batch_size))
            lam = np.where(rng.random(batch_size) < self.prob, lam, 1.0)
        draws = len(lam)
        cy, cx = rng.integers(0, height, draws), rng.integers(0, width, draws)
        box = cutmix_boxes(lam, cy, cx, use_cutmix & (lam < 1), batch_size, height, width)
        perm = np.arange(batch_size)[::-1].copy() if self.pairing == "flip" else rng.permutation(batch_size)
        return {"lam": np.broadcast_to(lam, batch_size).copy(), "use_cutmix": np.broadcast_to(use_cutmix, batch_size),
                "box": box, "perm": perm}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        use_cutmix, lam, perm = params["use_cutmix"], params["lam"], params["perm"]
        if not use_cutmix.any():
            return blend(x, y, lam, perm)
        if use_cutmix.all():
            return paste(x, y, params["box"], perm)
        # Per-sample mix of both (vectorised): a weight map, 0 inside a CutMix box, 1 outside, lam for Mixup.
        inside = box_mask(*params["box"], x.shape[2], x.shape[3], x.device)
        cut = torch.from_numpy(use_cutmix.copy()).to(x.device)[:, None, None, None]
        lam_t = torch.from_numpy(lam).to(x.device, torch.float64)[:, None, None, None]
        keep = torch.where(cut, (~inside).double(), lam_t.expand_as(inside))
        return mask_mix(x, y, keep, perm)
