"""Mixing at a hidden layer: the eligible points of a CIFAR ResNet / PreAct / WRN / PyramidNet and a one-shot
forward hook, shared by Manifold Mixup and feature-level CutMix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import BenchError
from .base import Method, check_mode, check_positive, check_probability


def residual_blocks(model: nn.Module) -> list[nn.Module]:
    """The residual blocks in forward order: modules whose class name ends in 'Block' (BasicBlock, PreActBlock,
    WideBlock, PyramidBlock of cutmix_bench.models; timm's ResNet BasicBlock/Bottleneck are not covered)."""
    return [m for m in model.modules() if type(m).__name__.endswith("Block")]


def downsamples(block: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) and max(m.stride) > 1 for m in block.modules())


def stage_ends(model: nn.Module) -> list[nn.Module]:
    """The last block of every stage (a stage ends where the next block downsamples, and at the last block)."""
    blocks = residual_blocks(model)
    return [b for i, b in enumerate(blocks) if i == len(blocks) - 1 or downsamples(blocks[i + 1])]


def feature_size(size: int, model_blocks: list[nn.Module], point: int, ends: list[nn.Module]) -> int:
    """Spatial size after the stage end `point` (1-based): each downsampling block before it halves the size,
    rounding up (3x3 stride-2 convs with padding 1, and 1x1 stride-2 shortcuts, both give ceil(size / 2))."""
    last = model_blocks.index(ends[point - 1])
    for block in model_blocks[:last + 1]:
        if downsamples(block):
            size = -(-size // 2)
    return size


class HiddenMixing(Method):
    """Base of the hidden-feature methods: `attach(model)` finds the stage ends; each call draws the point
    k uniformly among `layers` (0 = the input image, j = the output of stage j), mixes the targets now and arms
    a hook that mixes the features of the next training forward at that point only, then removes itself. The
    hook is a no-op in eval mode, so evaluation never mixes."""

    input_space = False

    def __init__(self, alpha: float, layers: Sequence[int], prob: float = 1.0, mode: str = "batch") -> None:
        self.alpha = check_positive("alpha", alpha)
        self.prob = check_probability("prob", prob)
        self.mode = check_mode(mode)
        if (not isinstance(layers, (list, tuple)) or not layers or len(set(layers)) < len(layers)
                or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in layers)):
            raise ValueError(f"layers must be a non-empty list of distinct integers >= 0 (0 = input), got {layers!r}")
        self.layers = sorted(layers)
        self.model: nn.Module | None = None
        self.ends: list[nn.Module] = []
        self.blocks: list[nn.Module] = []
        self._hook: Any = None

    def attach(self, model: nn.Module) -> None:
        self.check_model(model)
        self.model, self.blocks, self.ends = model, residual_blocks(model), stage_ends(model)

    def check_model(self, model: nn.Module) -> None:
        stages = len(stage_ends(model))
        if max(self.layers) > stages:
            raise BenchError(f"{type(self).__name__} layers {self.layers}: the model has {stages} stages of "
                             f"residual blocks (models resnet*, resnet18, preact_resnet18, wide_resnet, pyramidnet); "
                             f"layers must be <= that")

    def draw_point(self, rng: np.random.Generator) -> int:
        return self.layers[int(rng.integers(len(self.layers)))]

    def arm(self, point: int, mix: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Mix the output of stage `point` in the next training forward, once."""
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} mixes hidden features: call attach(model) first")
        self.disarm()

        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor | None:
            if not module.training:
                return None
            self.disarm()
            return mix(output)

        self._hook = self.ends[point - 1].register_forward_hook(hook)

    def disarm(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
