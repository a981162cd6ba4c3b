"""DropBlock (Ghiasi et al., NeurIPS 2018) as a model option: contiguous blocks of feature maps dropped in the
last two stages, with the drop probability ramped linearly from 0 over training, as the official code."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

REFERENCE = ("Ghiasi et al., DropBlock: A regularization method for convolutional networks, NeurIPS 2018; "
             "official code tensorflow/tpu models/official/resnet (resnet_model.py dropblock, resnet_main.py)")


def drop_block(x: torch.Tensor, drop_prob: float, block_size: int, noise: torch.Tensor | None = None) -> torch.Tensor:
    """The official `dropblock` arithmetic (tensorflow/tpu resnet_model.py), for H != W too.

    Block k = min(block_size, side) per side; seed rate gamma = drop_prob * H*W / (kh*kw) / ((H-kh+1)(W-kw+1));
    seeds only at valid centres [k//2, side - (k-1)//2), so that every block lies inside the map; a uniform draw
    per element (each channel its own mask, as the official noise of the tensor's shape) seeds where < gamma;
    each seed drops the k x k window of TF's 'SAME' max pool around it; the kept values are divided by the kept
    fraction of the whole tensor. `noise` (uniform [0, 1), x's shape) replaces the draw in tests. timm's
    drop_block_2d differs in two ways: seeds anywhere (blocks clipped at the border) and one mask for all
    channels by default; its block geometry (odd and even sizes) is the same."""
    _, _, height, width = x.shape
    kh, kw = min(block_size, height), min(block_size, width)
    gamma = drop_prob * height * width / (kh * kw) / ((height - kh + 1) * (width - kw + 1))
    if noise is None:
        noise = torch.rand(x.shape, device=x.device)
    rows, cols = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
    valid = ((rows >= kh // 2) & (rows < height - (kh - 1) // 2))[:, None] & \
        ((cols >= kw // 2) & (cols < width - (kw - 1) // 2))[None, :]
    seeds = (valid & (noise < gamma)).to(x.dtype)
    # TF 'SAME' pads (k-1)//2 before and k//2 after: a seed at c drops rows [c - k//2, c + (k-1)//2].
    padded = F.pad(seeds, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))
    keep = 1 - F.max_pool2d(padded, (kh, kw), stride=1)
    kept_fraction = (keep.sum(dtype=torch.float64) / keep.numel()).clamp_min(1.0 / keep.numel())
    return x * keep / kept_fraction.to(x.dtype)


class DropBlock2d(nn.Module):
    """DropBlock in training (no-op in evaluation) at drop probability `drop_prob * progress`: `progress` is the
    fraction of training done, set every step by the training module (`set_progress`), so the rate grows
    linearly from 0 to `drop_prob` (the official keep_prob schedule 1 - (1 - keep_prob) * step / steps);
    `schedule='constant'` keeps `drop_prob` from the first step."""

    def __init__(self, drop_prob: float, block_size: int, schedule: str = "linear") -> None:
        super().__init__()
        self.drop_prob, self.block_size, self.schedule = drop_prob, block_size, schedule
        self.progress = 0.0 if schedule == "linear" else 1.0

    def set_progress(self, progress: float) -> None:
        if self.schedule == "linear":
            self.progress = min(max(progress, 0.0), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rate = self.drop_prob * self.progress
        if not self.training or rate == 0:
            return x
        return drop_block(x, rate, self.block_size)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, block_size={self.block_size}, schedule={self.schedule}"


def dropblock_option(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Check `model.params.dropblock`: None (off) or {drop_prob in (0, 1), block_size >= 1, schedule}."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"dropblock must be a mapping {{drop_prob: 0.1, block_size: 7}}, got {value!r}")
    unknown = set(value) - {"drop_prob", "block_size", "schedule"}
    if unknown:
        raise ValueError(f"dropblock.{sorted(unknown)[0]}: unknown key; expected drop_prob, block_size, schedule")
    option = {"drop_prob": 0.1, "block_size": 7, "schedule": "linear", **value}
    if not (isinstance(option["drop_prob"], int | float) and 0 < option["drop_prob"] < 1):
        raise ValueError(f"dropblock.drop_prob must be in (0, 1), got {option['drop_prob']!r}")
    if not (isinstance(option["block_size"], int) and option["block_size"] >= 1):
        raise ValueError(f"dropblock.block_size must be a positive integer, got {option['block_size']!r}")
    if option["schedule"] not in ("linear", "constant"):
        raise ValueError(f"dropblock.schedule must be 'linear' (from 0, as the paper) or 'constant', "
                         f"got {option['schedule']!r}")
    return option


def make(option: dict[str, Any] | None, stage: int, stages: int) -> nn.Module:
    """A DropBlock2d for a block of `stage` (0-based) out of `stages` when on and in the last two stages (groups
    3 and 4 of the paper's ResNet-50); else an Identity (no parameters, no random draws: the model is unchanged)."""
    if option is None or stage < stages - 2:
        return nn.Identity()
    return DropBlock2d(float(option["drop_prob"]), option["block_size"], option["schedule"])
