"""OOD sets: synthetic noise, or any registered dataset (its test split, else its train split).

A set is given by a spec, a name or a mapping {name, root, variant, size, label, seed, params}:
- `gaussian` / `uniform`: i.i.d. per-pixel N(0.5, 1) clipped to [0, 1], or U(0, 1) (ODIN's synthetic sets),
  quantised to 8 bits like every other image; `size` images (default: as many as the in-distribution test
  set), the in-distribution image shape; seeded by `seed`.
- a dataset name (`cifar10`, `tinyimagenet`, `svhn`, `imagedir`, ...): built with `root` and `params`;
  `root` defaults to `<ood_root>/<label>`. `size` keeps a seeded subset.
- `variant`: `crop` (one seeded random crop per image) or `resize` (area-averaging downsampling)
  to the in-distribution side, for sets with larger images (Tiny ImageNet / LSUN crop and resize).

A set whose data is absent or unreadable is skipped with a note (see `OODSet.note`); a wrong spec raises
ValueError at suite-check time, before training.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data import DATASETS, Split, create_dataset
from ..errors import BenchError
from ..registry import check_kwargs

SYNTHETIC = ("gaussian", "uniform")
VARIANTS = ("crop", "resize")
SPEC_KEYS = ("name", "root", "variant", "size", "label", "seed", "params")


@dataclass(frozen=True)
class SetSpec:
    name: str
    label: str
    root: str | None = None
    variant: str | None = None
    size: int | None = None
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OODSet:
    """Images uint8 [N, H, W, C] (CPU), or None and a `note` saying why the set was skipped."""

    label: str
    images: torch.Tensor | None
    note: str = ""


def parse_spec(raw: Any, key: str) -> SetSpec:
    """A spec from the suite; every mistake is a ValueError naming `key` (e.g. near[1].variant)."""
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise ValueError(f"{key}: expected a set name or a mapping with keys {', '.join(SPEC_KEYS)}, got {raw!r}")
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"{key}.{unknown[0]}: unknown key; expected one of {', '.join(SPEC_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str):
        raise ValueError(f"{key}.name: expected a set name (gaussian, uniform or a dataset), got {name!r}")
    if name not in SYNTHETIC and name not in DATASETS:
        raise ValueError(f"{key}.name: unknown OOD set {name!r}; expected one of "
                         f"{', '.join(SYNTHETIC + tuple(DATASETS.names()))} (LSUN, iSUN, Places365, Textures: "
                         f"imagedir with a root and a label)")
    variant, size, seed = raw.get("variant"), raw.get("size"), raw.get("seed", 0)
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"{key}.variant: expected one of {', '.join(VARIANTS)} (or none), got {variant!r}")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise ValueError(f"{key}.size: expected a number of images >= 1, got {size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"{key}.seed: expected an integer, got {seed!r}")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError(f"{key}.params: expected a mapping of dataset parameters, got {params!r}")
    if name in SYNTHETIC and (params or raw.get("root") or variant):
        raise ValueError(f"{key}: the synthetic set {name!r} takes only size, seed and label")
    if name not in SYNTHETIC:
        if "root" in raw and not _takes_root(name):
            raise ValueError(f"{key}.root: the dataset {name!r} reads no files")
        if "root" in params:
            raise ValueError(f"{key}.params.root: give the root as {key}.root")
        try:
            check_kwargs(DATASETS.get(name), params, f"{key}.params")
        except BenchError as exc:
            raise ValueError(str(exc)) from None
    label = raw.get("label") or (f"{name}-{variant}" if variant else name)
    if not isinstance(label, str):
        raise ValueError(f"{key}.label: expected a string, got {label!r}")
    root = raw.get("root")
    return SetSpec(name, label, None if root is None else str(root), variant, size, seed, dict(params))


def gaussian_noise(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """i.i.d. N(0.5, 1) per pixel, clipped to [0, 1], rounded to uint8 levels."""
    x = np.clip(np.random.default_rng([seed, 1]).normal(0.5, 1.0, (n, *shape)), 0, 1)
    return torch.from_numpy(np.rint(x * 255).astype(np.uint8))


def uniform_noise(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """i.i.d. U(0, 1) per pixel, rounded to uint8 levels."""
    x = np.random.default_rng([seed, 2]).random((n, *shape))
    return torch.from_numpy(np.rint(x * 255).astype(np.uint8))


def random_crop(images: torch.Tensor, height: int, width: int, seed: int) -> torch.Tensor:
    """One uniformly placed height x width crop per image of uint8 NHWC `images`, seeded."""
    n, h, w, _ = images.shape
    rng = np.random.default_rng(seed)
    top, left = rng.integers(0, h - height + 1, n), rng.integers(0, w - width + 1, n)
    return torch.stack([img[t:t + height, s:s + width] for img, t, s in zip(images, top, left)])


def resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 NHWC -> uint8 NHWC of the given size by area averaging: each output pixel is the mean of its
    footprint (exactly the k x k block mean for integer factors k, as the shared 32x32 Tiny ImageNet)."""
    x = F.interpolate(images.permute(0, 3, 1, 2).float(), size=(height, width), mode="area")
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def load_set(spec: SetSpec, shape: tuple[int, int, int], default_size: int, max_images: int | None = None,
             ood_root: Path | None = None) -> OODSet:
    """The images of one set, shaped like the in-distribution images (`shape` = H, W, C)."""
    limits = [n for n in (spec.size, max_images) if n is not None]
    cap = min(limits) if limits else None
    if spec.name in SYNTHETIC:
        noise = gaussian_noise if spec.name == "gaussian" else uniform_noise
        return OODSet(spec.label, noise(min(spec.size or default_size, cap or default_size), shape, spec.seed))
    params = dict(spec.params)
    if _takes_root(spec.name):
        root = Path(spec.root) if spec.root else (ood_root / spec.label if ood_root else None)
        if root is None:
            return OODSet(spec.label, None, "no root given and no ood_root to look in")
        if not root.exists():
            return OODSet(spec.label, None, f"{root} not found")
        params["root"] = str(root)
    try:
        split = _test_or_train(create_dataset(spec.name, spec.label, **params))
    except BenchError as exc:
        return OODSet(spec.label, None, f"unreadable: {exc}")
    images = split.subset(cap, spec.seed).x
    height, width, _ = shape
    if spec.variant == "crop":
        if images.shape[1] < height or images.shape[2] < width:
            side = tuple(images.shape[1:3])
            return OODSet(spec.label, None, f"images are {side}, too small to crop {height}x{width}")
        images = random_crop(images, height, width, spec.seed)
    elif spec.variant == "resize":
        images = resize(images, height, width)
    if tuple(images.shape[1:]) != tuple(shape):
        return OODSet(spec.label, None, f"images are {tuple(images.shape[1:])}, the model takes {tuple(shape)}: "
                                        f"set variant crop or resize")
    return OODSet(spec.label, images)


def _takes_root(name: str) -> bool:
    return "root" in inspect.signature(DATASETS.get(name)).parameters


def _test_or_train(dataset: Any) -> Split:
    try:
        return dataset.load("test")
    except BenchError as test_error:
        try:
            return dataset.load("train")
        except BenchError:
            raise test_error from None
