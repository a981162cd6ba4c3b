"""Noise corruptions (Hendrycks & Dietterich 2019): per-pixel random perturbations of x / 255.

Every function takes a uint8 batch [N, H, W, 3], one severity's parameter `c`, a NumPy `Generator` (or any
object with the same `normal` / `poisson` / `random` methods) and returns floats in [0, 255]. Random numbers are
drawn batch-first in the reference's per-image order, so a batch of one consumes the stream exactly as the
reference code does.
"""

from __future__ import annotations

import numpy as np

from .registry import register_corruption


@register_corruption("gaussian_noise", category="noise", short="Gauss",  # sigma on [0, 1]
                     cifar=[0.04, 0.06, 0.08, 0.09, 0.10], imagenet=[0.08, 0.12, 0.18, 0.26, 0.38])
def gaussian_noise(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    x = x / 255.0
    return np.clip(x + rng.normal(0.0, c, x.shape), 0, 1) * 255


@register_corruption("shot_noise", category="noise", short="Shot",  # poisson(x * rate) / rate
                     cifar=[500, 250, 100, 75, 50], imagenet=[60, 25, 12, 5, 3])
def shot_noise(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    x = x / 255.0
    return np.clip(rng.poisson(x * c) / float(c), 0, 1) * 255


@register_corruption("impulse_noise", category="noise", short="Impulse",  # salt-and-pepper amount
                     cifar=[0.01, 0.02, 0.03, 0.05, 0.07], imagenet=[0.03, 0.06, 0.09, 0.17, 0.27])
def impulse_noise(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    """scikit-image `random_noise(mode='s&p', amount=c)` with the caller's generator: a pixel channel is flipped
    with probability c, to 1 (salt) or 0 (pepper) with probability 1/2 each; the reference passed no generator,
    which made it unreproducible."""
    x = x / 255.0
    flipped = rng.random(x.shape) <= c
    salted = rng.random(x.shape) <= 0.5
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return x * 255


@register_corruption("speckle_noise", category="noise", extra=True, short="Speckle",  # x + x * N(0, sigma)
                     cifar=[0.06, 0.1, 0.12, 0.16, 0.2], imagenet=[0.15, 0.2, 0.35, 0.45, 0.6])
def speckle_noise(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    x = x / 255.0
    return np.clip(x + x * rng.normal(0.0, c, x.shape), 0, 1) * 255
