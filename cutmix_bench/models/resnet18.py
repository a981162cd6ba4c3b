"""ResNet-18 adapted to 32x32 inputs (3x3 stem, no max-pool), plain and pre-activation variants."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import MODELS
from .dropblock import dropblock_option, make
from .resnet import BasicBlock


class PreActBlock(nn.Module):
    """`drop` (DropBlock or Identity) follows each conv (after conv1's BN-ReLU) and the shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, drop: nn.Module | None = None) -> None:
        super().__init__()
        self.drop = drop or nn.Identity()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.drop(torch.relu(self.bn2(self.conv1(out))))
        return self.drop(self.conv2(out)) + self.drop(shortcut)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int, preact: bool, dropblock: dict[str, Any] | None = None) -> None:
        super().__init__()
        block = PreActBlock if preact else BasicBlock
        stem: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False)]
        if not preact:
            stem += [nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem)
        layers, cin = [], 64
        for stage, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
            layers += [block(cin, cout, stride, make(dropblock, stage, 4)),
                       block(cout, cout, 1, make(dropblock, stage, 4))]
            cin = cout
        self.layers = nn.Sequential(*layers)
        tail: list[nn.Module] = [nn.BatchNorm2d(512), nn.ReLU(inplace=True)] if preact else []
        self.head = nn.Sequential(*tail, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


@MODELS.register("resnet18")
def resnet18(num_classes: int, dropblock: dict[str, Any] | None = None) -> nn.Module:
    # `dropblock: {drop_prob, block_size, schedule}` adds DropBlock to stages 3 and 4.
    return ResNet18(num_classes, False, dropblock_option(dropblock))


@MODELS.register("preact_resnet18")
def preact_resnet18(num_classes: int, dropblock: dict[str, Any] | None = None) -> nn.Module:
    return ResNet18(num_classes, True, dropblock_option(dropblock))
