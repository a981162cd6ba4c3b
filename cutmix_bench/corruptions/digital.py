"""Digital corruptions (Hendrycks & Dietterich 2019): colour, contrast, geometry and codec artefacts.

Signature as in `noise.py`. JPEG and PIL resizing run per image (the codec and PIL's fixed-point resampler are
what the reference used); the rest is batched.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .blur import gaussian
from .hsv import edit_hsv
from .registry import register_corruption


@register_corruption("contrast", category="digital", short="Contrast",  # factor around the channel means
                     cifar=[0.75, 0.5, 0.4, 0.3, 0.15], imagenet=[0.4, 0.3, 0.2, 0.1, 0.05])
def contrast(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    x = x / 255.0
    means = np.mean(x, axis=(1, 2), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


# ImageNet-C counts brightness as weather
@register_corruption("brightness", category="weather", short="Bright",  # added to HSV value
                     cifar=[0.05, 0.1, 0.15, 0.2, 0.3], imagenet=[0.1, 0.2, 0.3, 0.4, 0.5])
def brightness(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    """HSV value + c (scikit-image's HSV conversion, as the reference)."""
    return np.clip(edit_hsv(x, 2, lambda v: np.clip(v + c, 0, 1)), 0, 1) * 255


@register_corruption("saturate", category="digital", extra=True, short="Saturate",  # HSV saturation * c0 + c1
                     cifar=[(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
                     imagenet=[(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)])
def saturate(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """HSV saturation * c0 + c1; CIFAR-10-C severities 1-2 desaturate, 3-5 saturate."""
    return np.clip(edit_hsv(x, 1, lambda s: np.clip(s * c[0] + c[1], 0, 1)), 0, 1) * 255


@register_corruption("jpeg_compression", category="digital", short="JPEG",  # PIL quality
                     cifar=[80, 65, 58, 50, 40], imagenet=[25, 18, 15, 10, 7])
def jpeg_compression(x: np.ndarray, c: int, rng, variant: str) -> np.ndarray:
    """JPEG at quality c. The reference saved with PIL; OpenCV's encoder/decoder (libjpeg-turbo, same 4:2:0
    subsampling and integer DCT) returns the same bytes about 4x faster (tests check equality with PIL)."""
    out = np.empty_like(x)
    for i, image in enumerate(x):
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(c)])
        out[i] = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return out


@register_corruption("pixelate", category="digital", short="Pixel",  # BOX downscale factor (then BOX upscale)
                     cifar=[0.95, 0.9, 0.85, 0.75, 0.65], imagenet=[0.6, 0.5, 0.4, 0.3, 0.25])
def pixelate(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    """BOX downscale by c, then back up with BOX (CIFAR-10-C) or NEAREST (`imagecorruptions`)."""
    h, w = x.shape[1:3]
    up = Image.BOX if variant == "cifar" else Image.NEAREST
    out = np.empty_like(x)
    for i, image in enumerate(x):
        small = Image.fromarray(image).resize((int(w * c), int(h * c)), Image.BOX)
        out[i] = np.asarray(small.resize((w, h), up))
    return out


def _reflect(coord: np.ndarray, size: int) -> np.ndarray:
    """scipy.ndimage's map_coordinate() for mode 'reflect' (half-sample symmetric), |coord| < 2 * size:
    the result lies in (-1, size - 1]."""
    outside = (coord < 0) | (coord > size - 1)
    if not outside.any():
        return coord
    period = 2 * size
    c = coord[outside]
    low = np.where(c < -size, c + period, np.where(c > -1e-15, 1e-15, -c) - 1)
    high = c - period * np.trunc(c / period)
    high = np.where(high >= size, period - high - 1, high)
    mapped = coord.copy()
    mapped[outside] = np.where(c < 0, low, high)
    return mapped


def bilinear_reflect(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`scipy.ndimage.map_coordinates(image, (rows, cols, channel), order=1, mode='reflect')` for a batch
    [N, H, W, C] with per-image float64 coordinates [N, H, W] shared by the channels, evaluated with scipy's
    arithmetic (weights 1 - t and 1 - (1 - t); value * w_row * w_col summed corner by corner), float32 out."""
    n, h, w, ch = images.shape
    if np.abs(rows).max(initial=0) >= 2 * h or np.abs(cols).max(initial=0) >= 2 * w:
        raise ValueError("displacement beyond one image period")
    rows, cols = _reflect(rows, h), _reflect(cols, w)
    r0, c0 = np.floor(rows), np.floor(cols)
    wr0, wc0 = 1.0 - (rows - r0), 1.0 - (cols - c0)
    wr1, wc1 = 1.0 - wr0, 1.0 - wc0
    # neighbours -1 and size reflect to 0 and size - 1
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    base = (np.arange(n) * h)[:, None, None]
    r0, r1 = (base + np.clip(r0, 0, h - 1)) * w, (base + np.clip(r0 + 1, 0, h - 1)) * w
    c0, c1 = np.clip(c0, 0, w - 1), np.clip(c0 + 1, 0, w - 1)
    planes = np.ascontiguousarray(np.moveaxis(images, 3, 0)).reshape(ch, -1)  # channel-first: long inner loops
    total = np.zeros((ch, n, h, w), dtype=np.float64)
    value = np.empty((ch, n, h, w), dtype=np.float64)
    for r, wr in ((r0, wr0), (r1, wr1)):
        for c, wc in ((c0, wc0), (c1, wc1)):
            value[...] = planes.take(r + c, axis=1)  # float32 value promoted, then * w_row * w_col, as scipy
            value *= wr
            value *= wc
            total += value
    return np.moveaxis(total, 0, 3).astype(np.float32)


# (alpha, sigma, affine jitter) in pixels = fractions of the 32-pixel side; no ImageNet-C table: imagecorruptions
# uses another algorithm for it (params="imagenet-fast" runs that one)
@register_corruption("elastic_transform", category="digital", short="Elastic",
                     cifar=[(32 * 0, 32 * 0, 32 * 0.08), (32 * 0.05, 32 * 0.2, 32 * 0.07),
                            (32 * 0.08, 32 * 0.06, 32 * 0.06), (32 * 0.1, 32 * 0.04, 32 * 0.05),
                            (32 * 0.1, 32 * 0.03, 32 * 0.03)])
def elastic_transform(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """CIFAR-10-C's elastic transform (a modification of erniejunior's gist): a random affine warp of three
    points jittered by U(-c2, c2), then a displacement field of Gaussian-smoothed (sigma c1, truncate 3)
    U(-1, 1) noise times c0, bilinear with reflection."""
    alpha, sigma, jitter = c
    n, h, w, _ = x.shape
    images = np.asarray(x, dtype=np.float32) / 255.0
    centre = np.float32((h, w)) // 2
    size = min(h, w) // 3
    source = np.float32([centre + size, [centre[0] + size, centre[1] - size], centre - size])
    moves = rng.uniform(-jitter, jitter, size=(n, 3, 2)).astype(np.float32)
    fields = [rng.uniform(-1, 1, size=(n, h, w)), rng.uniform(-1, 1, size=(n, h, w))]
    dx, dy = ((gaussian(f, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32) for f in fields)
    warped = np.empty_like(images)
    for i in range(n):
        matrix = cv2.getAffineTransform(source, source + moves[i])
        warped[i] = cv2.warpAffine(images[i], matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    grid_rows, grid_cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = bilinear_reflect(warped, grid_rows + dy, grid_cols + dx)
    return np.clip(out, 0, 1) * 255
