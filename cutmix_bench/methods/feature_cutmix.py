"""Feature-level CutMix (the CutMix paper's ablation): CutMix on the feature maps of a random layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import METHODS
from .base import box_bounds, partners, paste, paste_boxes, to_device
from .hidden import HiddenMixing, feature_size


@METHODS.register("feature_cutmix")
class FeatureCutMix(HiddenMixing):
    """Feature CutMix: CutMix's box pasted into the feature maps at the input or a random stage output.

    The CutMix paper (Sec. 4.1.1, Table 6 "Feature CutMix") applies CutMix to the feature maps at a random
    layer (0 = image, 1-3 = after stages 1-3). The box uses the official rand_bbox at the feature resolution
    (side int(s * sqrt(1 - lam)), centre uniform over the feature map, [c - side//2, c + side//2) clipped), and
    the label weight is the exact pasted share of that feature map. Draws: k, lam, cy, cx (as fractions of the
    feature size), coin, perm; one box per batch ('batch', as the official image-level code) or per sample."""

    reference = ("Yun et al., CutMix, ICCV 2019 (Table 6, feature-level CutMix); "
                 "https://github.com/clovaai/CutMix-PyTorch")

    def __init__(self, alpha: float = 1.0, layers: Sequence[int] = (0, 1, 2, 3), prob: float = 1.0,
                 mode: str = "batch") -> None:
        super().__init__(alpha, layers, prob, mode)
        self._sizes: dict[tuple[int, int, int], tuple[int, int]] = {}

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        point = self.draw_point(rng)
        if point > 0:
            key = (height, width, point)
            if key not in self._sizes:  # walking the modules costs more than the draws: once per shape
                self._sizes[key] = (feature_size(height, self.blocks, point, self.ends),
                                    feature_size(width, self.blocks, point, self.ends))
            height, width = self._sizes[key]
        draws = 1 if self.mode == "batch" else batch_size
        lam = rng.beta(self.alpha, self.alpha, draws)
        cy = (rng.random(draws) * height).astype(np.int64)
        cx = (rng.random(draws) * width).astype(np.int64)
        active = rng.random(draws) < self.prob
        cut = np.sqrt(1.0 - lam)
        y0, y1 = box_bounds(cy, (height * cut).astype(np.int64) * active, height)
        x0, x1 = box_bounds(cx, (width * cut).astype(np.int64) * active, width)
        box = [np.broadcast_to(b, batch_size).copy() for b in (y0, y1, x0, x1)]
        return {"point": point, "size": (height, width), "lam": lam, "box": box, "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if params["point"] == 0:
            return paste(x, y, params["box"], params["perm"])
        y0, y1, x0, x1 = params["box"]
        height, width = params["size"]
        perm = to_device(params["perm"], y.device)
        share = to_device((y1 - y0) * (x1 - x0), y.device, y.dtype)[:, None] / (height * width)
        target = y * (1 - share) + y[perm] * share

        def mix(h: torch.Tensor) -> torch.Tensor:
            if h.shape[2:] != (height, width):
                raise RuntimeError(f"feature_cutmix: expected {height}x{width} features at stage {params['point']}, "
                                   f"got {tuple(h.shape[2:])}")
            return paste_boxes(h, partners(h, perm.to(h.device)), y0, y1, x0, x1)

        self.arm(params["point"], mix)
        return x, target
