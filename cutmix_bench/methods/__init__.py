"""Mixing methods as batch transforms: registry and factory. A new method is one file + one import."""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import BenchError
from ..registry import Registry
from .base import Method

METHODS: Registry[Method] = Registry("method")


def create_method(name: str, key: str | None = None, **params: Any) -> Method:
    """Build a registered method. `smoothing: s` is accepted by every method: a method that does not take it
    itself is wrapped so that its one-hot targets are smoothed before mixing."""
    factory = METHODS.get(name, key)
    if "smoothing" not in params or "smoothing" in inspect.signature(factory).parameters:
        return METHODS.create(name, key, **params)
    amount = params.pop("smoothing")
    method = METHODS.create(name, key, **params)
    try:
        return Smoothed(method, amount)
    except (TypeError, ValueError) as exc:
        raise BenchError(f"{key or name}.smoothing: {exc}") from exc


from . import (  # noqa: E402,F401  (registration)
    augmix,
    baseline,
    cutmix,
    cutout,
    cutout_mixup,
    feature_cutmix,
    fmix,
    manifold_mixup,
    mixup,
    mixup_cutmix,
    puzzlemix,
    resizemix,
    saliencymix,
    smoothing,
)
from .smoothing import Smoothed  # noqa: E402
