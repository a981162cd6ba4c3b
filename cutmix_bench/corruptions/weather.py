"""Weather corruptions (Hendrycks & Dietterich 2019) and spatter, batched over the first axis.

Signature as in `noise.py`. The frost textures are the ones `imagecorruptions` ships (the reference's files),
read once per process.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import BenchError
from .blur import clipped_zoom, gaussian, imagemagick_motion_blur, motion_blur_layer
from .registry import register_corruption

FROST_FILES = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"]  # randint(5): frost6 unused


# loc, scale, zoom, threshold, motion radius, motion sigma, blend
@register_corruption("snow", category="weather", short="Snow",
                     cifar=[(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
                     imagenet=[(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                               (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                               (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)])
def snow(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """Zoomed, thresholded Gaussian flakes, motion-blurred at an angle in [-135, -45] degrees and added twice
    (the layer and its 180-degree rotation) to the image brightened towards 1.5 * grey + 0.5."""
    loc, scale, zoom, threshold, radius, sigma, blend = c
    n, h, w, _ = x.shape
    x = np.asarray(x, dtype=np.float32) / 255.0
    layer = rng.normal(loc, scale, size=(n, h, w))
    # CIFAR-10-C trims the zoomed layer to the image before the blur, `imagecorruptions` only after it
    layer = clipped_zoom(layer, zoom, "centre" if variant == "cifar" else "none")
    layer[layer < threshold] = 0
    layer = np.clip(layer, 0, 1)
    angles = rng.uniform(-135, -45, size=n)
    if variant == "cifar":
        # the reference passed the layer to ImageMagick as an 8-bit greyscale PNG and read back 8 bits
        layer = imagemagick_motion_blur((layer * 255).astype(np.uint8), radius, sigma, angles) / 255.0
    else:
        layer = np.round(motion_blur_layer(layer, radius, sigma, angles) * 255).astype(np.uint8) / 255.0
    layer = layer[:, :h, :w, None]
    grey = cv2.cvtColor(x.reshape(n * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(n, h, w, 1)
    x = blend * x + (1 - blend) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2, axes=(1, 2)), 0, 1) * 255


def frost_directory() -> Path:
    """Folder of the frost textures inside the installed `imagecorruptions` (found without importing it)."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise BenchError("corruption frost: the imagecorruptions package (which ships the frost textures) is not "
                         "installed; expected `pip install imagecorruptions`")
    return Path(next(iter(spec.submodule_search_locations))) / "frost"


@lru_cache(maxsize=8)
def frost_textures(variant: str, h: int, w: int) -> tuple[np.ndarray, ...]:
    """The 5 textures, BGR as cv2 reads them, resized as the variant's reference does: CIFAR-10-C shrinks them by
    0.2 (bilinear); `imagecorruptions` scales them up 1.1x (bicubic), more if one side is below the image's."""
    textures = []
    for name in FROST_FILES:
        path = frost_directory() / name
        image = cv2.imread(str(path))
        if image is None:
            raise BenchError(f"corruption frost: cannot read texture {path}; expected an image file")
        if variant == "cifar":
            image = cv2.resize(image, (0, 0), fx=0.2, fy=0.2)
        else:
            factor = max(1.0, h / image.shape[0], w / image.shape[1]) * 1.1
            size = (int(np.ceil(image.shape[1] * factor)), int(np.ceil(image.shape[0] * factor)))
            image = cv2.resize(image, dsize=size, interpolation=cv2.INTER_CUBIC)
        if image.shape[0] <= h or image.shape[1] <= w:
            raise BenchError(f"corruption frost: images of {h}x{w} pixels are larger than the frost texture "
                             f"{path} ({image.shape[0]}x{image.shape[1]} after resizing)")
        textures.append(image)
    return tuple(textures)


