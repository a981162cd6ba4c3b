"""Mixing methods as batch transforms: registry and factory. A new method is one file + one import."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import Method

METHODS: Registry[Method] = Registry("method")


def create_method(name: str, key: str | None = None, **params: Any) -> Method:
    return METHODS.create(name, key, **params)


from . import baseline, cutmix, cutout, mixup  # noqa: E402,F401  (registration)
