"""The CIFAR ResNet family of He et al. (2016): depth 6n+2, widths 16/32/64 (ResNet-8/20/32/56/110)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import MODELS
from .dropblock import dropblock_option, make


class BasicBlock(nn.Module):
    """`drop` (DropBlock or Identity) follows each conv's BN(+ReLU) and the shortcut, as the official ResNet."""

    def __init__(self, cin: int, cout: int, stride: int, drop: nn.Module | None = None) -> None:
        super().__init__()
        self.drop = drop or nn.Identity()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop(torch.relu(self.bn1(self.conv1(x))))
        return torch.relu(self.drop(self.bn2(self.conv2(out))) + self.drop(self.shortcut(x)))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, width: int = 16, dropblock: dict[str, Any] | None = None) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        widths = [width, 2 * width, 4 * width]
        conv = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.stem = nn.Sequential(conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        layers, cin = [], width
        for stage, cout in enumerate(widths):
            for i in range(n):
                layers.append(BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1, make(dropblock, stage, 3)))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


def _register(depth: int) -> None:
    @MODELS.register(f"resnet{depth}")
    def build(num_classes: int, width: int = 16, dropblock: dict[str, Any] | None = None) -> nn.Module:
        # `dropblock: {drop_prob, block_size, schedule}` adds DropBlock to the last two stages (no docstring:
        # `cutmix-bench list` shows the module's first line for models registered together).
        return CifarResNet(depth, num_classes, width, dropblock_option(dropblock))


for _depth in (8, 20, 32, 44, 56, 110):
    _register(_depth)
