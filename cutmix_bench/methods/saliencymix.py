"""SaliencyMix (Uddin et al., ICLR 2021): CutMix whose box is centred on the partner's saliency peak."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import METHODS
from .base import BetaMixing, partners, to_device


def gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    radius = int(np.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return kernel / kernel.sum()


def spectral_residual(x: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """[B, H, W] saliency of a [B, C, H, W] batch by the spectral residual (Hou & Zhang, CVPR 2007), batched on
    the device: grey = channel mean; L = log|FFT|, P = phase; S = |IFFT(exp(L - mean3x3(L) + iP))|^2, smoothed
    by a Gaussian (sigma pixels). Filters use edge (replicate) padding."""
    grey = x.float().mean(1)
    spectrum = torch.fft.fft2(grey)
    log_amp = torch.log(spectrum.abs() + 1e-8)
    mean = F.avg_pool2d(F.pad(log_amp[:, None], (1, 1, 1, 1), mode="replicate"), 3, stride=1)[:, 0]
    residual = torch.polar(torch.exp(log_amp - mean), spectrum.angle())
    saliency = torch.fft.ifft2(residual).abs() ** 2
    kernel = gaussian_kernel(sigma, x.device)
    pad = len(kernel) // 2
    s = F.pad(saliency[:, None], (pad, pad, pad, pad), mode="replicate")
    s = F.conv2d(s, kernel.view(1, 1, 1, -1))
    return F.conv2d(s, kernel.view(1, 1, -1, 1))[:, 0]


@METHODS.register("saliencymix")
class SaliencyMix(BetaMixing):
    """SaliencyMix: CutMix's box, centred on the partner's most salient pixel, pasted at the same place.

    The official CIFAR code (afm-shahab-uddin/SaliencyMix SaliencyMix_CIFAR/saliencymix.py): coin < prob, lam ~
    Beta(beta, beta), perm; saliency of the partner of sample 0 (images[rand_index[0]]); box side int(size *
    sqrt(1 - lam)) around the argmax, [c - side//2, c + side//2) clipped; that region of every partner pasted;
    lam recomputed from the box area. Saliency: the official uses OpenCV-contrib's StaticSaliencyFineGrained,
    which is not in opencv-python (no cv2.saliency) and runs per image on the host; here the spectral residual
    saliency (Hou & Zhang 2007; OpenCV's other static detector, StaticSaliencySpectralResidual), batched on the
    device and tested against a SciPy implementation. 'batch' = one box per batch (official), 'elem' = per-sample
    lam and a box at each partner's own peak. Draws: coin, lam, perm."""

    reference = ("Uddin et al., SaliencyMix: A Saliency Guided Data Augmentation Strategy for Better Regularization, "
                 "ICLR 2021; https://github.com/afm-shahab-uddin/SaliencyMix")

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        draws = self.draws(batch_size)
        active = rng.random(draws) < self.prob
        lam = rng.beta(self.alpha, self.alpha, draws)
        cut = np.sqrt(1.0 - lam)
        side_h = (height * cut).astype(np.int64) * active
        side_w = (width * cut).astype(np.int64) * active
        return {"lam": lam, "side": (side_h, side_w), "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, height, width = x.shape
        perm = to_device(params["perm"], x.device)
        source = partners(x, perm)
        scored = source[:1] if self.mode == "batch" else source
        peak = spectral_residual(scored).flatten(1).argmax(1)
        cy, cx = (peak // width).expand(batch), (peak % width).expand(batch)
        half_h, half_w = (to_device(s // 2, x.device).expand(batch) for s in params["side"])
        y0, y1 = (cy - half_h).clamp(0, height), (cy + half_h).clamp(0, height)
        x0, x1 = (cx - half_w).clamp(0, width), (cx + half_w).clamp(0, width)
        rows, cols = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
        inside = ((rows >= y0[:, None]) & (rows < y1[:, None]))[:, :, None] & \
            ((cols >= x0[:, None]) & (cols < x1[:, None]))[:, None, :]
        mixed = torch.where(inside[:, None], source, x)
        pasted = ((y1 - y0) * (x1 - x0)).to(y.dtype) / (height * width)
        keep = (1 - pasted)[:, None]
        return mixed, y * keep + y[perm] * (1 - keep)
