"""Label smoothing (Szegedy et al., CVPR 2016), as a method and as an option of every method."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..checks import check_number
from . import METHODS
from .base import Method

REFERENCE = ("Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016; "
             "applied as timm's mixup_target (huggingface/pytorch-image-models timm/data/mixup.py)")


def check_smoothing(value: float) -> float:
    if not 0.0 <= check_number("smoothing", value) < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {value}")
    return float(value)


def smooth(y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """One-hot -> (1 - s) * y + s / K: on value 1 - s + s/K, off value s/K, as timm's mixup_target."""
    return y * (1.0 - smoothing) + smoothing / y.shape[1]


@METHODS.register("label_smoothing")
class LabelSmoothing(Method):
    """Label smoothing: no mixing, one-hot targets replaced by (1 - s) * y + s / K."""

    reference = REFERENCE

    def __init__(self, smoothing: float = 0.1) -> None:
        self.smoothing = check_smoothing(smoothing)

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return x, smooth(y, self.smoothing)


class Smoothed(Method):
    """Any method with `smoothing: s`: the one-hot targets are smoothed BEFORE mixing, as timm does (mixing
    the smoothed targets gives the same result as smoothing the mixed ones, since both are linear and the
    mixing weights sum to 1). Sampling is the wrapped method's, so the draws are unchanged."""

    def __init__(self, method: Method, smoothing: float) -> None:
        self.method, self.smoothing = method, check_smoothing(smoothing)
        self.reference, self.input_space = method.reference, method.input_space
        self.criterion = getattr(method, "criterion", None)

    def attach(self, model: torch.nn.Module) -> None:
        self.method.attach(model)

    def check_model(self, model: torch.nn.Module) -> None:
        getattr(self.method, "check_model", lambda m: None)(model)

    def check_image(self, height: int, width: int) -> None:
        getattr(self.method, "check_image", lambda h, w: None)(height, width)

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        return self.method.sample(batch_size, height, width, rng)

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.method.apply(x, smooth(y, self.smoothing), params)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.method(x, smooth(y, self.smoothing), rng)
