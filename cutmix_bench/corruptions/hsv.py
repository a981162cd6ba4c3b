"""RGB <-> HSV edits with scikit-image's arithmetic (`rgb2hsv` / `hsv2rgb`, bit for bit) in fewer passes.

The reference's brightness and saturate convert with scikit-image; its `hsv2rgb` stacks six [.., 3] candidate
images, which dominates their run time. Here the same float64 expressions are evaluated once per pixel and the
output channels picked from (v, p, q, t) with a 6x3 table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# hsv2rgb's sector table: for hue sector hi, the (r, g, b) outputs as indices into (v, p, q, t)
_SECTORS = np.array([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]], dtype=np.uint8)


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """h, s, v of float RGB in [0, 1] [..., 3], as `skimage.color.rgb2hsv` computes them."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = np.maximum(np.maximum(r, g), b)
    delta = v - np.minimum(np.minimum(r, g), b)
    flat = delta == 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        s = delta / v
        # later channels win ties, as in scikit-image's successive masked assignments
        h = np.where(b == v, 4.0 + (r - g) / delta, np.where(g == v, 2.0 + (b - r) / delta, (g - b) / delta))
    s[flat] = 0.0
    h = (h / 6.0) % 1.0
    h[flat] = 0.0
    return h, s, v


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """`skimage.color.hsv2rgb` of separate h, s, v arrays, [..., 3] float64."""
    hi = np.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    sector = _SECTORS[hi.astype(np.uint8) % 6]
    return np.take_along_axis(np.stack([v, p, q, t], axis=-1), sector, axis=-1)


def edit_hsv(x: np.ndarray, channel: int, edit: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """uint8 RGB -> HSV, replace one HSV channel (0 h, 1 s, 2 v) by edit(channel), back to float RGB in [0, 1]."""
    hsv = list(rgb_to_hsv(x / 255.0))
    hsv[channel] = edit(hsv[channel])
    return hsv_to_rgb(*hsv)
