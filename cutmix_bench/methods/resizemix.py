"""ResizeMix (Qin et al., 2020): paste the whole partner image, shrunk into a random box."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..checks import check_number
from . import METHODS
from .base import Method, box_bounds, check_mode, check_probability, partners, to_device


@METHODS.register("resizemix")
class ResizeMix(Method):
    """ResizeMix: the partner resized (nearest) into a box of side tau * size, labels weighted by the box area.

    No official code was released; this follows OpenMixup's `resizemix` (the implementation its benchmarks and
    most papers use): tau ~ U(scope_min, scope_max) = U(0.1, 0.8); box side int(size * tau) around a uniform
    centre with the CutMix arithmetic [c - side//2, c + side//2) clipped to the image; the partner is resized
    with F.interpolate(mode='nearest') to the clipped box; weight of the original label 1 - box area / (H*W).
    mode 'batch' (OpenMixup) draws one tau and box per batch, 'elem' one per sample. Draws: tau, cy, cx,
    coin (< prob), perm."""

    reference = ("Qin et al., ResizeMix: Mixing Data with Preserved Object Information and True Labels, "
                 "arXiv 2020; https://github.com/Westlake-AI/openmixup (openmixup/models/augments/resizemix.py)")

    def __init__(self, scope_min: float = 0.1, scope_max: float = 0.8, prob: float = 1.0, mode: str = "batch") -> None:
        if not 0.0 < check_number("scope_min", scope_min) <= check_number("scope_max", scope_max) <= 1.0:
            raise ValueError(f"scope_min, scope_max must satisfy 0 < scope_min <= scope_max <= 1, "
                             f"got {scope_min}, {scope_max}")
        self.scope = (float(scope_min), float(scope_max))
        self.prob = check_probability("prob", prob)
        self.mode = check_mode(mode)

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        draws = 1 if self.mode == "batch" else batch_size
        tau = rng.uniform(*self.scope, draws)
        cy, cx = rng.integers(0, height, draws), rng.integers(0, width, draws)
        active = rng.random(draws) < self.prob
        y0, y1 = box_bounds(cy, (height * tau).astype(np.int64) * active, height)
        x0, x1 = box_bounds(cx, (width * tau).astype(np.int64) * active, width)
        box = [np.broadcast_to(b, batch_size).copy() for b in (y0, y1, x0, x1)]
        return {"tau": tau, "box": box, "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """One gather for the whole batch: output pixel (r, c) inside box b takes the partner's pixel
        (floor((r - y0) * H / h), floor((c - x0) * W / w)), the source index of nearest interpolation."""
        batch, _, height, width = x.shape
        y0, y1, x0, x1 = (to_device(b, x.device) for b in params["box"])
        perm = to_device(params["perm"], x.device)
        rows, cols = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
        box_h, box_w = (y1 - y0).clamp(min=1), (x1 - x0).clamp(min=1)
        src_r = ((rows[None] - y0[:, None]).clamp(min=0) * height).div(box_h[:, None], rounding_mode="floor")
        src_c = ((cols[None] - x0[:, None]).clamp(min=0) * width).div(box_w[:, None], rounding_mode="floor")
        src_r, src_c = src_r.clamp(max=height - 1), src_c.clamp(max=width - 1)
        source = partners(x, perm)
        index = torch.arange(batch, device=x.device)[:, None, None]
        resized = source.permute(0, 2, 3, 1)[index, src_r[:, :, None], src_c[:, None, :]].permute(0, 3, 1, 2)
        inside = ((rows[None] >= y0[:, None]) & (rows[None] < y1[:, None]))[:, :, None] & \
            ((cols[None] >= x0[:, None]) & (cols[None] < x1[:, None]))[:, None, :]
        mixed = torch.where(inside[:, None], resized, x)
        pasted = ((y1 - y0) * (x1 - x0)).to(y.dtype) / (height * width)
        keep = (1 - pasted)[:, None]
        return mixed, y * keep + y[perm] * (1 - keep)