@register_corruption("frost", category="weather", short="Frost",  # image weight, frost weight
                     cifar=[(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
                     imagenet=[(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)])
def frost(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """A random crop of one of 5 frost photographs blended in: c0 * image + c1 * frost."""
    n, h, w, _ = x.shape
    textures = frost_textures(variant, h, w)
    index = rng.integers(0, len(textures), size=n)
    heights = np.array([t.shape[0] for t in textures])[index]
    widths = np.array([t.shape[1] for t in textures])[index]
    top = rng.integers(0, heights - h)
    left = rng.integers(0, widths - w)
    crops = np.empty_like(x)
    for t, texture in enumerate(textures):
        members = np.nonzero(index == t)[0]
        rows = top[members, None, None] + np.arange(h)[None, :, None]
        cols = left[members, None, None] + np.arange(w)[None, None, :]
        crops[members] = texture[rows, cols][..., ::-1]  # BGR -> RGB
    return np.clip(c[0] * x + c[1] * crops.astype(np.float64), 0, 255)


def plasma_fractal(n: int, mapsize: int, decay: float, rng) -> np.ndarray:
    """n diamond-square height maps in [0, 1] (the reference's modification of FLHerne/mapgen), with its
    noise amplitude wibble * U(-wibble, wibble) and wibble divided by `decay` per level."""
    maps = np.empty((n, mapsize, mapsize), dtype=np.float64)
    maps[:, 0, 0] = 0
    step = mapsize
    wibble = 100.0

    def wibbled_mean(a: np.ndarray) -> np.ndarray:
        return a / 4 + wibble * rng.uniform(-wibble, wibble, a.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:mapsize:step, 0:mapsize:step]
        square = corners + np.roll(corners, -1, axis=1)
        square += np.roll(square, -1, axis=2)
        maps[:, half:mapsize:step, half:mapsize:step] = wibbled_mean(square)
        down_right = maps[:, half:mapsize:step, half:mapsize:step]
        up_left = maps[:, 0:mapsize:step, 0:mapsize:step]
        left_sum = (down_right + np.roll(down_right, 1, axis=1)) + (up_left + np.roll(up_left, -1, axis=2))
        maps[:, 0:mapsize:step, half:mapsize:step] = wibbled_mean(left_sum)
        top_sum = (down_right + np.roll(down_right, 1, axis=2)) + (up_left + np.roll(up_left, -1, axis=1))
        maps[:, half:mapsize:step, 0:mapsize:step] = wibbled_mean(top_sum)
        step //= 2
        wibble /= decay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


@register_corruption("fog", category="weather", short="Fog",  # amount, plasma wibble decay
                     cifar=[(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
                     imagenet=[(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)])
def fog(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """Plasma-fractal haze of side next_pow2(max(H, W)) (32 for CIFAR) added, then rescaled by max/(max + c0)."""
    n, h, w, _ = x.shape
    mapsize = 1 << (max(h, w) - 1).bit_length()
    x = x / 255.0
    max_val = x.max(axis=(1, 2, 3), keepdims=True)
    x += c[0] * plasma_fractal(n, mapsize, c[1], rng)[:, :h, :w, None]
    return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


_EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])


def _water_shading(liquid: np.ndarray) -> np.ndarray:
    """The reference's per-image OpenCV pipeline (Canny edges -> distance -> equalise -> emboss), float32."""
    dist = 255 - cv2.Canny(liquid, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    dist = cv2.filter2D(dist, cv2.CV_8U, _EMBOSS)
    return cv2.blur(dist, (3, 3)).astype(np.float32)


# loc, scale, sigma, threshold, intensity, mode (0 = water, 1 = mud)
@register_corruption("spatter", category="weather", extra=True, short="Spatter",
                     cifar=[(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                            (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)],
                     imagenet=[(0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
                               (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)])
def spatter(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """Blurred, thresholded Gaussian blobs: pale-turquoise water with embossed edges (mode 0) or mud-brown
    drops (mode 1). Where the reference divides 0 by 0 (no blob survives the threshold; it then returned a black
    image), this adds no water."""
    loc, scale, sigma, threshold, intensity, mode = c
    n, h, w, _ = x.shape
    x = np.asarray(x, dtype=np.float32) / 255.0
    liquid = gaussian(rng.normal(loc, scale, size=(n, h, w)), sigma)
    liquid[liquid < threshold] = 0
    if mode == 0:
        liquid8 = (liquid * 255).astype(np.uint8)
        m = liquid8 * np.stack([_water_shading(image) for image in liquid8])
        peak = m.max(axis=(1, 2), keepdims=True)
        m = np.divide(m, peak, out=np.zeros_like(m), where=peak > 0)
        m *= intensity
        color = np.array([175 / 255.0, 238 / 255.0, 238 / 255.0], dtype=np.float32)
        return np.clip(x + m[..., None] * color, 0, 1) * 255
    m = gaussian(np.where(liquid > threshold, 1, 0).astype(np.float32), intensity)
    m[m < 0.8] = 0
    # mud brown; `imagecorruptions` builds the colour from a uint8 array, hence float64 there
    color = np.array([63 / 255.0, 42 / 255.0, 20 / 255.0], dtype=np.float32 if variant == "cifar" else np.float64)
    color = color * m[..., None]
    x *= 1 - m[..., None]
    return np.clip(x + color, 0, 1) * 255
