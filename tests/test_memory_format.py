"""The channels_last guard (models/memory_format.py): torch 2.14.1's oneDNN AVX2 kernel corrupts the heap on the
weight gradient of a channels_last 1x1 stride-2 convolution with fewer than 8 input channels
(docs/onednn-crash.md). The guard keeps those convolutions NCHW; the rest of the model stays channels_last."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from cutmix_bench.models import create_model
from cutmix_bench.models.memory_format import crashes_in_channels_last, to_channels_last

NARROW_RESNET = {"name": "resnet8", "width": 4}  # the tests' narrow model: shortcuts 4->8 and 8->16, stride 2


def nchw_strides(t: torch.Tensor) -> bool:
    return t.stride() == torch.empty(t.shape).stride()


def test_the_guard_finds_exactly_the_crashing_class() -> None:
    assert crashes_in_channels_last(nn.Conv2d(4, 8, 1, stride=2))
    assert crashes_in_channels_last(nn.Conv2d(7, 14, 1, stride=(2, 2)))
    assert not crashes_in_channels_last(nn.Conv2d(8, 16, 1, stride=2))   # 8 channels and wider run
    assert not crashes_in_channels_last(nn.Conv2d(4, 8, 1, stride=1))    # stride 1 runs
    assert not crashes_in_channels_last(nn.Conv2d(4, 8, 3, stride=2))    # 3x3 runs


def test_guarded_convolutions_see_nchw_and_the_rest_channels_last() -> None:
    model = to_channels_last(create_model(NARROW_RESNET["name"], 10, width=NARROW_RESNET["width"]))
    seen: dict[str, bool] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(
                name, nchw_strides(args[0]) and nchw_strides(m.weight)))
    model(torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)).sum().backward()
    guarded = {name for name, m in model.named_modules() if crashes_in_channels_last(m)}
    assert len(guarded) == 1  # of the width-4 ResNet-8's shortcuts 4->8 and 8->16 (both stride 2), the first
    assert {name for name, nchw in seen.items() if nchw} == guarded


def test_the_guard_computes_the_same_function() -> None:
    torch.manual_seed(0)
    model = create_model(NARROW_RESNET["name"], 10, width=NARROW_RESNET["width"]).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        guarded = to_channels_last(model)(x.contiguous(memory_format=torch.channels_last))
        again = to_channels_last(model)(x.contiguous(memory_format=torch.channels_last))  # idempotent
    torch.testing.assert_close(guarded, plain, atol=1e-5, rtol=1e-5)
    assert torch.equal(guarded, again)


TRAIN_STEPS = """
    import torch
    from cutmix_bench.models import create_model
    from cutmix_bench.models.memory_format import to_channels_last
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = to_channels_last(create_model("resnet8", 10, width=4))
    x = torch.randn(32, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    for _ in range(60):
        model(x).sum().backward()
    print("trained")
"""


def test_a_narrow_resnet_trains_with_onednn_limited_to_avx2() -> None:
    """The regression test: without the guard this process aborts (SIGABRT/SIGSEGV) on torch 2.14.1, on any
    x86 host (AVX2-only hosts always, AVX-512 hosts under ONEDNN_MAX_CPU_ISA=AVX2)."""
    if not (os.path.exists("/proc/cpuinfo") and " avx2" in open("/proc/cpuinfo").read()):
        pytest.skip("needs an x86 CPU with AVX2")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(TRAIN_STEPS)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "trained" in done.stdout, done.stderr[-2000:]
