"""Common corruptions of CIFAR-10-C / CIFAR-100-C (Hendrycks & Dietterich, ICLR 2019) as batched functions.

`corrupt(name, images, severity, rng, params)` maps uint8 [N, H, W, 3] to uint8 [N, H, W, 3].
`params="cifar"`: this project's batched NumPy implementation with the CIFAR-10-C parameters (`params.py`);
`params="imagenet"`: the ImageNet-C parameters through the `imagecorruptions` package, made to run on current
NumPy / setuptools / scikit-image by `imagecorruptions_compat.py`, one image at a time.
`corrupt_seeded` splits the images into fixed chunks, each with its own generator derived from
(seed, corruption, severity, chunk index), so results do not depend on how chunks are spread over workers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from ..errors import BenchError
from . import blur, digital, noise, weather
from .params import TABLES

BENCHMARK = [
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
]
EXTRA = ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
ALL = BENCHMARK + EXTRA
# Categories of the ImageNet-C paper; brightness counts as weather there, the 4 held-out ones as "extra".
CATEGORY = {
    **dict.fromkeys(BENCHMARK[0:3], "noise"),
    **dict.fromkeys(BENCHMARK[3:7], "blur"),
    **dict.fromkeys(BENCHMARK[7:11], "weather"),
    **dict.fromkeys(BENCHMARK[11:15], "digital"),
    **dict.fromkeys(EXTRA, "extra"),
}
PARAMS = ("cifar", "imagenet")
SEVERITIES = (1, 2, 3, 4, 5)
CHUNK_SIZE = 250  # images per derived generator (part of the definition of a seeded set); small enough for cache

# name -> fn(x uint8 [N,H,W,3], severity parameters, rng, variant) -> values in [0, 255]
OPS: dict[str, Callable] = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "speckle_noise": noise.speckle_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "gaussian_blur": blur.gaussian_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "spatter": weather.spatter,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "saturate": digital.saturate,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
}


def _check(name: str, images: np.ndarray, severity: int, params: str) -> None:
    if name not in OPS:
        raise BenchError(f"corruption {name!r}: unknown; expected one of {', '.join(ALL)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise BenchError(f"corruption {name}: severity {severity!r}; expected an integer in 1..5")
    if params not in PARAMS:
        raise BenchError(f"corruption params {params!r}: expected one of {', '.join(PARAMS)}")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        kind = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise BenchError(f"corruption {name}: images of type {kind}; expected a uint8 numpy array [N, H, W, 3]")
    if images.ndim != 4 or images.shape[3] != 3:
        raise BenchError(f"corruption {name}: images of shape {images.shape}; expected [N, H, W, 3]")
    low = 32 if params == "imagenet" else 8  # imagecorruptions refuses images under 32 pixels
    if min(images.shape[1:3]) < low:
        raise BenchError(f"corruption {name}: images of {images.shape[1]}x{images.shape[2]} pixels; "
                         f"expected at least {low}x{low} with params={params}")


def corrupt(name: str, images: np.ndarray, severity: int, rng: np.random.Generator,
            params: str = "cifar") -> np.ndarray:
    """Corrupt a uint8 batch [N, H, W, 3] at `severity` (1..5); all randomness comes from `rng`."""
    _check(name, images, severity, params)
    if len(images) == 0:
        return images.copy()
    if params == "imagenet":
        from .imagecorruptions_compat import corrupt_images

        return corrupt_images(name, images, severity, rng)
    out = OPS[name](images, TABLES["cifar"][name][severity - 1], rng, "cifar")
    # The reference converts with np.uint8(), which truncates; inputs are already clipped to [0, 255].
    return out if out.dtype == np.uint8 else out.astype(np.uint8)


def chunk_rng(seed: int, name: str, severity: int, chunk: int) -> np.random.Generator:
    """Independent generator for one (corruption, severity, chunk) cell of a seeded set: `SeedSequence` with a
    spawn key, so any worker can rebuild it and the worker count cannot change the output."""
    if name not in OPS:
        raise BenchError(f"corruption {name!r}: unknown; expected one of {', '.join(ALL)}")
    key = (zlib.crc32(name.encode()), int(severity), int(chunk))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))


def corrupt_seeded(name: str, images: np.ndarray, severity: int, seed: int, params: str = "cifar",
                   chunk_size: int = CHUNK_SIZE) -> np.ndarray:
    """Deterministic corruption of a whole set: chunk k of `chunk_size` images uses `chunk_rng(seed, name,
    severity, k)`. A pool may hand out chunks (`corrupt(..., chunk_rng(...))` on images[k*chunk_size:...])
    in any order and get byte-identical results."""
    _check(name, images, severity, params)
    out = np.empty_like(images)
    for k, start in enumerate(range(0, len(images), chunk_size)):
        part = images[start:start + chunk_size]
        out[start:start + len(part)] = corrupt(name, part, severity, chunk_rng(seed, name, severity, k), params)
    return out


from .parallel import corrupt_all  # noqa: E402  (uses the definitions above)

__all__ = ["ALL", "BENCHMARK", "CATEGORY", "CHUNK_SIZE", "EXTRA", "PARAMS", "SEVERITIES", "chunk_rng", "corrupt",
           "corrupt_all", "corrupt_seeded"]
