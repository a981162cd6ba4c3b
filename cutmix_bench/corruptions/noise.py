"""Noise corruptions (Hendrycks & Dietterich 2019): per-pixel random perturbations of x / 255.

Every function takes a uint8 batch [N, H, W, 3], one severity's parameter `c`, a NumPy `Generator` (or any
object with the same `normal` / `poisson` / `random` methods) and returns floats in [0, 255]. Random numbers are
drawn batch-first in the reference's per-image order, so a batch of one consumes the stream exactly as the
reference code does.
"""

from __future__ import annotations

import numpy as np


def gaussian_noise(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    x = x / 255.0
    return np.clip(x + rng.normal(0.0, c, x.shape), 0, 1) * 255


def shot_noise(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    x = x / 255.0
    return np.clip(rng.poisson(x * c) / float(c), 0, 1) * 255


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


def speckle_noise(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    x = x / 255.0
    return np.clip(x + x * rng.normal(0.0, c, x.shape), 0, 1) * 255
