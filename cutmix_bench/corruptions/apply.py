"""Applying a registered corruption to a uint8 batch, checked and seeded.

`corrupt(name, images, severity, rng, params)` maps uint8 [N, H, W, 3] to uint8 [N, H, W, 3]:
- `params="cifar"`: this project's batched NumPy implementation with the CIFAR-10-C parameters (CIFAR-10-C-bar's
  for a "c-bar" corruption, which has no other);
- `params="imagenet"`: the ImageNet-C parameters through the `imagecorruptions` package (the reference), made
  to run on current NumPy / setuptools / scikit-image by `imagecorruptions_compat.py`, one image at a time;
- `params="imagenet-fast"`: the ImageNet-C parameters through this project's batched implementation (tested
  against `imagecorruptions`, docs/corruptions.md); a corruption without its own ImageNet-C table
  (elastic_transform, whose ImageNet-C algorithm differs) runs `imagecorruptions`.
`corrupt_seeded` splits the images into fixed chunks, each with its own generator derived from
(seed, corruption, severity, chunk index), so results do not depend on how chunks are spread over workers.
"""

from __future__ import annotations

import zlib

import numpy as np

from ..errors import BenchError
from .registry import CORRUPTIONS, RELEASE

PARAMS = ("cifar", "imagenet", "imagenet-fast")
CHUNK_SIZE = 250  # images per derived generator (part of the definition of a seeded set); small enough for cache


def _known(name: str) -> None:
    if name not in CORRUPTIONS:
        raise BenchError(f"corruption {name!r}: unknown; expected one of {', '.join(CORRUPTIONS.names())}")


def _reference(name: str, params: str) -> bool:
    """Whether `imagecorruptions` computes `name` under `params`."""
    return params == "imagenet" or (params == "imagenet-fast" and "imagenet" not in CORRUPTIONS[name].tables)


def _check(name: str, images: np.ndarray, severity: int, params: str) -> None:
    _known(name)
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise BenchError(f"corruption {name}: severity {severity!r}; expected an integer in 1..5")
    if params not in PARAMS:
        raise BenchError(f"corruption params {params!r}: expected one of {', '.join(PARAMS)}")
    if CORRUPTIONS[name].family == "c-bar" and params != "cifar":
        raise BenchError(f"corruption {name} (C-bar): params={params}; CIFAR-10-C-bar has only its CIFAR parameters, "
                         "expected params=cifar")
    if _reference(name, params) and name not in RELEASE:
        raise BenchError(f"corruption {name}: params={params} needs the imagecorruptions package, which does not have "
                         f"it; expected params=cifar{'' if params == 'imagenet-fast' else ' or imagenet-fast'}")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        kind = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise BenchError(f"corruption {name}: images of type {kind}; expected a uint8 numpy array [N, H, W, 3]")
    if images.ndim != 4 or images.shape[3] != 3:
        raise BenchError(f"corruption {name}: images of shape {images.shape}; expected [N, H, W, 3]")
    if CORRUPTIONS[name].family == "c-bar" and (images.shape[1] != images.shape[2] or images.shape[1] % 2):
        raise BenchError(f"corruption {name} (C-bar): images of {images.shape[1]}x{images.shape[2]} pixels; expected "
                         "square images of an even side (the reference's im_size)")
    low = 8 if params == "cifar" else 32  # imagecorruptions refuses images under 32 pixels
    if min(images.shape[1:3]) < low:
        raise BenchError(f"corruption {name}: images of {images.shape[1]}x{images.shape[2]} pixels; "
                         f"expected at least {low}x{low} with params={params}")


def corrupt(name: str, images: np.ndarray, severity: int, rng: np.random.Generator,
            params: str = "cifar") -> np.ndarray:
    """Corrupt a uint8 batch [N, H, W, 3] at `severity` (1..5); all randomness comes from `rng`."""
    _check(name, images, severity, params)
    if len(images) == 0:
        return images.copy()
    if _reference(name, params):
        from .imagecorruptions_compat import corrupt_images

        return corrupt_images(name, images, severity, rng)
    entry, variant = CORRUPTIONS[name], "cifar" if params == "cifar" else "imagenet"
    out = entry.fn(images, entry.tables[variant][severity - 1], rng, variant)
    # The reference converts with np.uint8(), which truncates; inputs are already clipped to [0, 255].
    return out if out.dtype == np.uint8 else out.astype(np.uint8)


def chunk_rng(seed: int, name: str, severity: int, chunk: int) -> np.random.Generator:
    """Independent generator for one (corruption, severity, chunk) cell of a seeded set: `SeedSequence` with a
    spawn key, so any worker can rebuild it and the worker count cannot change the output."""
    _known(name)
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
