"""FMix (Harris et al., 2020): mix with a binary mask thresholded from Fourier-sampled low-frequency noise."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..checks import check_flag
from . import METHODS
from .base import BetaMixing, check_positive, mask_mix, to_device


def low_frequency_images(param: np.ndarray, decay_power: float, height: int, width: int) -> np.ndarray:
    """[N, H, W] grey images in [0, 1] from standard normal `param` [N, H, W//2+1 (+1 if W odd), 2], with the
    arithmetic of the official make_low_freq_image (ecs-vlc/FMix fmix.py): amplitudes 1 / max(f, 1/max(H, W))
    ** decay_power, the [..., 2] pairs flattened into the last axis as there, irfftn to (H, W), min-max
    normalised per image."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[: width // 2 + (2 if width % 2 else 1)]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(width, height)) ** decay_power
    spectrum = scale[None, :, :, None] * param
    image = np.fft.irfftn(spectrum.reshape(len(param), height, -1), (height, width), axes=(-2, -1))
    image = image - image.min(axis=(1, 2), keepdims=True)
    return image / image.max(axis=(1, 2), keepdims=True)


def binarise(image: np.ndarray, lam: np.ndarray, round_up: np.ndarray) -> np.ndarray:
    """Boolean masks with the `num` brightest pixels true, num = ceil(lam * H*W) if round_up else floor
    (the official binarise_mask with max_soft=0, its coin `random() > 0.5` given as `round_up`)."""
    flat = image.reshape(len(image), -1)
    size = flat.shape[1]
    num = np.where(round_up, np.ceil(lam * size), np.floor(lam * size)).astype(np.int64)
    order = np.argsort(flat, axis=1)[:, ::-1]
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(size)[None].repeat(len(flat), 0), axis=1)
    return (rank < num[:, None]).reshape(image.shape)


@METHODS.register("fmix")
class FMix(BetaMixing):
    """FMix: a binary mask from thresholded low-frequency Fourier noise, labels weighted by its exact share.

    The official sampling (ecs-vlc/FMix fmix.py sample_mask, FMixBase defaults decay_power=3, alpha=1,
    max_soft=0): lam ~ Beta(alpha, alpha); a low-frequency image
    from spectrum N(0, 1) * 1/f^decay_power; the top ceil(lam*H*W) pixels (floor with probability 1/2) are
    taken from the image itself, the rest from its partner (x*mask + x[perm]*(1-mask), as sample_and_apply).
    The label weight is the mask's exact share num/(H*W); the official loss uses lam, which differs from it
    by less than 1/(H*W). max_soft (soft mask edges) is not offered. Draws: lam, spectrum, rounding coin,
    `prob` coin, perm. 'batch' = one mask per batch (official), 'elem' one per sample.

    `reformulate: true` is the official reformulation (implementations/torchbearer_implementation.py, FMix with
    reformulate=True): lam ~ Beta(alpha+1, alpha), the images mixed by the mask as above, and the loss the
    cross-entropy with each image's OWN label alone (fmix_loss: `F.cross_entropy(input, y)`), so the targets are
    returned unmixed."""

    reference = ("Harris et al., FMix: Enhancing Mixed Sample Data Augmentation, arXiv 2020; "
                 "https://github.com/ecs-vlc/FMix")

    def __init__(self, alpha: float = 1.0, decay_power: float = 3.0, reformulate: bool = False, prob: float = 1.0,
                 mode: str = "batch") -> None:
        super().__init__(alpha=alpha, prob=prob, mode=mode)
        self.decay_power = check_positive("decay_power", decay_power)
        self.reformulate = check_flag("reformulate", reformulate)

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        draws = self.draws(batch_size)
        lam = rng.beta(self.alpha + self.reformulate, self.alpha, draws)
        param = rng.standard_normal((draws, height, width // 2 + (2 if width % 2 else 1), 2))
        round_up = rng.random(draws) > 0.5
        mask = binarise(low_frequency_images(param, self.decay_power, height, width), lam, round_up)
        mask |= (rng.random(draws) >= self.prob)[:, None, None]  # not mixed: keep every pixel
        return {"lam": lam, "mask": mask.repeat(batch_size // draws, axis=0),
                "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        keep = to_device(params["mask"], x.device)[:, None]
        mixed_x, mixed_y = mask_mix(x, y, keep, params["perm"])
        return (mixed_x, y) if self.reformulate else (mixed_x, mixed_y)
