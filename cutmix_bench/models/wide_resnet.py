"""Wide ResNet (Zagoruyko & Komodakis, 2016), pre-activation blocks, depth 6n+4 and width k."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import MODELS
from .dropblock import dropblock_option, make


class WideBlock(nn.Module):
    """`drop` (DropBlock or Identity) follows each conv (after conv1's BN-ReLU) and the shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float, drop: nn.Module | None = None) -> None:
        super().__init__()
        self.drop = drop or nn.Identity()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.dropout(self.drop(torch.relu(self.bn2(self.conv1(out)))))
        return self.drop(self.conv2(out)) + self.drop(shortcut)


@MODELS.register("wide_resnet")
def wide_resnet(num_classes: int, depth: int = 28, width: int = 10, dropout: float = 0.0,
                dropblock: dict[str, Any] | None = None) -> nn.Module:
    """`dropblock: {drop_prob, block_size, schedule}` adds DropBlock to the last two stages."""
    dropblock = dropblock_option(dropblock)
    if (depth - 4) % 6:
        raise ValueError(f"depth must be 6n+4, got {depth}")
    n = (depth - 4) // 6
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, 1, 1, bias=False)]
    cin = 16
    for stage, cout in enumerate((16 * width, 32 * width, 64 * width)):
        for i in range(n):
            layers.append(WideBlock(cin, cout, 2 if stage > 0 and i == 0 else 1, dropout, make(dropblock, stage, 3)))
            cin = cout
    layers += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)
