"""channels_last for CPU and GPU training, minus one layout that crashes oneDNN.

torch 2.14.1's oneDNN AVX2 kernel for the weight gradient of a channels_last 1x1 convolution with stride 2 and
fewer than 8 input channels corrupts the heap (SIGABRT `free(): invalid next size`, or SIGSEGV, within 200 steps
of a 32x4x16x16 batch; reproduction and the measured boundary in docs/onednn-crash.md). Hosts with AVX-512 run
another kernel and do not crash, but `ONEDNN_MAX_CPU_ISA=AVX2` brings it back there. Such convolutions are the
shortcuts of narrow ResNets (the tests' `width: 4`); they are run in NCHW, the rest of the model stays
channels_last. The guard applies on every host, so a model computes the same way wherever it trains.
"""

from __future__ import annotations

import torch
from torch import nn

NARROW_CHANNELS = 8  # 2..7 input channels crash, 8 and 16 (the shortcuts of ResNet-8/20 and wider) do not


def crashes_in_channels_last(module: nn.Module) -> bool:
    """A 2-d convolution in the crashing class: 1x1 kernel, stride above 1, fewer than 8 input channels."""
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and max(module.stride) > 1
            and module.in_channels < NARROW_CHANNELS)


def to_channels_last(model: nn.Module) -> nn.Module:
    """`model.to(memory_format=torch.channels_last)`, except for the convolutions of `crashes_in_channels_last`:
    their weight gets NCHW strides and their input is made NCHW (a convolution runs channels_last when either is;
    a 1x1 weight is `is_contiguous()` in both layouts, so its strides are set by a clone, not `.contiguous()`)."""
    model = model.to(memory_format=torch.channels_last)
    for module in model.modules():
        if crashes_in_channels_last(module):
            module.weight.data = module.weight.data.clone(memory_format=torch.contiguous_format)
            if not getattr(module, "_nchw_guard", False):
                module.register_forward_pre_hook(_nchw_input)
                module._nchw_guard = True
    return model


def _nchw_input(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return (args[0].contiguous(), *args[1:])
