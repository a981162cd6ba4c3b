"""PuzzleMix (simplified): the label weight is the true pixel share, the mask is the saliency-optimal block set
(brute force), block count and lam follow the official draws, the saliency is the input gradient without side
effects on the model, small and odd batches keep device and dtype, and a run trains through the runner."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from test_methods import devices, distinct_batch, own_labels
from test_methods_new import pixel_shares

from cutmix_bench.methods import create_method
from cutmix_bench.methods.puzzlemix import input_saliency, optimal_mask
from cutmix_bench.rundir import Run
from cutmix_bench.runner import load_data
from cutmix_bench.suite_file import validate
from cutmix_bench.training import train_run
from cutmix_bench.user_mixing import MixCollate


def linear_model(batch: int, height: int, width: int, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """A linear classifier with small weights: its input gradient is non-zero at every pixel, also for the large
    values of distinct_batch (softmax far from saturation)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * height * width, batch)).to(dtype)
    with torch.no_grad():
        model[1].weight.mul_(1e-6)
    return model


@pytest.mark.parametrize("batch,height,width", [(6, 32, 32), (3, 19, 26), (1, 32, 32), (5, 8, 12)])
def test_label_weight_is_the_true_pixel_share(batch: int, height: int, width: int) -> None:
    method = create_method("puzzlemix")
    method.attach(linear_model(batch, height, width))
    rng = np.random.default_rng(3)
    for _ in range(20):
        pixel_shares(*method(distinct_batch(batch, height, width), own_labels(batch), rng))


def test_the_mask_keeps_the_most_saliency_of_both_images_for_its_area() -> None:
    """Brute force over every block subset of the 2x2 grid: no other set of `keep` own blocks keeps more."""
    rng = np.random.default_rng(4)
    for _ in range(30):
        own = torch.from_numpy(rng.dirichlet(np.ones(4), 3)).view(3, 2, 2)
        partner = torch.from_numpy(rng.dirichlet(np.ones(4), 3)).view(3, 2, 2)
        for keep in range(5):
            chosen = optimal_mask(own, partner, keep)
            assert (chosen.flatten(1).sum(1) == keep).all()
            kept = (own * chosen + partner * ~chosen).flatten(1).sum(1)
            for i in range(3):
                best = max(sum(own.flatten(1)[i, j] for j in subset) +
                           sum(partner.flatten(1)[i, j] for j in range(4) if j not in subset)
                           for subset in itertools.combinations(range(4), keep))
                assert kept[i].item() == pytest.approx(best.item(), abs=1e-12)


def test_block_count_and_lambda_follow_the_official_draws() -> None:
    method = create_method("puzzlemix", alpha=1.0)
    rng = np.random.default_rng(5)
    draws = [method.sample(4, 32, 32, rng) for _ in range(20000)]
    counts = [sum(d["block_num"] == n for d in draws) for n in (2, 4, 8, 16)]
    assert sum(counts) == len(draws) and stats.chisquare(counts).pvalue > 1e-3  # 2 ** randint(1, 5)
    assert stats.kstest([d["lam"] for d in draws], stats.beta(1.0, 1.0).cdf).pvalue > 1e-3


def test_the_pasted_blocks_are_the_nearest_upsampled_block_mask_and_follow_saliency() -> None:
    """The partner's one salient block (a gradient only there) is pasted when lam leaves room for one block."""
    batch, size = 2, 16

    class Spot(torch.nn.Module):  # the loss depends on image 1's top-left and image 0's bottom-right block only
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            weight = torch.zeros_like(x)
            weight[1, :, :8, :8] = 1.0
            weight[0, :, 8:, 8:] = 1.0
            return torch.stack([(x * weight).sum((1, 2, 3)), torch.zeros(len(x), dtype=x.dtype)], 1)

    method = create_method("puzzlemix")
    method.attach(Spot())
    x, y = torch.rand(batch, 3, size, size, dtype=torch.float64), torch.eye(batch, dtype=torch.float64)
    params = {"active": True, "lam": 0.75, "block_num": 2, "perm": np.array([1, 0])}
    mixed, target = method.apply(x, y, params)
    assert torch.equal(mixed[0, :, :8, :8], x[1, :, :8, :8])  # image 1's salient block moved into image 0
    own = (mixed[0] == x[0]).all(0)
    assert own.sum().item() == 3 * 64 and own[8:, 8:].all()  # image 0 keeps its own salient block
    assert target[0].tolist() == pytest.approx([0.75, 0.25])


def test_saliency_is_the_input_gradient_and_leaves_the_model_as_it_was() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5)).train()
    x, y = torch.randn(4, 3, 8, 8), F.one_hot(torch.tensor([0, 1, 2, 3]), 5).float()
    stats_before = model[1].running_mean.clone()
    saliency = input_saliency(model, x, y)
    assert model.training and torch.equal(model[1].running_mean, stats_before)  # eval-mode forward, as clean_lam 0
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    inputs = x.clone().requires_grad_(True)
    F.cross_entropy(model(inputs), y.argmax(1)).backward()
    assert torch.allclose(saliency, inputs.grad.pow(2).mean(1).sqrt(), atol=1e-7)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 31, 27), (8, 17, 32)])
def test_small_and_odd_batches_keep_device_dtype_and_inputs(shape: tuple, dtype: torch.dtype, device: str) -> None:
    batch, height, width = shape
    method = create_method("puzzlemix")
    method.attach(linear_model(batch, height, width, dtype).to(device))
    x = torch.randn(batch, 3, height, width, dtype=dtype, device=device)
    y = torch.eye(batch, dtype=dtype, device=device)
    before = x.clone(), y.clone()
    rng = np.random.default_rng(6)
    for _ in range(5):
        mixed, target = method(x, y, rng)
        assert (mixed.dtype, target.dtype, mixed.device, target.device) == (dtype, dtype, x.device, y.device)
        assert torch.allclose(target.sum(1).double().cpu(), torch.ones(batch, dtype=torch.float64))
    assert torch.equal(x, before[0]) and torch.equal(y, before[1])


def test_prob_zero_is_the_identity_and_a_run_trains_through_the_runner(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs the model"):
        MixCollate("puzzlemix", num_classes=4)
    with pytest.raises(RuntimeError, match="attach"):
        create_method("puzzlemix")(torch.zeros(2, 3, 8, 8), torch.eye(2), np.random.default_rng(0))
    method = create_method("puzzlemix", prob=0.0)
    x, y = torch.randn(3, 3, 8, 8), torch.eye(3)
    same_x, same_y = method(x, y, np.random.default_rng(0))
    assert same_x is x and same_y is y
    suite = validate({
        "name": "puzzlemix",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 64, "test_size": 32, "size": 16}},
        "model": {"name": "resnet8", "params": {"width": 4}},
        "train": {"epochs": 1, "batch_size": 32, "threads": 1},
        "methods": {"puzzlemix": {"smoothing": 0.1}},
        "seeds": [0],
        "device": "cpu",
    })
    rows = train_run(suite, Run("puzzlemix", 0), load_data(suite), torch.device("cpu"), tmp_path / "run")
    assert np.isfinite(next(r["value"] for r in rows if r["metric"] == "final_train_loss"))
