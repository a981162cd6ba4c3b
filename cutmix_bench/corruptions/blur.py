"""Blur corruptions (Hendrycks & Dietterich 2019), batched over the first axis.

Signature as in `noise.py`. Linear filters that are the same for every image (zoom blur) are applied as one
precomputed sparse operator on all images at once; per-image random geometry (motion blur angles, glass-blur
pixel jitter) is vectorised over the batch.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

from .registry import register_corruption

_MAGICK_PI = 3.14159265358979323846264338327950288419716939937510  # magick/image-private.h
_MAGICK_SQ2PI = 2.50662827463100024161235523934010416269302368164062
_DROPPED = np.iinfo(np.int64).min  # marks a tap `imagecorruptions` leaves out (no real offset has this value)


def gaussian(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """scikit-image `filters.gaussian` of every image of a batch [N, H, W(, C)]: spatial axes only (the
    reference's `multichannel=True`, now `channel_axis=-1`), float64 kept, mode 'nearest', truncate 4."""
    sigmas = (0.0, sigma, sigma) + (0.0,) * (x.ndim - 3)
    return ndi.gaussian_filter(x, sigmas, mode=mode, truncate=truncate)


@register_corruption("gaussian_blur", category="blur", extra=True, short="G. blur",  # sigma in pixels
                     cifar=[0.4, 0.6, 0.7, 0.8, 1.0], imagenet=[1, 2, 3, 4, 6])
def gaussian_blur(x: np.ndarray, c: float, rng, variant: str) -> np.ndarray:
    return np.clip(gaussian(x / 255.0, c), 0, 1) * 255


def _glass_shuffle(x: np.ndarray, offsets: np.ndarray, delta: int) -> None:
    """The reference's pixel "swap" in place. Its `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on NumPy views copies
    the pixel at (h', w') to (h, w) and leaves (h', w') as it was, so that is what happens here, in the same
    order: positions from the bottom-right to the top-left. offsets: [N, rows, cols, 2] = (dx, dy) each."""
    n, h, w, _ = x.shape
    rows = np.arange(h - delta, delta, -1)
    cols = np.arange(w - delta, delta, -1)
    dx, dy = offsets[..., 0], offsets[..., 1]
    batch = np.arange(n)
    if delta == 1:
        # dx, dy in {-1, 0}: every source precedes its target in raster order, so it has not been written yet in
        # this pass and one gather from the unmodified image gives the sequential result.
        src_r = rows[None, :, None] + dy
        src_c = cols[None, None, :] + dx
        x[:, rows[:, None], cols[None, :]] = x[batch[:, None, None], src_r, src_c]
        return
    for i, r in enumerate(rows):
        for j, col in enumerate(cols):
            x[batch, r, col] = x[batch, r + dy[:, i, j], col + dx[:, i, j]]


@register_corruption("glass_blur", category="blur", short="Glass",  # sigma, max_delta, iterations
                     cifar=[(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
                     imagenet=[(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)])
def glass_blur(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    sigma, delta, iterations = c
    n, h, w, _ = x.shape
    x = (gaussian(x / 255.0, sigma) * 255).astype(np.uint8)
    # one (dx, dy) = randint(-delta, delta, size=2) per position and iteration, in the reference's loop order
    offsets = rng.integers(-delta, delta, size=(n, iterations, h - 2 * delta, w - 2 * delta, 2))
    for it in range(iterations):
        _glass_shuffle(x, offsets[:, it], delta)
    return np.clip(gaussian(x / 255.0, sigma), 0, 1) * 255


@lru_cache(maxsize=32)
def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's anti-aliased disk: a float32 disk on a 17x17 grid (wider for radius > 8), normalised,
    blurred by a 3x3 (5x5) OpenCV Gaussian."""
    half = 8 if radius <= 8 else int(radius)
    ksize = (3, 3) if radius <= 8 else (5, 5)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    aliased = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    aliased /= np.sum(aliased)
    return cv2.GaussianBlur(aliased, ksize=ksize, sigmaX=alias_blur)


@register_corruption("defocus_blur", category="blur", short="Defocus",  # disk radius, alias blur
                     cifar=[(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
                     imagenet=[(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)])
def defocus_blur(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """OpenCV `filter2D` with the disk kernel, float64, border reflect-101, as the reference; one call per image
    for its 3 channels gives the reference's per-channel results bit for bit (and is faster)."""
    kernel = disk_kernel(*c)
    images = x / 255.0
    out = np.empty_like(images)
    for i, image in enumerate(images):
        out[i] = cv2.filter2D(image, -1, kernel)
    return np.clip(out, 0, 1) * 255


def motion_offsets(width: int, angles: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[N, width, 2] (dy, dx) sample offsets of ImageMagick's MotionBlurImage taps for each angle (degrees),
    computed as `imagecorruptions` does: tap i reads the pixel at (y + dy_i, x + dx_i). Taps from the first
    offset that leaves the image on are dropped there; here they are marked with `_DROPPED`."""
    radians = np.deg2rad(np.asarray(angles, dtype=np.float64))[:, None]
    point_y, point_x = width * np.sin(radians), width * np.cos(radians)
    hypot = np.hypot(point_y, point_x)
    taps = np.arange(width)[None, :]
    dy = np.ceil(((taps * point_y) / hypot) - 0.5).astype(np.int64)
    dx = np.ceil(((taps * point_x) / hypot) - 0.5).astype(np.int64)
    inside = np.logical_and.accumulate((np.abs(dy) < shape[0]) & (np.abs(dx) < shape[1]), axis=1)
    offsets = np.stack([dy, dx], axis=-1)
    offsets[~inside] = _DROPPED
    return offsets


def motion_kernel(radius: int, sigma: float) -> np.ndarray:
    """One-sided Gaussian weights of the 2*radius+1 taps, normalised (ImageMagick's motion-blur kernel)."""
    t = np.arange(radius * 2 + 1)
    k = np.exp(-t**2 / (2 * (sigma**2))) / (np.sqrt(2 * np.pi) * sigma)
    return k / np.sum(k)


def motion_blur_layer(x: np.ndarray, radius: int, sigma: float, angles: np.ndarray) -> np.ndarray:
    """Blur image i of [N, H, W(, C)] along angles[i] degrees; out-of-image reads clamp to the edge (ImageMagick's
    default edge virtual pixels). float64 sums in tap order, as the reference. Either blur each tap pattern's
    images with edge-padded slices or gather tap by tap over the batch, whichever is cheaper (same floats)."""
    kernel = motion_kernel(radius, sigma)
    return _motion_apply(x, kernel, motion_offsets(len(kernel), angles, x.shape[1:3]))


def _motion_apply(x: np.ndarray, kernel: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """sum_i kernel[i] * x[y + dy_i, x + dx_i] per image, edge-clamped, accumulated from 0 in tap order."""
    patterns, group = np.unique(offsets, axis=0, return_inverse=True)
    # a group costs Python overhead worth ~4096 values per tap; gathers cost one extra pass over all values
    if len(patterns) * 4096 <= x.size:
        return _motion_grouped(x, kernel, patterns, group.reshape(-1))
    return _motion_gathered(x, kernel, offsets)


def _motion_grouped(x: np.ndarray, kernel: np.ndarray, patterns: np.ndarray, group: np.ndarray) -> np.ndarray:
    h, w = x.shape[1:3]
    out = np.empty(x.shape, dtype=np.float64)
    for pattern, taps in enumerate(patterns):
        members = np.nonzero(group == pattern)[0]
        taps = [(int(dy), int(dx)) for dy, dx in taps if dy != _DROPPED]
        pad = max(max(abs(dy), abs(dx)) for dy, dx in taps)
        widths = ((0, 0), (pad, pad), (pad, pad)) + ((0, 0),) * (x.ndim - 3)
        part = np.pad(x[members], widths, mode="edge")
        acc = np.zeros((len(members),) + x.shape[1:], dtype=np.float64)
        for k, (dy, dx) in zip(kernel, taps):
            acc += k * part[:, pad + dy:pad + dy + h, pad + dx:pad + dx + w]
        out[members] = acc
    return out


def _motion_gathered(x: np.ndarray, kernel: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Tap i of every image at once; a tap an image does not have (past its break) adds an exact 0."""
    n, h, w = x.shape[:3]
    valid = offsets[..., 0] != _DROPPED
    offsets = np.where(valid[..., None], offsets, 0)
    pad = int(np.abs(offsets).max())
    planes = np.moveaxis(x, 3, 0) if x.ndim == 4 else x[None]  # channel-first: long inner loops
    padded = np.pad(planes, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")
    hp, wp = h + 2 * pad, w + 2 * pad
    flat = padded.reshape(len(planes), n * hp * wp)
    grid = (np.arange(h)[:, None] * wp + np.arange(w)[None, :])[None]  # [1, H, W]
    base = (np.arange(n) * hp * wp + pad * wp + pad)[:, None, None]
    weights = np.where(valid, kernel[None, :], 0.0)[:, :, None, None]
    acc = np.zeros(planes.shape, dtype=np.float64)
    for i in range(len(kernel)):
        shift = (offsets[:, i, 0] * wp + offsets[:, i, 1])[:, None, None]
        acc += weights[:, i] * flat.take(base + shift + grid, axis=1)
    return np.moveaxis(acc, 0, 3) if x.ndim == 4 else acc[0]


def imagemagick_kernel(radius: float, sigma: float) -> np.ndarray:
    """GetMotionBlurKernel (magick/effect.c, ImageMagick6 tag 6.9.11-60): width GetOptimalKernelWidth1D = 2*ceil(r)+1
    (r = radius > 0), weights exp(-i*i / (2 sigma sigma)) / (MagickSQ2PI sigma) with C's exp, divided by their sum
    taken left to right (NumPy's pairwise sum and SIMD exp can differ from libm in the last bit)."""
    width = int(2.0 * math.ceil(radius) + 1.0)
    weights = [math.exp(-float(i * i) / (2.0 * sigma * sigma)) / (_MAGICK_SQ2PI * sigma) for i in range(width)]
    total = 0.0
    for w in weights:
        total += w
    return np.array([w / total for w in weights])


def imagemagick_offsets(width: int, angles: np.ndarray) -> np.ndarray:
    """[N, width, 2] (dy, dx) taps of MotionBlurImageChannel: point = width * (sin, cos)(MagickPI * angle / 180),
    offset_i = ceil(i * point / hypot(point) - 0.5), per angle with C's sin / cos / hypot."""
    radians = [_MAGICK_PI * float(angle) / 180.0 for angle in np.asarray(angles, dtype=np.float64)]
    point_x = width * np.array([math.sin(r) for r in radians])[:, None]
    point_y = width * np.array([math.cos(r) for r in radians])[:, None]
    hypot = np.hypot(point_x, point_y)
    taps = np.arange(width, dtype=np.float64)[None, :]
    dy = np.ceil(taps * point_x / hypot - 0.5)  # ImageMagick's offset.y
    dx = np.ceil(taps * point_y / hypot - 0.5)  # offset.x
    return np.stack([dy, dx], axis=-1).astype(np.int64)


def imagemagick_motion_blur(x: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """What make_cifar_c.py got back from Wand for image i of a uint8 batch [N, H, W(, C)] blurred along angles[i]:
    ImageMagick 6.9 Q16 (non-HDRI) reads the 8-bit PNG as quanta v * 257, sums kernel * quantum in double in tap
    order with edge virtual pixels, ClampToQuantum rounds (q = floor(sum + 0.5) in 0..65535), and the PNG writer's
    SetImageDepth(8) maps q through ScaleQuantumToAny, which truncates: floor(255 q / 65535) = q // 257.
    Returns those 8-bit values (as float64)."""
    kernel = imagemagick_kernel(radius, sigma)
    offsets = imagemagick_offsets(len(kernel), angles)
    quanta = x.astype(np.uint16)
    quanta *= 257  # ScaleCharToQuantum, exact in uint16
    out = _motion_apply(quanta, kernel, offsets)
    np.clip(out, 0.0, 65535.0, out=out)  # ClampToQuantum: <= 0 -> 0, >= QuantumRange -> 65535, else floor(v + 0.5)
    out += 0.5
    np.floor(out, out=out)
    out /= 257.0  # exact where the quantum is a multiple of 257, else at least 1/257 from an integer
    return np.floor(out, out=out)


@register_corruption("motion_blur", category="blur", short="Motion",  # radius, sigma (ImageMagick convention)
                     cifar=[(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
                     imagenet=[(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)])
def motion_blur(x: np.ndarray, c: tuple, rng, variant: str) -> np.ndarray:
    """CIFAR-10-C called ImageMagick's MotionBlurImage through Wand; the CIFAR variant evaluates ImageMagick's own
    arithmetic (`imagemagick_motion_blur`, byte-identical to Wand, tests/test_imagemagick.py). `imagecorruptions`
    re-implemented the filter as shifted copies in float; the ImageNet variant runs that port (float result,
    truncated by the final uint8 cast)."""
    angles = rng.uniform(-45, 45, size=len(x))
    if variant == "cifar":
        return imagemagick_motion_blur(x, c[0], c[1], angles)
    return np.clip(motion_blur_layer(x, c[0], c[1], angles), 0, 255)


@lru_cache(maxsize=64)
def zoom_matrix(size: int, zoom: float, trim: str) -> np.ndarray:
    """Matrix of the reference's `clipped_zoom` along one axis: crop ceil(size / zoom) central pixels and
    `scipy.ndimage.zoom(order=1)` them (its exact operator: the zoom of an identity matrix). trim: keep `size`
    outputs centred (CIFAR-10-C script), from the start (`imagecorruptions`' later [:size]) or all ("none")."""
    crop = int(np.ceil(size / float(zoom)))
    top = (size - crop) // 2
    operator = ndi.zoom(np.eye(crop), (zoom, 1), order=1)
    if trim != "none":
        start = (operator.shape[0] - size) // 2 if trim == "centre" else 0
        operator = operator[start:start + size]
    full = np.zeros((operator.shape[0], size))
    full[:, top:top + crop] = operator
    return full


def clipped_zoom(layer: np.ndarray, zoom: float, trim: str) -> np.ndarray:
    """`clipped_zoom` of a batch of single-channel layers [N, H, W]."""
    rows = zoom_matrix(layer.shape[1], zoom, trim)
    cols = zoom_matrix(layer.shape[2], zoom, trim)
    return rows @ layer @ cols.T


@lru_cache(maxsize=16)
def zoom_blur_operator(h: int, w: int, zooms: tuple[float, ...], trim: str) -> sp.csr_matrix:
    """Sparse [H*W, H*W] operator of zoom blur: (x + sum_z zoom_z(x)) / (len(zooms) + 1)."""
    total = sp.identity(h * w, format="csr")
    for z in zooms:
        total = total + sp.kron(sp.csr_matrix(zoom_matrix(h, z, trim)),
                                sp.csr_matrix(zoom_matrix(w, z, trim)), format="csr")
    total.eliminate_zeros()
    return (total / (len(zooms) + 1)).tocsr()


@register_corruption("zoom_blur", category="blur", short="Zoom",  # zoom factors averaged
                     cifar=[np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
                            np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)],
                     imagenet=[np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
                               np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03)])
def zoom_blur(x: np.ndarray, c: np.ndarray, rng, variant: str) -> np.ndarray:
    """Mean of the image and its centre zooms; the reference sums float32 layers, this applies the summed
    operator in float64 and rounds to float32 before the final *255."""
    n, h, w, ch = x.shape
    op = zoom_blur_operator(h, w, tuple(float(z) for z in c), "centre" if variant == "cifar" else "start")
    flat = np.ascontiguousarray((x / 255.0).transpose(1, 2, 0, 3).reshape(h * w, n * ch))
    out = (op @ flat).reshape(h, w, n, ch).transpose(2, 0, 1, 3).astype(np.float32)
    return np.clip(out, 0, 1) * 255
