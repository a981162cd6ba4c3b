"""Models: every registered model maps [B, 3, 32, 32] to [B, K]; parameter counts match the
published ones; bad arguments are BenchErrors; ShakeDrop behaves as specified."""

from __future__ import annotations

import pytest
import torch

from cutmix_bench.errors import BenchError
from cutmix_bench.models import MODELS, create_model
from cutmix_bench.models.pyramidnet import ShakeDrop

CLASSES = 7
# Small configurations of every registered model (each forward pass well under a second on one core).
SMALL = {
    "tiny": [{}],
    "resnet8": [{}],
    "resnet20": [{}],
    "resnet32": [{"width": 4}],
    "resnet44": [{"width": 4}],
    "resnet56": [{"width": 4}],
    "resnet110": [{"width": 2}],
    "resnet18": [{}],
    "preact_resnet18": [{}],
    "wide_resnet": [{"depth": 10, "width": 1}, {"depth": 10, "width": 2, "dropout": 0.3}],
    "pyramidnet": [{"depth": 20, "widening": 48, "bottleneck": False, "shakedrop": 0.5},
                   {"depth": 29, "widening": 48, "bottleneck": True, "shakedrop": 0.5},
                   {"depth": 20, "widening": 24, "bottleneck": False}],
}
CASES = [(name, params) for name, configs in SMALL.items() for params in configs]


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_registered_model_is_covered() -> None:
    own = {name for name in MODELS.names() if MODELS.get(name).__module__.startswith("cutmix_bench.")}  # not tests'
    assert set(SMALL) == own, "add a small configuration of the new model to SMALL"


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_output_shape_in_train_and_eval_mode(name: str, params: dict) -> None:
    torch.manual_seed(0)
    model = create_model(name, CLASSES, **params)
    x = torch.randn(3, 3, 32, 32)
    out = model(x)
    assert out.shape == (3, CLASSES) and out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        first, second = model(x[:1]), model(x[:1])
    assert first.shape == (1, CLASSES) and torch.equal(first, second)  # eval is deterministic


def test_channels_last_gives_the_same_logits() -> None:
    torch.manual_seed(0)
    model = create_model("resnet8", CLASSES).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        model = model.to(memory_format=torch.channels_last)
        last = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(plain, last, atol=1e-5)


@pytest.mark.parametrize("name,params,classes,published_m,rel", [
    ("resnet20", {}, 10, 0.27, 0.02),     # He et al. 2016, Table 6
    ("resnet56", {}, 10, 0.85, 0.02),
    ("resnet110", {}, 10, 1.7, 0.03),
    ("resnet18", {}, 10, 11.17, 0.005),   # CIFAR ResNet-18 (3x3 stem), CIFAR-10 head
    ("resnet18", {}, 100, 11.22, 0.005),
    ("preact_resnet18", {}, 10, 11.17, 0.005),
    ("wide_resnet", {"depth": 28, "width": 10}, 10, 36.5, 0.005),   # Zagoruyko & Komodakis 2016, WRN-28-10
    ("wide_resnet", {"depth": 16, "width": 8}, 10, 11.0, 0.01),     # WRN-16-8
    ("pyramidnet", {"depth": 200, "widening": 240, "bottleneck": True}, 100, 26.8, 0.005),  # CutMix paper
])
def test_parameter_counts_match_published(name: str, params: dict, classes: int, published_m: float,
                                          rel: float) -> None:
    count = parameter_count(create_model(name, classes, **params)) / 1e6
    assert count == pytest.approx(published_m, rel=rel)


@pytest.mark.parametrize("depth,widening,bottleneck", [(110, 48, False), (200, 240, True), (29, 30, True)])
def test_pyramidnet_widens_linearly(depth: int, widening: float, bottleneck: bool) -> None:
    """Han et al. 2017: block k of N = 3n has int(round(16 + k * widening / N)) channels (x4 for
    bottleneck outputs); downsampling at the first block of stages 2 and 3."""
    model = create_model("pyramidnet", 10, depth=depth, widening=widening, bottleneck=bottleneck)
    blocks = list(model.blocks)
    total = 3 * ((depth - 2) // (9 if bottleneck else 6))
    assert len(blocks) == total
    for k, block in enumerate(blocks, 1):
        convs = [m for m in block.body if isinstance(m, torch.nn.Conv2d)]
        assert convs[0].out_channels == int(round(16 + k * widening / total))
        assert convs[-1].out_channels == convs[0].out_channels * (4 if bottleneck else 1)
        assert block.stride == (2 if k - 1 in (total // 3, 2 * total // 3) else 1)
    assert model.head[-1].in_features == int(round(16 + widening)) * (4 if bottleneck else 1)


@pytest.mark.parametrize("name,params,word", [
    ("pyramidnet", {"depth": 21, "bottleneck": False}, "depth"),
    ("pyramidnet", {"depth": 22, "bottleneck": True}, "depth"),
    ("wide_resnet", {"depth": 11}, "depth"),
    ("resnet20", {"depth": 32}, "depth"),          # depth is in the name, not a parameter
    ("resnet18", {"width": 2}, "width"),
])
def test_bad_model_arguments_raise_bench_error(name: str, params: dict, word: str) -> None:
    with pytest.raises(BenchError) as info:
        create_model(name, CLASSES, "model", **params)
    assert word in str(info.value) and "model" in str(info.value)


def test_unknown_model_lists_the_choices() -> None:
    with pytest.raises(BenchError, match=r"model.name: unknown model 'resnet19'.*resnet20"):
        create_model("resnet19", CLASSES, "model.name")


def test_timm_passthrough() -> None:
    pytest.importorskip("timm")
    model = create_model("timm:resnet18", CLASSES)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, CLASSES)
    with pytest.raises(BenchError, match="model.name.*no_such_net"):
        create_model("timm:no_such_net", CLASSES)


# ---------------------------------------------------------------- ShakeDrop


def test_shakedrop_eval_scales_by_the_keep_probability() -> None:
    x = torch.randn(4, 3, 5, 5)
    assert torch.allclose(ShakeDrop(0.3).eval()(x), 0.7 * x)


def test_shakedrop_train_forward_alpha_and_backward_beta() -> None:
    """p_drop = 1: every sample is dropped, so forward scales by alpha ~ U(-1, 1) and backward by an
    independent beta ~ U(0, 1), one draw per sample."""
    torch.manual_seed(0)
    x = torch.ones(2000, 2, 3, 3, requires_grad=True)
    y = ShakeDrop(1.0).train()(x)
    y.sum().backward()
    alpha, beta = y.detach()[:, 0, 0, 0], x.grad[:, 0, 0, 0]
    assert torch.equal(y.detach(), alpha[:, None, None, None].expand_as(y))
    assert torch.equal(x.grad, beta[:, None, None, None].expand_as(x))
    assert alpha.min() < -0.9 and alpha.max() > 0.9 and abs(alpha.mean()) < 0.05
    assert beta.min() >= 0 and beta.max() <= 1 and abs(beta.mean() - 0.5) < 0.05
    assert not torch.equal(alpha, beta)


def test_shakedrop_zero_is_identity_in_training() -> None:
    x = torch.randn(8, 3, 4, 4, requires_grad=True)
    y = ShakeDrop(0.0).train()(x)
    y.sum().backward()
    assert torch.equal(y, x) and torch.equal(x.grad, torch.ones_like(x))


def test_shakedrop_keeps_the_input_dtype() -> None:
    x = torch.randn(4, 3, 4, 4, dtype=torch.bfloat16, requires_grad=True)
    y = ShakeDrop(0.5).train()(x)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and x.grad.dtype == torch.bfloat16
