"""Mixing methods: exact areas and label weights, sampling distributions, clipping, determinism.

CutMix is checked without trusting its own bookkeeping: every pixel of every input image holds a
distinct value, so each output pixel tells which image it came from; the pasted box is read off the
output and compared with the label weights. Labels are one-hot with class i for sample i, so the
weight of sample i's original label is target[i, i].
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from cutmix_bench.errors import BenchError
from cutmix_bench.methods import METHODS, create_method
from cutmix_bench.training.module import soft_cross_entropy

CHANNELS = 3


def distinct_batch(batch: int, height: int, width: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """x[b, c, h, w] = its flat index: every value occurs once, so its source image is value // (C*H*W)."""
    return torch.arange(batch * CHANNELS * height * width, dtype=dtype).reshape(batch, CHANNELS, height, width)


def own_labels(batch: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """One-hot targets where sample i has class i (distinct classes, so label weights are unambiguous)."""
    return torch.eye(batch, dtype=dtype)


def source_image(mixed: torch.Tensor) -> torch.Tensor:
    """[B, H, W]: index of the input image every output pixel came from (all channels must agree)."""
    source = torch.div(mixed, CHANNELS * mixed.shape[2] * mixed.shape[3], rounding_mode="floor").long()
    assert (source == source[:, :1]).all(), "channels of one pixel come from different images"
    return source[:, 0]


def read_box(pasted: torch.Tensor) -> tuple[int, int, int, int] | None:
    """[y0, y1) x [x0, x1) of a boolean [H, W] mask; asserts the mask is exactly that rectangle."""
    if not pasted.any():
        return None
    rows = pasted.any(1).nonzero().flatten()
    cols = pasted.any(0).nonzero().flatten()
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    assert pasted[y0:y1, x0:x1].all() and pasted.sum() == (y1 - y0) * (x1 - x0), "pasted region is not a box"
    return y0, y1, x0, x1


def unclipped_side(lam: float, size: int) -> int:
    """The box side of the CutMix paper before clipping: int(size * sqrt(1 - lam))."""
    return int(size * np.sqrt(1.0 - lam))


def centre_from_box(start: int, stop: int, side: int, size: int) -> int | None:
    """The integer centre c of a box [c - side//2, c + side//2) clipped to [0, size] (the official CutMix and
    Cutout arithmetic), from an unclipped edge; None when both edges are clipped (the centre is then not
    identifiable)."""
    if start > 0:
        return start + side // 2
    if stop < size:
        return stop - side // 2
    return None


# ---------------------------------------------------------------- CutMix: areas and label weights


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("batch,height,width", [(16, 32, 32), (7, 32, 32), (5, 20, 28), (1, 32, 32)])
def test_cutmix_pasted_area_equals_one_minus_original_weight(mode: str, batch: int, height: int, width: int) -> None:
    method = create_method("cutmix", alpha=1.0, prob=1.0, mode=mode)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = distinct_batch(batch, height, width), own_labels(batch)
        mixed, target = method(x, y, rng)
        source = source_image(mixed)
        boxes = []
        for i in range(batch):
            partners = set(source[i].unique().tolist()) - {i}
            assert len(partners) <= 1, "pixels from more than one partner"
            pasted = source[i] != i
            box = read_box(pasted)
            boxes.append(box)
            area = int(pasted.sum())
            # Exact: the weight of the original label is 1 - pasted area / image area.
            assert target[i, i].item() == 1.0 - area / (height * width)
            if partners:
                assert target[i, partners.pop()].item() == pytest.approx(area / (height * width), abs=1e-12)
            assert target[i].sum().item() == pytest.approx(1.0, abs=1e-12)
            assert (target[i] != 0).sum() <= 2
        if mode == "batch":  # one box for the whole batch
            assert len({b for b in boxes if b is not None}) <= 1


def test_cutmix_batch_of_one_is_unchanged() -> None:
    """With one image the only partner is the image itself: nothing visible changes."""
    method = create_method("cutmix", alpha=1.0, prob=1.0)
    x, y = distinct_batch(1, 32, 32), own_labels(1)
    mixed, target = method(x, y, np.random.default_rng(1))
    assert torch.equal(mixed, x) and torch.equal(target, y)


# ---------------------------------------------------------------- CutMix: sampling distributions


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_cutmix_lambda_is_beta_distributed(alpha: float) -> None:
    method = create_method("cutmix", alpha=alpha, mode="elem")
    lam = method.sample(20000, 32, 32, np.random.default_rng(2))["lam"]
    assert lam.shape == (20000,)
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    # The test has power: a different alpha is rejected on the same draws.
    assert stats.kstest(lam, stats.beta(2 * alpha, 2 * alpha).cdf).pvalue < 1e-6


def test_cutmix_batch_mode_draws_one_lambda_per_batch_from_beta() -> None:
    method = create_method("cutmix", alpha=1.0, mode="batch")
    rng = np.random.default_rng(3)
    lam = np.concatenate([method.sample(4, 32, 32, rng)["lam"] for _ in range(3000)])
    assert lam.shape == (3000,)
    assert stats.kstest(lam, stats.beta(1.0, 1.0).cdf).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_cutmix_boxes_have_paper_side_clipped_to_image(alpha: float) -> None:
    """Side 2 * (int(H*sqrt(1-lam)) // 2) before clipping (the official rand_bbox), inside [0, H] x [0, W]
    after, centre uniform incl. edges."""
    height, width, n = 32, 24, 20000
    params = create_method("cutmix", alpha=alpha, mode="elem").sample(n, height, width, np.random.default_rng(4))
    y0, y1, x0, x1 = params["box"]
    lam = params["lam"]
    assert (0 <= y0).all() and (y0 <= y1).all() and (y1 <= height).all()
    assert (0 <= x0).all() and (x0 <= x1).all() and (x1 <= width).all()
    centres_y, centres_x = [], []
    for i in range(n):
        side_y, side_x = unclipped_side(lam[i], height), unclipped_side(lam[i], width)
        assert y1[i] - y0[i] <= side_y and x1[i] - x0[i] <= side_x
        if 0 < y0[i] and y1[i] < height:
            assert y1[i] - y0[i] == 2 * (side_y // 2)
        if 0 < x0[i] and x1[i] < width:
            assert x1[i] - x0[i] == 2 * (side_x // 2)
        if side_y > 0 and side_x > 0:
            centres_y.append(centre_from_box(y0[i], y1[i], side_y, height))
            centres_x.append(centre_from_box(x0[i], x1[i], side_x, width))
    # Weight of the original label >= lam: flooring the side and clipping only shrink the box.
    keep = 1 - (y1 - y0) * (x1 - x0) / (height * width)
    assert (keep >= lam - 1e-12).all()
    assert keep.mean() > lam.mean() + 0.02  # clipping at the border matters on average
    for centres, size in ((centres_y, height), (centres_x, width)):
        centres = np.array([c for c in centres if c is not None])
        assert centres.min() == 0 and centres.max() == size - 1
        counts = np.bincount(centres, minlength=size)
        assert len(counts) == size
        assert stats.chisquare(counts).pvalue > 1e-3


def test_cutmix_clipped_box_matches_unclipped_geometry() -> None:
    """For a centre near a corner the box is the part of the centred square inside the image."""
    height = width = 32
    params = create_method("cutmix", alpha=1.0, mode="elem").sample(5000, height, width, np.random.default_rng(5))
    y0, y1, x0, x1 = params["box"]
    clipped_both = 0
    for i in range(5000):
        side = unclipped_side(params["lam"][i], height)
        cy = centre_from_box(y0[i], y1[i], side, height)
        if cy is None or side == 0:
            continue
        assert (y0[i], y1[i]) == (max(0, cy - side // 2), min(height, cy + side // 2))
        start = cy - side // 2
        clipped_both += start < 0 and x0[i] == 0
    assert clipped_both > 0  # corner cases were exercised


# ---------------------------------------------------------------- CutMix: prob, determinism, dtypes


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_cutmix_prob_zero_leaves_batches_unchanged(mode: str) -> None:
    method = create_method("cutmix", alpha=1.0, prob=0.0, mode=mode)
    rng = np.random.default_rng(6)
    x, y = distinct_batch(9, 32, 32), own_labels(9)
    for _ in range(50):
        mixed, target = method(x, y, rng)
        assert torch.equal(mixed, x) and torch.equal(target, y)


def test_cutmix_prob_half_mixes_about_half_the_batches() -> None:
    method = create_method("cutmix", alpha=1.0, prob=0.5, mode="batch")
    rng = np.random.default_rng(7)
    x, y = distinct_batch(8, 32, 32), own_labels(8)
    n = 600
    changed = sum(not torch.equal(method(x, y, rng)[1], y) for _ in range(n))
    assert stats.binomtest(changed, n, 0.5).pvalue > 1e-3


def test_cutmix_prob_half_mixes_about_half_the_samples_in_elem_mode() -> None:
    method = create_method("cutmix", alpha=1.0, prob=0.5, mode="elem")
    rng = np.random.default_rng(8)
    mixed_count = total = 0
    for _ in range(100):
        x, y = distinct_batch(16, 16, 16), own_labels(16)
        params = method.sample(16, 16, 16, rng)
        _, target = method.apply(x, y, params)
        moved = params["perm"] != np.arange(16)
        mixed_count += int((target.diagonal() < 1).numpy()[moved].sum())
        total += int(moved.sum())
    assert stats.binomtest(mixed_count, total, 0.5).pvalue > 1e-3


@pytest.mark.parametrize("name,params", [("cutmix", {"mode": "batch"}), ("cutmix", {"mode": "elem"}),
                                         ("mixup", {"mode": "batch"}), ("mixup", {"mode": "elem"}),
                                         ("cutout", {})])
def test_same_seed_same_output(name: str, params: dict) -> None:
    method = create_method(name, **params)
    x, y = torch.randn(7, 3, 32, 32), F.one_hot(torch.arange(7) % 3, 3).float()
    first = method(x, y, np.random.default_rng(11))
    second = method(x, y, np.random.default_rng(11))
    other = method(x, y, np.random.default_rng(12))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name", ["baseline", "cutout", "mixup", "cutmix"])
def test_methods_keep_device_and_dtype_and_do_not_modify_inputs(name: str, dtype: torch.dtype, device: str) -> None:
    method = create_method(name)
    x = torch.randn(5, 3, 32, 32).to(device=device, dtype=dtype)
    y = F.one_hot(torch.arange(5), 5).to(device=device, dtype=dtype)
    x_before, y_before = x.clone(), y.clone()
    mixed, target = method(x, y, np.random.default_rng(13))
    assert mixed.dtype == dtype and target.dtype == dtype
    assert mixed.device == x.device and target.device == y.device
    assert mixed.shape == x.shape and target.shape == y.shape
    assert torch.equal(x, x_before) and torch.equal(y, y_before)
    tolerance = 1e-2 if dtype == torch.bfloat16 else 1e-6
    assert torch.allclose(target.sum(1).double(), torch.ones(5, dtype=torch.float64, device=device), atol=tolerance)


@pytest.mark.parametrize("name", [n for n in METHODS.names() if METHODS.get(n).input_space])
def test_channels_last_input_gives_the_same_batch(name: str) -> None:
    """The loader yields channels_last batches; the result must not depend on the memory layout."""
    x, y = torch.randn(4, 3, 32, 32), torch.eye(4)
    plain = create_method(name)(x, y, np.random.default_rng(14))
    last = create_method(name)(x.contiguous(memory_format=torch.channels_last), y, np.random.default_rng(14))
    assert torch.equal(plain[0], last[0]) and torch.equal(plain[1], last[1])


# ---------------------------------------------------------------- Mixup


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("batch", [1, 7, 16])
def test_mixup_is_the_exact_convex_combination(mode: str, batch: int) -> None:
    method = create_method("mixup", alpha=1.0, mode=mode)
    rng = np.random.default_rng(15)
    x, y = torch.randn(batch, 3, 8, 8, dtype=torch.float64), own_labels(batch)
    for _ in range(10):
        params = method.sample(batch, 8, 8, rng)
        lam, perm = params["lam"], params["perm"]
        assert sorted(perm.tolist()) == list(range(batch))
        if mode == "batch":
            assert (lam == lam[0]).all()
        mixed, target = method.apply(x, y, params)
        for i in range(batch):
            expected = lam[i] * x[i] + (1 - lam[i]) * x[perm[i]]
            assert torch.allclose(mixed[i], expected, rtol=0, atol=1e-12)
            assert target[i, i].item() == pytest.approx(lam[i] + (1 - lam[i]) * (perm[i] == i), abs=1e-12)
        assert torch.allclose(target.sum(1), torch.ones(batch, dtype=torch.float64), atol=1e-12)


def test_mixup_call_is_sample_then_apply() -> None:
    method = create_method("mixup", alpha=0.4)
    x, y = torch.randn(6, 3, 8, 8), torch.eye(6)
    expected = method.apply(x, y, method.sample(6, 8, 8, np.random.default_rng(16)))
    actual = method(x, y, np.random.default_rng(16))
    assert torch.equal(actual[0], expected[0]) and torch.equal(actual[1], expected[1])


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_mixup_lambda_is_beta_distributed(alpha: float) -> None:
    lam = create_method("mixup", alpha=alpha, mode="elem").sample(20000, 8, 8, np.random.default_rng(17))["lam"]
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3


def test_mixup_prob_zero_leaves_batches_unchanged() -> None:
    method = create_method("mixup", alpha=1.0, prob=0.0)
    x, y = torch.randn(5, 3, 8, 8), torch.eye(5)
    mixed, target = method(x, y, np.random.default_rng(18))
    assert torch.equal(mixed, x) and torch.equal(target, y)


# ---------------------------------------------------------------- Cutout


@pytest.mark.parametrize("size", [16, 7])
@pytest.mark.parametrize("batch", [1, 9])
def test_cutout_zeroes_exactly_the_clipped_hole(size: int, batch: int) -> None:
    height, width = 32, 24
    method = create_method("cutout", size=size)
    rng = np.random.default_rng(19)
    for _ in range(30):
        x = distinct_batch(batch, height, width) + 1  # no pixel is 0 before Cutout
        y = own_labels(batch)
        params = method.sample(batch, height, width, rng)
        out, target = method.apply(x, y, params)
        assert torch.equal(target, y)
        zero = (out == 0).all(1)
        assert ((out == 0).any(1) == zero).all(), "a hole must cover all channels"
        assert torch.equal(out[~zero[:, None].expand_as(out)], x[~zero[:, None].expand_as(x)])
        for i in range(batch):
            box = read_box(zero[i])
            assert box is not None
            y0, y1, x0, x1 = box
            cy, cx = centre_from_box(y0, y1, size, height), centre_from_box(x0, x1, size, width)
            assert 0 <= cy < height and 0 <= cx < width
            # Clipped area computed from the centre: the part of the centred square inside the image.
            rows = len(range(max(0, cy - size // 2), min(height, cy + size // 2)))
            cols = len(range(max(0, cx - size // 2), min(width, cx + size // 2)))
            assert int(zero[i].sum()) == rows * cols


def test_cutout_centre_is_uniform_including_edges() -> None:
    size, height = 16, 32
    y0, y1, _, _ = create_method("cutout", size=size).sample(20000, height, height, np.random.default_rng(20))["box"]
    centres = np.array([centre_from_box(a, b, size, height) for a, b in zip(y0, y1)])
    counts = np.bincount(centres, minlength=height)
    assert len(counts) == height and counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3
    assert ((y1 - y0) < size).mean() == pytest.approx(15 / 32, abs=0.02)  # centres 0..7 and 25..31 clip


def test_cutout_fills_with_the_normalised_zero() -> None:
    """The hole is 0 after normalisation, i.e. the dataset mean colour; the label is untouched."""
    x, y = torch.full((3, 3, 32, 32), 2.5), torch.eye(3)
    out, target = create_method("cutout", size=16)(x, y, np.random.default_rng(21))
    values = set(out.unique().tolist())
    assert values == {0.0, 2.5}
    assert torch.equal(target, y)


def test_cutout_prob_zero_is_identity() -> None:
    x, y = torch.randn(4, 3, 32, 32), torch.eye(4)
    out, _ = create_method("cutout", size=16, prob=0.0)(x, y, np.random.default_rng(22))
    assert torch.equal(out, x)


def test_baseline_is_identity() -> None:
    x, y = torch.randn(4, 3, 32, 32), torch.eye(4)
    out, target = create_method("baseline")(x, y, np.random.default_rng(23))
    assert torch.equal(out, x) and torch.equal(target, y)


# ---------------------------------------------------------------- bad parameters


@pytest.mark.parametrize("name,params,word", [
    ("cutmix", {"alpha": 0.0}, "alpha"),
    ("cutmix", {"alpha": -1.0}, "alpha"),
    ("cutmix", {"alpha": float("nan")}, "alpha"),
    ("cutmix", {"prob": -0.1}, "prob"),
    ("cutmix", {"prob": 1.5}, "prob"),
    ("cutmix", {"mode": "pixel"}, "mode"),
    ("cutmix", {"beta": 1.0}, "beta"),
    ("mixup", {"alpha": 0.0}, "alpha"),
    ("mixup", {"prob": 2.0}, "prob"),
    ("mixup", {"mode": "sample"}, "mode"),
    ("cutout", {"size": 0}, "size"),
    ("cutout", {"size": -4}, "size"),
    ("cutout", {"size": 2.5}, "size"),
    ("cutout", {"prob": -1.0}, "prob"),
    ("baseline", {"alpha": 1.0}, "alpha"),
])
def test_bad_parameters_raise_bench_error_naming_the_key(name: str, params: dict, word: str) -> None:
    key = f"methods.{name}"
    with pytest.raises(BenchError) as info:
        create_method(name, key, **params)
    message = str(info.value)
    assert key in message and word in message


def test_unknown_method_names_the_key_and_the_choices() -> None:
    with pytest.raises(BenchError, match=r"methods\.cutmax: unknown method 'cutmax'.*cutmix"):
        create_method("cutmax", "methods.cutmax")


# ---------------------------------------------------------------- loss


@pytest.mark.parametrize("per_sample", [False, True])
def test_soft_cross_entropy_equals_official_two_label_loss(per_sample: bool) -> None:
    torch.manual_seed(0)
    batch, classes = 12, 10
    logits = torch.randn(batch, classes, dtype=torch.float64) * 3
    y_a, y_b = torch.randint(0, classes, (batch,)), torch.randint(0, classes, (batch,))
    lam = torch.rand(batch, dtype=torch.float64) if per_sample else torch.full((batch,), 0.3, dtype=torch.float64)
    target = lam[:, None] * F.one_hot(y_a, classes) + (1 - lam[:, None]) * F.one_hot(y_b, classes)
    ce_a = F.cross_entropy(logits.float(), y_a, reduction="none").double()
    ce_b = F.cross_entropy(logits.float(), y_b, reduction="none").double()
    official = (lam * ce_a + (1 - lam) * ce_b).mean()
    assert soft_cross_entropy(logits, target).item() == pytest.approx(official.item(), rel=1e-6)
    if not per_sample:
        paper = 0.3 * F.cross_entropy(logits.float(), y_a) + 0.7 * F.cross_entropy(logits.float(), y_b)
        assert soft_cross_entropy(logits, target).item() == pytest.approx(paper.item(), rel=1e-6)


def test_soft_cross_entropy_is_float32_for_bf16_logits() -> None:
    logits = torch.randn(4, 5).bfloat16()
    target = torch.eye(5)[:4]
    loss = soft_cross_entropy(logits, target)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(F.cross_entropy(logits.float(), torch.arange(4)).item(), rel=1e-6)
