"""Motion blur and snow (CIFAR parameters) against the reference itself: hendrycks/robustness
ImageNet-C/create_c/make_cifar_c.py @ ca36008, which blurs through Wand / ImageMagick (`MagickMotionBlurImage`)
and decodes the returned 8-bit PNG with OpenCV; compared byte for byte after the reference's final `np.uint8`.
Measured with ImageMagick 6.9.11-60 Q16 (Debian 12's libmagickwand-6.q16-6, non-HDRI).

Needs Wand and the ImageMagick library (`apt-get install -y libmagickwand-dev`, `pip install Wand`); skipped
with the reason otherwise."""

from __future__ import annotations

import ctypes
import os
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.ndimage import zoom as scizoom

from cutmix_bench import corruptions as C
from cutmix_bench.corruptions import blur

try:
    from PIL import Image as PILImage
    from wand.api import library as wandlibrary
    from wand.image import Image as WandImage
except ImportError as exc:  # wand missing, or its ImportError for a missing libMagickWand
    pytest.skip(f"Wand / ImageMagick not importable ({exc}); apt-get install -y libmagickwand-dev && "
                "pip install Wand", allow_module_level=True)

wandlibrary.MagickMotionBlurImage.argtypes = (ctypes.c_void_p, ctypes.c_double, ctypes.c_double, ctypes.c_double)
# the script's values (radius, sigma) and (loc, scale, zoom, threshold, radius, sigma, blend), not params.py's
SCRIPT = {"motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
          "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                   (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)]}


def reference_blur(png: bytes, radius: float, sigma: float, angle: float) -> np.ndarray:
    """make_cifar_c.py's MotionImage.motion_blur, then `cv2.imdecode(..., IMREAD_UNCHANGED)`."""
    with WandImage(blob=png) as image:
        wandlibrary.MagickMotionBlurImage(image.wand, radius, sigma, angle)
        blob = image.make_blob()
    return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)


def png(array: np.ndarray, mode: str) -> bytes:
    output = BytesIO()
    PILImage.fromarray(array, mode=mode).save(output, format="PNG")
    return output.getvalue()


def reference_motion_blur(image: np.ndarray, c: tuple, angle: float) -> np.ndarray:
    """`motion_blur(x, severity)`: PNG of the RGB image, the blur, BGR -> RGB (ImageMagick writes an all-grey
    image as a greyscale PNG: then grey -> RGB)."""
    out = reference_blur(png(image, "RGB"), c[0], c[1], angle)
    if out.ndim == 2:
        return np.clip(np.stack([out, out, out], axis=-1), 0, 255)
    return np.clip(out[..., [2, 1, 0]], 0, 255)


def reference_snow(image: np.ndarray, c: tuple, layer: np.ndarray, angle: float) -> np.ndarray:
    """`snow(x, severity)` with its normal draw `layer` and angle given."""
    x = np.array(image, dtype=np.float32) / 255.0
    h = layer.shape[0]
    ch = int(np.ceil(h / c[2]))
    top = (h - ch) // 2
    zoomed = scizoom(layer[..., None][top:top + ch, top:top + ch], (c[2], c[2], 1), order=1)
    trim = (zoomed.shape[0] - h) // 2
    zoomed = zoomed[trim:trim + h, trim:trim + h]
    zoomed[zoomed < c[3]] = 0
    grey = (np.clip(zoomed.squeeze(), 0, 1) * 255).astype(np.uint8)
    blurred = reference_blur(png(grey, "L"), c[4], c[5], angle) / 255.0
    blurred = blurred[..., None]
    x = c[6] * x + (1 - c[6]) * np.maximum(x, cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(h, h, 1) * 1.5 + 0.5)
    return np.clip(x + blurred + np.rot90(blurred, k=2), 0, 1) * 255


def check_identical(ours: np.ndarray, reference: np.ndarray) -> None:
    difference = np.abs(ours.astype(int) - reference)
    assert difference.max() == 0, (difference.max(), (difference > 0).mean())


def synthetic(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    smooth = gaussian_filter(rng.integers(0, 256, (n, 32, 32, 3)).astype(np.float64), (0, 2, 2, 0))
    return np.clip(smooth * 3 - 250, 0, 255).astype(np.uint8)  # contrasty, with saturated patches


@pytest.fixture(scope="module", params=["synthetic", "cifar100"])
def images(request: pytest.FixtureRequest, data_dir_or_none: Path | None) -> np.ndarray:
    """16 contrasty synthetic images, and 16 real CIFAR-100 test images (every 625th) when the data is present."""
    if request.param == "synthetic":
        return synthetic(16)
    path = None if data_dir_or_none is None else data_dir_or_none / "cifar100" / "test.npz"
    if path is None or not path.is_file():
        pytest.skip(f"real data not found ({path})")
    with np.load(path) as data:
        return np.ascontiguousarray(data["x"][::625])


@pytest.fixture(scope="module")
def data_dir_or_none() -> Path | None:
    root = Path(os.environ.get("CUTMIX_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return root if root.is_dir() else None


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_motion_blur_equals_imagemagick(severity: int, images: np.ndarray) -> None:
    c, x = SCRIPT["motion_blur"][severity - 1], images
    ours = C.corrupt("motion_blur", x, severity, np.random.default_rng(severity))
    angles = np.random.default_rng(severity).uniform(-45, 45, size=len(x))
    reference = np.stack([np.uint8(reference_motion_blur(image, c, a)) for image, a in zip(x, angles)])
    check_identical(ours, reference)


@pytest.mark.parametrize("severity", [1, 2, 3, 4, 5])
def test_snow_equals_imagemagick(severity: int, images: np.ndarray) -> None:
    c, x = SCRIPT["snow"][severity - 1], images
    ours = C.corrupt("snow", x, severity, np.random.default_rng(severity))
    rng = np.random.default_rng(severity)  # the draws of `snow`, in its order: all layers, then all angles
    layers = rng.normal(c[0], c[1], size=(len(x), 32, 32))
    angles = rng.uniform(-135, -45, size=len(x))
    reference = np.stack([np.uint8(reference_snow(image, c, layer, a)) for image, layer, a in zip(x, layers, angles)])
    check_identical(ours, reference)


def test_motion_blur_equals_imagemagick_at_many_angles() -> None:
    """Every 1.75 degrees over the whole circle, on a ramp of all 256 levels in each channel, a grey one (which
    ImageMagick writes as a greyscale PNG) and a 9 x 20 crop: every tap pattern, reads beyond the image and
    quanta near a multiple of 257 (where truncation and rounding differ) meet the reference."""
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    colour = np.tile(np.stack([ramp, 255 - ramp, ramp.T], axis=-1), (2, 2, 1))
    grey = np.repeat(colour[..., :1], 3, axis=-1)
    angles = np.arange(-180, 180, 1.75)
    c = (9, 2.5)
    small = np.ascontiguousarray(colour[3:12, 5:25])  # 9 x 20: taps reach past the whole image (edge pixels)
    for x in (colour, grey, small):
        ours = blur.imagemagick_motion_blur(np.repeat(x[None], len(angles), axis=0), c[0], c[1], angles)
        check_identical(ours, np.stack([reference_motion_blur(x, c, a) for a in angles]))
