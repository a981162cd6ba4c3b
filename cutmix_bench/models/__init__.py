"""Models: one registry and `create_model(name, num_classes, **kw)`, as in timm.

`timm:<name>` passes through to timm when it is installed, `torchvision:<name>` to torchvision's model builders."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import BenchError
from ..registry import Registry

MODELS: Registry[nn.Module] = Registry("model")


def create_model(name: str, num_classes: int, key: str | None = None, **params: Any) -> nn.Module:
    if name.startswith("timm:"):
        try:
            import timm
        except ImportError as exc:
            raise BenchError(f"{key or 'model.name'}: {name} needs timm (pip install timm)") from exc
        try:
            return timm.create_model(name[5:], num_classes=num_classes, **params)
        except Exception as exc:
            raise BenchError(f"{key or 'model.name'}: timm could not build {name[5:]!r} ({exc})") from exc
    if name.startswith("torchvision:"):  # its ImageNet networks (e.g. to read a checkpoint with torchvision's keys)
        from torchvision.models import get_model

        try:
            return get_model(name.removeprefix("torchvision:"), num_classes=num_classes, **params)
        except Exception as exc:
            raise BenchError(f"{key or 'model.name'}: torchvision could not build {name[12:]!r} ({exc})") from exc
    return MODELS.create(name, key, num_classes=num_classes, **params)


from . import pyramidnet, resnet, resnet18, tiny, wide_resnet  # noqa: E402,F401  (registration)
