"""PyramidNet (Han et al., CVPR 2017) for CIFAR, with optional ShakeDrop (Yamada et al., 2019).

The CutMix paper's CIFAR model is PyramidNet-200 with widening factor 240 and bottleneck blocks."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import MODELS
from .dropblock import dropblock_option, make


class ShakeDrop(nn.Module):
    """Training: scale the residual by b + alpha - b*alpha, b ~ Bernoulli(1 - p), alpha ~ U(-1, 1)
    forward and beta ~ U(0, 1) backward. Evaluation: scale by the expectation 1 - p."""

    def __init__(self, p_drop: float) -> None:
        super().__init__()
        self.p_drop = p_drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x * (1 - self.p_drop)
        return _ShakeDropFn.apply(x, self.p_drop)


class _ShakeDropFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p_drop: float) -> torch.Tensor:  # type: ignore[override]
        # In the input's dtype (bf16 under autocast stays bf16); gate + a * (1 - gate) is exactly 1 or a.
        shape = (x.shape[0], 1, 1, 1)
        gate = torch.empty(shape, device=x.device, dtype=x.dtype).bernoulli_(1 - p_drop)
        ctx.save_for_backward(gate)
        alpha = torch.empty_like(gate).uniform_(-1, 1)
        return x * (gate + alpha * (1 - gate))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (gate,) = ctx.saved_tensors
        beta = torch.empty_like(gate).uniform_(0, 1)
        return grad * (gate + beta * (1 - gate)).to(grad.dtype), None


class PyramidBlock(nn.Module):
    """With DropBlock (`drop`), one follows each conv's BN(+ReLU) of the branch and the shortcut; without it the
    body is unchanged (same state_dict keys as before the option existed)."""

    def __init__(self, cin: int, planes: int, stride: int, bottleneck: bool, p_drop: float | None,
                 drop: nn.Module | None = None) -> None:
        super().__init__()
        cout = planes * (4 if bottleneck else 1)
        if bottleneck:
            body = [nn.BatchNorm2d(cin), nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes),
                    nn.ReLU(inplace=True), nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
                    nn.BatchNorm2d(planes), nn.ReLU(inplace=True), nn.Conv2d(planes, cout, 1, bias=False),
                    nn.BatchNorm2d(cout)]
        else:
            body = [nn.BatchNorm2d(cin), nn.Conv2d(cin, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes),
                    nn.ReLU(inplace=True), nn.Conv2d(planes, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)]
        self.drop = drop or nn.Identity()
        if drop is not None:  # after each conv's BN, or its ReLU where one follows
            ends = [i for i, m in enumerate(body) if isinstance(m, nn.BatchNorm2d) and i > 0]
            ends = [i + 1 if i + 1 < len(body) and isinstance(body[i + 1], nn.ReLU) else i for i in ends]
            body = [m for i, layer in enumerate(body) for m in ([layer, drop] if i in ends else [layer])]
        self.body = nn.Sequential(*body)
        self.shake = ShakeDrop(p_drop) if p_drop is not None else nn.Identity()
        self.stride, self.extra = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shake(self.body(x))
        shortcut = F.avg_pool2d(x, 2, ceil_mode=True) if self.stride != 1 else x
        if self.extra:  # zero-padded channels: PyramidNet's parameter-free shortcut
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
        return out + self.drop(shortcut)


class PyramidNet(nn.Module):
    def __init__(self, depth: int, widening: float, num_classes: int, bottleneck: bool,
                 shakedrop: float | None, dropblock: dict[str, Any] | None = None) -> None:
        super().__init__()
        per_block = 9 if bottleneck else 6
        if (depth - 2) % per_block:
            raise ValueError(f"depth must be {per_block}n+2 with bottleneck={bottleneck}, got {depth}")
        n = (depth - 2) // per_block
        step = widening / (3 * n)
        planes = 16.0
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        blocks, cin, total = [], 16, 3 * n
        for i in range(total):
            planes += step
            # Linear decay rule: drop probability grows from ~0 to `shakedrop` at the last block.
            p_drop = None if shakedrop is None else shakedrop * (i + 1) / total
            stride = 2 if i in (n, 2 * n) else 1
            drop = make(dropblock, i // n, 3) if dropblock else None
            block = PyramidBlock(cin, int(round(planes)), stride, bottleneck, p_drop, drop)
            blocks.append(block)
            cin = int(round(planes)) * (4 if bottleneck else 1)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


@MODELS.register("pyramidnet")
def pyramidnet(num_classes: int, depth: int = 200, widening: float = 240, bottleneck: bool = True,
               shakedrop: float | None = None, dropblock: dict[str, Any] | None = None) -> nn.Module:
    """`shakedrop` is the final-layer drop probability p_L (0.5 in the ShakeDrop paper); None disables it.
    `dropblock: {drop_prob, block_size, schedule}` adds DropBlock to the last two stages."""
    return PyramidNet(depth, widening, num_classes, bottleneck, shakedrop, dropblock_option(dropblock))
