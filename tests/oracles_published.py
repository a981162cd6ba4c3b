"""Test-only oracles of the networks behind published checkpoints, re-written from their official sources (not
imported: the sources need CUDA tensors and old APIs), module names and forward order as there, so that their
`state_dict()` has the official key names and a saved file has the official layout.

- clovaai/CutMix-PyTorch @ 5ee7b8d (pyramidnet.py: CIFAR PyramidNet with basic or bottleneck blocks, padded
  identity shortcut, AvgPool2d(8) head; resnet.py: CIFAR ResNet, basic blocks; train.py saves
  {'epoch', 'arch', 'state_dict', 'best_err1', 'best_err5', 'optimizer'} of a DataParallel model).
- Jingkang50/OpenOOD v1.5 @ 0bf1fe2 (openood/networks/resnet18_32x32.py: ResNet18_32x32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PyramidBasic(nn.Module):
    ratio = 1

    def __init__(self, cin: int, planes: int, stride: int, pool: nn.Module | None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.downsample = pool

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn3(self.conv2(F.relu(self.bn2(self.conv1(self.bn1(x))))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x)
        shortcut = self.downsample(x) if self.downsample is not None else x
        extra = out.shape[1] - shortcut.shape[1]
        if extra:  # the official code concatenates a zero tensor of the missing channels
            zeros = torch.zeros(out.shape[0], extra, *shortcut.shape[2:], dtype=out.dtype, device=out.device)
            shortcut = torch.cat((shortcut, zeros), 1)
        return out + shortcut


class PyramidBottleneck(PyramidBasic):
    ratio = 4

    def __init__(self, cin: int, planes: int, stride: int, pool: nn.Module | None) -> None:
        nn.Module.__init__(self)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(planes * 4)
        self.downsample = pool

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn2(self.conv1(self.bn1(x))))
        out = F.relu(self.bn3(self.conv2(out)))
        return self.bn4(self.conv3(out))


class OfficialPyramidNet(nn.Module):
    """CIFAR branch of the official PyramidNet(dataset, depth, alpha, num_classes, bottleneck)."""

    def __init__(self, depth: int, alpha: float, num_classes: int, bottleneck: bool) -> None:
        super().__init__()
        block = PyramidBottleneck if bottleneck else PyramidBasic
        n = int((depth - 2) / (9 if bottleneck else 6))
        self.addrate = alpha / (3 * n * 1.0)
        self.input_dim = 16
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.featuremap_dim = 16.0
        self.layer1 = self.stage(block, n, 1)
        self.layer2 = self.stage(block, n, 2)
        self.layer3 = self.stage(block, n, 2)
        self.bn_final = nn.BatchNorm2d(self.input_dim)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(self.input_dim, num_classes)

    def stage(self, block: type[PyramidBasic], count: int, stride: int) -> nn.Sequential:
        pool = nn.AvgPool2d((2, 2), stride=(2, 2), ceil_mode=True) if stride != 1 else None
        self.featuremap_dim = self.featuremap_dim + self.addrate
        blocks = [block(self.input_dim, int(round(self.featuremap_dim)), stride, pool)]
        for _ in range(1, count):
            wider = self.featuremap_dim + self.addrate
            blocks.append(block(int(round(self.featuremap_dim)) * block.ratio, int(round(wider)), 1, None))
            self.featuremap_dim = wider
        self.input_dim = int(round(self.featuremap_dim)) * block.ratio
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.bn1(self.conv1(x)))))
        x = self.avgpool(F.relu(self.bn_final(x)))
        return self.fc(x.view(x.size(0), -1))


class ResNetBasic(nn.Module):
    """The basic block of CutMix's resnet.py (torchvision's), and with `shortcut` naming OpenOOD's."""

    def __init__(self, cin: int, planes: int, stride: int, shortcut_name: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut_name = shortcut_name
        projection = None
        if stride != 1 or cin != planes:
            projection = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        setattr(self, shortcut_name, projection if projection is not None or shortcut_name == "downsample"
                else nn.Sequential())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        projection = getattr(self, self.shortcut_name)
        out = out + (projection(x) if projection is not None else x)
        return F.relu(out)


class OfficialCifarResNet(nn.Module):
    """CIFAR branch of CutMix's ResNet(dataset, depth, num_classes, bottleneck=False)."""

    def __init__(self, depth: int, num_classes: int) -> None:
        super().__init__()
        n = int((depth - 2) / 6)
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin, stages = 16, []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stages.append(nn.Sequential(*[ResNetBasic(cin if i == 0 else planes, planes, stride if i == 0 else 1,
                                                      "downsample") for i in range(n)]))
            cin = planes
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
        x = self.avgpool(x)
        return self.fc(x.view(x.size(0), -1))


class OpenOODResNet18(nn.Module):
    """OpenOOD's ResNet18_32x32 (basic blocks [2, 2, 2, 2], 3x3 stem, adaptive average pool)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for index, (planes, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), 1):
            setattr(self, f"layer{index}", nn.Sequential(ResNetBasic(cin, planes, stride, "shortcut"),
                                                         ResNetBasic(planes, planes, 1, "shortcut")))
            cin = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).view(x.size(0), -1))


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics (fresh BNs would make every block an affine no-op), eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator) * 0.5 + 0.75 if name.endswith(
                    ("running_var", "bn1.weight")) else torch.randn(tensor.shape, generator=generator) * 0.2
                tensor.copy_(values)
    return model.eval()


def save_cutmix_official(model: nn.Module, path: str, arch: str) -> None:
    """As train.py's save_checkpoint: the DataParallel model's state_dict (keys `module.`) in the official dict."""
    wrapped = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 299, "arch": arch, "state_dict": wrapped, "best_err1": 14.47, "best_err5": 2.97,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.0025, "momentum": 0.9, "params": [0]}]}}, path)
