"""`imagecorruptions` 1.1.2 (Michaelis et al. 2019, ImageNet-C parameters) made to import and run correctly on
current setuptools / NumPy 2 / scikit-image, without pinning old versions, and made reproducible.

What 1.1.2 needs, and what `load()` does about it (only inside that package; nothing global stays changed):
- `from pkg_resources import resource_filename` (setuptools >= 82 has no pkg_resources): a stand-in module that
  resolves `resource_filename(module_name, relative_path)` next to the module's file is placed in `sys.modules`
  for the duration of the import only;
- `np.float_` (removed in NumPy 2; breaks fog): the package's `np` name is pointed at a view of NumPy that adds
  `float_ = float64`;
- scikit-image `gaussian(..., multichannel=True)` (removed; breaks gaussian_blur and glass_blur): the package's
  `gaussian` is wrapped to pass `channel_axis=-1`, the correct replacement (dropping the argument would silently
  blur across the colour channels);
- `impulse_noise` calls `skimage.util.random_noise` without a generator, so `np.random.seed` does not control
  it: it now passes `np.random.default_rng(np.random.randint(2**32))`, drawn from the seeded global state.
- `spatter` divides 0 by 0 when no water blob passes the threshold (about 2% of images at severity 1) and
  returns a black image: such an image now gets no water, as in this project's own implementation.
`corrupt_images` seeds the global NumPy state per image from the caller's generator and restores it afterwards.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
import warnings

import numpy as np
import skimage.filters
import skimage.util

from ..errors import BenchError
from .registry import CORRUPTIONS

_PACKAGE: types.ModuleType | None = None


def _resource_filename(module_name: str, relative_path: str) -> str:
    """`pkg_resources.resource_filename` for a module inside a regular package directory."""
    module = importlib.import_module(module_name)
    return os.path.join(os.path.dirname(module.__file__), relative_path)


class _NumpyWithFloat(types.ModuleType):
    """NumPy as the 1.1.2 code expects it: `np.float_` is float64 again."""

    float_ = np.float64

    def __getattr__(self, name: str):
        return getattr(np, name)


def _gaussian(image, sigma=1, *args, multichannel=None, **kwargs):
    """scikit-image `gaussian` accepting the removed `multichannel` flag (True means channels last)."""
    if multichannel:
        kwargs.setdefault("channel_axis", -1)
    return skimage.filters.gaussian(image, sigma, *args, **kwargs)


def legacy_child_rng() -> np.random.Generator:
    """A generator drawn from the global legacy state (which `np.random.seed` controls)."""
    return np.random.default_rng(np.random.randint(2**32, dtype=np.int64))


def _impulse_noise(x, severity=1):
    """1.1.2's impulse_noise with a generator derived from the seeded global state."""
    amount = CORRUPTIONS["impulse_noise"].tables["imagenet"][severity - 1]
    noisy = skimage.util.random_noise(np.array(x) / 255.0, mode="s&p", amount=amount, rng=legacy_child_rng())
    return np.clip(noisy, 0, 1) * 255


def _spatter_without_black_images(original):
    def spatter(x, severity=1):
        with np.errstate(invalid="ignore"):
            out = original(x, severity)
        if np.isnan(out).any():  # 0 / 0 in the water normalisation: the water layer is empty
            out = np.clip(np.array(x, dtype=np.float32) / 255.0, 0, 1) * 255
        return out

    return spatter


def load() -> types.ModuleType:
    """Import `imagecorruptions` once, patched as the module docstring describes."""
    global _PACKAGE
    if _PACKAGE is not None:
        return _PACKAGE
    shim = None
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = _resource_filename
        sys.modules["pkg_resources"] = shim
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # scipy.ndimage.interpolation
            package = importlib.import_module("imagecorruptions")
    except ImportError as error:
        raise BenchError(f"corruption params=imagenet: cannot import imagecorruptions ({error}); expected "
                         "`pip install imagecorruptions` (1.1.2)") from error
    finally:
        if shim is not None and sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]
    module = package.corruptions
    if not hasattr(module.np, "float_"):
        module.np = _NumpyWithFloat("numpy")
    if "multichannel" not in inspect.signature(skimage.filters.gaussian).parameters:
        module.gaussian = _gaussian
    module.impulse_noise = _impulse_noise
    package.corruption_dict["impulse_noise"] = _impulse_noise
    module.spatter = package.corruption_dict["spatter"] = _spatter_without_black_images(module.spatter)
    _PACKAGE = package
    return package


def corrupt_images(name: str, images: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """`imagecorruptions.corrupt` on each image of a uint8 batch [N, H, W, 3], the global NumPy state seeded per
    image from `rng` (one 32-bit seed per image) and restored afterwards."""
    package = load()
    seeds = rng.integers(0, 2**32, size=len(images))
    out = np.empty_like(images)
    state = np.random.get_state()
    try:
        for i, image in enumerate(images):
            np.random.seed(int(seeds[i]))
            out[i] = package.corrupt(image, severity=int(severity), corruption_name=name)
    finally:
        np.random.set_state(state)
    return out
