"""DropBlock: the mask equals a NumPy port of the official TF `dropblock` given the same noise, the dropped
fraction matches its exact expectation (and ~ drop_prob), one seed drops one block_size block, the kept values
are rescaled by the kept fraction, evaluation and progress 0 are the identity, the runner ramps the rate
linearly, and the option leaves every model unchanged when off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cutmix_bench.errors import BenchError
from cutmix_bench.models import create_model
from cutmix_bench.models.dropblock import DropBlock2d, drop_block
from cutmix_bench.rundir import Run
from cutmix_bench.runner import load_data
from cutmix_bench.suite_file import validate
from cutmix_bench.training import train_run

FAMILIES = [("resnet20", {}, 6), ("resnet18", {}, 4), ("preact_resnet18", {}, 4),
            ("wide_resnet", {"depth": 10, "width": 1}, 2),
            ("pyramidnet", {"depth": 20, "widening": 12, "bottleneck": False}, 6),
            ("pyramidnet", {"depth": 29, "widening": 12, "bottleneck": True}, 6)]


def official_dropblock(net: np.ndarray, keep_prob: float, dropblock_size: int, noise: np.ndarray) -> np.ndarray:
    """tensorflow/tpu models/official/resnet/resnet_model.py `dropblock` (channels_first), line for line in NumPy,
    its tf.random_uniform given as `noise`; max_pool 'SAME' pads (k-1)//2 before and k//2 after."""
    _, _, width, height = net.shape
    dropblock_size = min(dropblock_size, width)
    seed_drop_rate = (1.0 - keep_prob) * width ** 2 / dropblock_size ** 2 / (width - dropblock_size + 1) ** 2
    w_i, h_i = np.meshgrid(np.arange(width), np.arange(width))
    valid_block_center = ((w_i >= dropblock_size // 2) & (w_i < width - (dropblock_size - 1) // 2)
                          & (h_i >= dropblock_size // 2) & (h_i < width - (dropblock_size - 1) // 2))
    valid_block_center = valid_block_center[None, None].astype(np.float64)
    block_pattern = ((1 - valid_block_center + (1 - seed_drop_rate) + noise) >= 1).astype(np.float64)
    if dropblock_size == width:
        block_pattern = block_pattern.min(axis=(2, 3), keepdims=True) * np.ones_like(net)
    else:
        before, after = (dropblock_size - 1) // 2, dropblock_size // 2
        padded = np.pad(block_pattern, ((0, 0), (0, 0), (before, after), (before, after)), constant_values=np.inf)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (dropblock_size, dropblock_size), axis=(2, 3))
        block_pattern = windows.min(axis=(-2, -1))
    percent_ones = block_pattern.sum() / block_pattern.size
    return net / percent_ones * block_pattern


@pytest.mark.parametrize("size,block", [(8, 3), (8, 4), (8, 7), (8, 8), (4, 7), (16, 5), (9, 2)])
def test_the_mask_is_the_official_tf_dropblock_for_the_same_noise(size: int, block: int) -> None:
    rng = np.random.default_rng(size * 10 + block)
    for drop_prob in (0.1, 0.3):
        x = rng.normal(size=(6, 8, size, size))
        noise = rng.random(x.shape)
        ours = drop_block(torch.from_numpy(x), drop_prob, block, torch.from_numpy(noise)).numpy()
        assert np.allclose(ours, official_dropblock(x, 1 - drop_prob, block, noise), rtol=1e-12, atol=0)
        assert (ours == 0).any()


def exact_drop_probability(height: int, width: int, block: int, drop_prob: float) -> np.ndarray:
    """P(a pixel is dropped) = 1 - (1 - gamma)^n, n = the number of valid centres whose block covers it."""
    kh, kw = min(block, height), min(block, width)
    gamma = drop_prob * height * width / (kh * kw) / ((height - kh + 1) * (width - kw + 1))
    cover = np.zeros((height, width))
    for cy in range(kh // 2, height - (kh - 1) // 2):
        for cx in range(kw // 2, width - (kw - 1) // 2):
            cover[cy - kh // 2:cy + (kh - 1) // 2 + 1, cx - kw // 2:cx + (kw - 1) // 2 + 1] += 1
    return 1 - (1 - gamma) ** cover


@pytest.mark.parametrize("height,width,block", [(16, 16, 7), (8, 8, 3), (8, 12, 4)])
def test_the_dropped_fraction_matches_its_expectation_and_is_about_drop_prob(height: int, width: int,
                                                                             block: int) -> None:
    torch.manual_seed(0)
    drop_prob, draws = 0.1, 4000
    out = drop_block(torch.ones(draws, 1, height, width, dtype=torch.float64), drop_prob, block)
    dropped = (out == 0).double().mean(0)[0].numpy()
    expected = exact_drop_probability(height, width, block, drop_prob)
    assert np.abs(dropped - expected).max() < 5 * np.sqrt(0.25 / draws)  # every pixel within 5 sigma
    assert dropped.mean() == pytest.approx(expected.mean(), abs=3 * np.sqrt(0.25 / (draws * 4)))
    assert 0.75 * drop_prob < expected.mean() <= drop_prob  # overlaps of blocks make it a little below


@pytest.mark.parametrize("block", [3, 4, 5])
def test_one_seed_drops_one_block_and_the_kept_values_are_rescaled_by_the_kept_fraction(block: int) -> None:
    noise = torch.ones(1, 2, 12, 12)
    noise[0, 1, 6, 5] = 0.0  # one seed, channel 1 only
    x = torch.full((1, 2, 12, 12), 3.0, dtype=torch.float64)
    out = drop_block(x, 0.1, block, noise)
    zero = (out[0, 1] == 0).nonzero()
    rows, cols = zero[:, 0].unique(), zero[:, 1].unique()
    assert len(zero) == block * block and len(rows) == len(cols) == block
    assert (rows.min().item(), cols.min().item()) == (6 - block // 2, 5 - block // 2)
    kept = 2 * 144 - block * block
    assert torch.allclose(out[out != 0], torch.tensor(3.0 * 2 * 144 / kept, dtype=torch.float64))
    assert (out[0, 0] != 0).all()  # each channel has its own mask, as the official noise of the tensor's shape


def test_evaluation_and_progress_zero_are_the_identity_and_dtype_is_kept() -> None:
    x = torch.randn(2, 3, 8, 8, dtype=torch.bfloat16)
    layer = DropBlock2d(0.2, 3)
    assert layer(x) is x  # linear schedule: nothing dropped at the start of training
    layer.set_progress(1.0)
    out = layer(x)
    assert out.dtype == torch.bfloat16 and (out == 0).any()
    assert layer.eval()(x) is x
    constant = DropBlock2d(0.2, 3, "constant")
    constant.set_progress(0.0)
    assert (constant(x) == 0).any()


@pytest.mark.parametrize("name,params,count", FAMILIES)
def test_the_option_is_in_the_last_two_stages_and_changes_nothing_when_off(name: str, params: dict,
                                                                          count: int) -> None:
    torch.manual_seed(0)
    plain = create_model(name, 5, **params)
    torch.manual_seed(0)
    dropped = create_model(name, 5, dropblock={"drop_prob": 0.1, "block_size": 3}, **params)
    assert sum(isinstance(m, DropBlock2d) for m in dropped.modules()) == count  # one per block of the last 2 stages
    assert not any(isinstance(m, DropBlock2d) for m in plain.modules())
    for a, b in zip(plain.state_dict().values(), dropped.state_dict().values()):
        assert torch.equal(a, b)  # same parameters from the same seed: the option draws nothing at build time
    x = torch.randn(3, 3, 32, 32)
    for m in dropped.modules():
        if isinstance(m, DropBlock2d):
            m.set_progress(1.0)
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), dropped.eval()(x))  # evaluation never drops
        plain.train(), dropped.train()
        torch.manual_seed(1)
        assert not torch.equal(plain(x), dropped(x))
    for m in dropped.modules():
        if isinstance(m, DropBlock2d):
            m.progress = 0.0
    torch.manual_seed(1)
    train_plain = plain(x)
    torch.manual_seed(1)
    assert torch.equal(train_plain, dropped(x))  # progress 0: identical training forward, no random draws


def test_the_runner_ramps_the_rate_linearly_from_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    original = DropBlock2d.set_progress
    monkeypatch.setattr(DropBlock2d, "set_progress", lambda self, p: seen.append(p) or original(self, p))
    suite = validate({
        "name": "dropblock",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 64, "test_size": 32, "size": 16}},
        "model": {"name": "resnet8", "params": {"width": 4, "dropblock": {"drop_prob": 0.1, "block_size": 3}}},
        "train": {"epochs": 2, "batch_size": 32, "threads": 1},
        "methods": {"baseline": {}},
        "seeds": [0],
        "device": "cpu",
    })
    rows = train_run(suite, Run("baseline", 0), load_data(suite), torch.device("cpu"), tmp_path / "run")
    assert np.isfinite(next(r["value"] for r in rows if r["metric"] == "final_train_loss"))
    per_module = 2  # resnet8: one block in each of its last two stages
    assert seen == [step / 4 for step in range(4) for _ in range(per_module)]


@pytest.mark.parametrize("value,word", [({"drop_prob": 1.5}, "drop_prob"), ({"block_size": 0}, "block_size"),
                                        ({"schedule": "cosine"}, "schedule"), ({"size": 3}, "size"),
                                        (0.1, "mapping")])
def test_bad_options_name_the_key(value: object, word: str) -> None:
    with pytest.raises(BenchError, match=f"model.*dropblock.*{word}|model.*{word}"):
        create_model("resnet8", 10, "model", dropblock=value)
