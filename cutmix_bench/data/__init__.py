"""Datasets: registry and factory. A new source is one file + one import line."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import Dataset, Split

DATASETS: Registry[Dataset] = Registry("dataset")


def create_dataset(name: str, key: str | None = None, **params: Any) -> Dataset:
    return DATASETS.create(name, key, **params)


from . import cifar, imagedir, imagefolder, npz, svhn, synthetic, tinyimagenet  # noqa: E402,F401  (registration)

__all__ = ["DATASETS", "Dataset", "Split", "create_dataset"]
