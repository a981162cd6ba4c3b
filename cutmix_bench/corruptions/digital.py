"""Digital corruptions (Hendrycks & Dietterich 2019): colour, contrast, geometry and codec artefacts.

Signature as in `noise.py`. JPEG and PIL resizing run per image (the codec and PIL's fixed-point resampler are
what the reference used); the rest is batched.
"""

from __future__ import annotations

from io import BytesIO

import cv2
import numpy as np
import scipy.ndimage as ndi
from PIL import Image

from .blur import gaussian
from .hsv import edit_hsv


def contrast(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    x = x / 255.0
    means = np.mean(x, axis=(1, 2), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def brightness(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    """HSV value + c (scikit-image's HSV conversion, as the reference)."""
    return np.clip(edit_hsv(x, 2, lambda v: np.clip(v + c, 0, 1)), 0, 1) * 255


def saturate(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """HSV saturation * c0 + c1; CIFAR-10-C severities 1-2 desaturate, 3-5 saturate."""
    return np.clip(edit_hsv(x, 1, lambda s: np.clip(s * c[0] + c[1], 0, 1)), 0, 1) * 255


def jpeg_compression(x: np.ndarray, c: int, rng, variant: str) -> np.ndarray:
    out = np.empty_like(x)
    for i, image in enumerate(x):
        buffer = BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=c)
        out[i] = np.asarray(Image.open(buffer))
    return out


def pixelate(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    """BOX downscale by c, then back up with BOX (CIFAR-10-C) or NEAREST (`imagecorruptions`)."""
    h, w = x.shape[1:3]
    up = Image.BOX if variant == "cifar" else Image.NEAREST
    out = np.empty_like(x)
    for i, image in enumerate(x):
        small = Image.fromarray(image).resize((int(w * c), int(h * c)), Image.BOX)
        out[i] = np.asarray(small.resize((w, h), up))
    return out


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
    cols, rows, chans = np.meshgrid(np.arange(w), np.arange(h), np.arange(3))
    out = np.empty(images.shape, dtype=np.float32)
    for i in range(n):
        matrix = cv2.getAffineTransform(source, source + moves[i])
        warped = cv2.warpAffine(images[i], matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        coords = (rows + dy[i][..., None]).reshape(1, -1), (cols + dx[i][..., None]).reshape(1, -1)
        out[i] = ndi.map_coordinates(warped, (*coords, chans.reshape(1, -1)), order=1,
                                     mode="reflect").reshape(h, w, 3)
    return np.clip(out, 0, 1) * 255
