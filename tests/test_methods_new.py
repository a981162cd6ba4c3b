"""ResizeMix, FMix, SaliencyMix: label weight = exact pixel share, official sampling (KS vs ported oracles),
every input-space method on batch size 1 and odd sizes keeping device and dtype."""

from __future__ import annotations

import inspect
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage, stats
from test_methods import devices, distinct_batch, own_labels, source_image

from cutmix_bench.methods import METHODS, create_method
from cutmix_bench.methods.saliencymix import spectral_residual

INPUT_SPACE = [n for n in METHODS.names() if METHODS.get(n).input_space]
# Each method with its default, and per sample where it has a 'mode'.
VARIANTS = [(n, {}) for n in INPUT_SPACE] + [
    (n, {"mode": "elem"}) for n in INPUT_SPACE if "mode" in inspect.signature(METHODS.get(n)).parameters]


# ---------------------------------------------------------------- every input-space method


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 31, 27), (8, 17, 32)])
@pytest.mark.parametrize("name,params", VARIANTS)
def test_every_method_on_small_and_odd_batches_keeps_device_dtype_and_inputs(name: str, params: dict, shape: tuple,
                                                                             dtype: torch.dtype, device: str) -> None:
    batch, height, width = shape
    x = torch.randn(batch, 3, height, width).to(device=device, dtype=dtype)
    y = F.one_hot(torch.arange(batch) % 4, 4).to(device=device, dtype=dtype)
    before = x.clone(), y.clone()
    mixed, target = create_method(name, **params)(x, y, np.random.default_rng(0))
    assert mixed.shape == x.shape and target.shape == y.shape
    assert (mixed.dtype, target.dtype, mixed.device, target.device) == (dtype, dtype, x.device, y.device)
    assert torch.equal(x, before[0]) and torch.equal(y, before[1])
    tolerance = 2e-2 if dtype == torch.bfloat16 else 1e-6
    assert torch.allclose(target.sum(1).double(), torch.ones(batch, dtype=torch.float64, device=device), atol=tolerance)


def pixel_shares(mixed: torch.Tensor, target: torch.Tensor) -> None:
    """Each output pixel names its source image: the original label weight is the share of own pixels."""
    source = source_image(mixed)
    for i in range(len(mixed)):
        own = (source[i] == i).double().mean().item()
        if set(source[i].unique().tolist()) <= {i}:
            assert target[i, i].item() == pytest.approx(1.0, abs=1e-12)
        else:
            assert target[i, i].item() == pytest.approx(own, abs=1e-12)
            others = set(source[i].unique().tolist()) - {i}
            assert len(others) == 1 and target[i, others.pop()].item() == pytest.approx(1 - own, abs=1e-12)


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("name", ["fmix", "saliencymix"])
@pytest.mark.parametrize("batch,height,width", [(7, 32, 32), (4, 19, 26), (1, 32, 32)])
def test_label_weight_is_the_true_pixel_share(name: str, mode: str, batch: int, height: int, width: int) -> None:
    method = create_method(name, mode=mode)
    rng = np.random.default_rng(1)
    for _ in range(15):
        pixel_shares(*method(distinct_batch(batch, height, width), own_labels(batch), rng))


# ---------------------------------------------------------------- ResizeMix


@pytest.mark.parametrize("mode", ["batch", "elem"])
@pytest.mark.parametrize("batch,height,width", [(6, 32, 32), (3, 23, 30), (1, 32, 32)])
def test_resizemix_pastes_the_nearest_resized_partner_and_weights_by_area(mode: str, batch: int, height: int,
                                                                          width: int) -> None:
    method = create_method("resizemix", mode=mode)
    rng = np.random.default_rng(2)
    for _ in range(15):
        x, y = torch.randn(batch, 3, height, width, dtype=torch.float64), own_labels(batch)
        params = method.sample(batch, height, width, rng)
        mixed, target = method.apply(x, y, params)
        outside = torch.ones(batch, height, width, dtype=torch.bool)
        for i in range(batch):
            y0, y1, x0, x1 = (int(b[i]) for b in params["box"])
            partner = x[params["perm"][i]]
            if y1 > y0 and x1 > x0:
                expected = F.interpolate(partner[None], (y1 - y0, x1 - x0), mode="nearest")[0]
                assert torch.equal(mixed[i, :, y0:y1, x0:x1], expected)
            outside[i, y0:y1, x0:x1] = False
            share = (y1 - y0) * (x1 - x0) / (height * width)
            weight = 1 - share + share * (params["perm"][i] == i)
            assert target[i, i].item() == pytest.approx(weight, abs=1e-12)
        assert torch.equal(mixed.permute(1, 0, 2, 3)[:, outside], x.permute(1, 0, 2, 3)[:, outside])


def openmixup_tau_and_box(n: int, height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Oracle: OpenMixup resizemix's tao ~ np.random.uniform(0.1, 0.8) and rand_bbox_tao (cut = int(W * tao),
    centre np.random.randint, np.clip(c -+ cut // 2)), ported as read; returns (tau, clipped box height)."""
    np.random.seed(seed)
    taus, heights = [], []
    for _ in range(n):
        tao = np.random.uniform(0.1, 0.8)
        cut_w, cut_h = int(width * tao), int(height * tao)
        np.random.randint(width)
        cy = np.random.randint(height)
        taus.append(tao)
        heights.append(np.clip(cy + cut_h // 2, 0, height) - np.clip(cy - cut_h // 2, 0, height))
        del cut_w
    return np.array(taus), np.array(heights)


def test_resizemix_sampling_matches_openmixup() -> None:
    n, size = 100_000, 32
    params = create_method("resizemix", mode="elem").sample(n, size, size, np.random.default_rng(3))
    tau_oracle, height_oracle = openmixup_tau_and_box(n, size, size, 4)
    assert stats.ks_2samp(params["tau"], tau_oracle).pvalue > 1e-4
    y0, y1, _, _ = params["box"]
    assert stats.ks_2samp(y1 - y0, height_oracle).pvalue > 1e-4
    assert stats.kstest(params["tau"], stats.uniform(0.2, 0.6).cdf).pvalue < 1e-6  # power


# ---------------------------------------------------------------- FMix vs the official sampling


def official_fmix_mask(alpha: float, decay_power: float, shape: tuple[int, int]) -> tuple[float, np.ndarray]:
    """Oracle: ecs-vlc/FMix fmix.py sample_mask (fftfreqnd, get_spectrum, make_low_freq_image, binarise_mask
    with max_soft=0), ported line by line as read, with its global NumPy / `random` generators."""
    h, w = shape
    fy = np.expand_dims(np.fft.fftfreq(h), -1)
    fx = np.fft.fftfreq(w)[: w // 2 + 2] if w % 2 == 1 else np.fft.fftfreq(w)[: w // 2 + 1]
    freqs = np.sqrt(fx * fx + fy * fy)
    lam = np.random.beta(alpha, alpha)
    scale = np.ones(1) / (np.maximum(freqs, np.array([1.0 / max(w, h, 0)])) ** decay_power)
    param = np.random.randn(*([1] + list(freqs.shape) + [2]))
    spectrum = np.expand_dims(scale, -1)[None, :] * param
    mask = np.fft.irfftn(spectrum.reshape(1, *shape[:-1], -1), shape, axes=(-2, -1))[:1, :h, :w]  # axes: NumPy 2
    mask = mask - mask.min()
    mask = mask / mask.max()
    idx = mask.reshape(-1).argsort()[::-1]
    mask = mask.reshape(-1)
    num = math.ceil(lam * mask.size) if random.random() > 0.5 else math.floor(lam * mask.size)
    mask[idx[:num]] = 1
    mask[idx[num:]] = 0
    return lam, mask.reshape(h, w)


def boundary_density(masks: np.ndarray) -> np.ndarray:
    """Share of horizontally and vertically adjacent pixel pairs that differ: a statistic of the mask's spectrum."""
    masks = masks.astype(bool)
    changes = (masks[:, 1:] != masks[:, :-1]).sum((1, 2)) + (masks[:, :, 1:] != masks[:, :, :-1]).sum((1, 2))
    h, w = masks.shape[1:]
    return changes / ((h - 1) * w + h * (w - 1))


def test_fmix_masks_match_the_official_sampling() -> None:
    """An odd width exercises the official fftfreqnd branch w // 2 + 2."""
    n = 100_000
    shape = h, w = 16, 15
    ours = create_method("fmix", mode="elem").sample(n, h, w, np.random.default_rng(5))
    np.random.seed(6)
    random.seed(6)
    official = [official_fmix_mask(1.0, 3.0, shape) for _ in range(n)]
    official_masks = np.stack([m for _, m in official])
    assert stats.ks_2samp(ours["lam"], [lam for lam, _ in official]).pvalue > 1e-4
    assert stats.ks_2samp(ours["mask"].mean((1, 2)), official_masks.mean((1, 2))).pvalue > 1e-4
    ours_density = boundary_density(ours["mask"])
    assert stats.ks_2samp(ours_density, boundary_density(official_masks)).pvalue > 1e-4
    # Power: decay power 2 gives rougher masks, which the same statistic tells apart.
    rough = create_method("fmix", mode="elem", decay_power=2.0).sample(20_000, h, w, np.random.default_rng(7))
    assert stats.ks_2samp(boundary_density(rough["mask"]), ours_density).pvalue < 1e-6


def test_fmix_mask_share_is_ceil_or_floor_of_lam() -> None:
    params = create_method("fmix", mode="elem").sample(5000, 32, 32, np.random.default_rng(8))
    count = params["mask"].sum((1, 2))
    lam = params["lam"]
    assert np.all((count == np.ceil(lam * 1024)) | (count == np.floor(lam * 1024)))
    up = count == np.ceil(lam * 1024)
    assert stats.binomtest(int(up.sum()), 5000, 0.5).pvalue > 1e-4


# ---------------------------------------------------------------- SaliencyMix


def scipy_spectral_residual(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Independent reference of the same saliency with NumPy FFT and SciPy filters (edge padding = 'nearest')."""
    spectrum = np.fft.fft2(image.mean(0))
    log_amp = np.log(np.abs(spectrum) + 1e-8)
    residual = log_amp - ndimage.uniform_filter(log_amp, 3, mode="nearest")
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    return ndimage.gaussian_filter(saliency, sigma, mode="nearest", truncate=3.0)


def test_spectral_residual_matches_a_scipy_implementation() -> None:
    images = np.random.default_rng(9).standard_normal((6, 3, 32, 28))
    ours = spectral_residual(torch.from_numpy(images)).double().numpy()
    for image, got in zip(images, ours):
        expected = scipy_spectral_residual(image)
        assert np.allclose(got, expected, rtol=1e-3, atol=1e-3 * expected.max())
        assert got.argmax() == expected.argmax()


def test_saliencymix_box_is_centred_on_the_partner_peak_and_pasted_at_the_same_place() -> None:
    height = width = 32
    x = torch.randn(5, 3, height, width, dtype=torch.float64) * 0.05
    peaks = [(4, 25), (28, 3), (16, 16), (9, 9), (22, 12)]
    for i, (r, c) in enumerate(peaks):
        x[i, :, r - 1:r + 2, c - 1:c + 2] += 4.0  # a small bright blob: the salient spot
    method = create_method("saliencymix", mode="elem")
    rng = np.random.default_rng(10)
    for _ in range(10):
        params = method.sample(5, height, width, rng)
        mixed, _ = method.apply(x, own_labels(5), params)
        for i in range(5):
            j = int(params["perm"][i])
            peak = spectral_residual(x[j:j + 1])[0].argmax().item()
            assert abs(peak // width - peaks[j][0]) <= 1 and abs(peak % width - peaks[j][1]) <= 1
            half_h, half_w = params["side"][0][i] // 2, params["side"][1][i] // 2
            cy, cx = peak // width, peak % width
            y0, y1 = max(0, cy - half_h), min(height, cy + half_h)
            x0, x1 = max(0, cx - half_w), min(width, cx + half_w)
            assert torch.equal(mixed[i, :, y0:y1, x0:x1], x[j, :, y0:y1, x0:x1])


def test_saliencymix_batch_mode_uses_one_box_from_the_first_partner() -> None:
    x = distinct_batch(6, 32, 32)
    params = create_method("saliencymix", mode="batch").sample(6, 32, 32, np.random.default_rng(11))
    mixed, _ = create_method("saliencymix").apply(x, own_labels(6), params)
    source = source_image(mixed)
    boxes = {tuple((source[i] != i).nonzero().amin(0).tolist() + (source[i] != i).nonzero().amax(0).tolist())
             for i in range(6) if params["perm"][i] != i and (source[i] != i).any()}
    assert len(boxes) <= 1


def official_fmix_loss(logits: torch.Tensor, y: torch.Tensor, index: torch.Tensor, lam: float,
                       reformulate: bool) -> torch.Tensor:
    """Oracle: ecs-vlc/FMix implementations/torchbearer_implementation.py fmix_loss (train=True), transcribed."""
    if not reformulate:
        return F.cross_entropy(logits, y) * lam + F.cross_entropy(logits, y[index]) * (1 - lam)
    return F.cross_entropy(logits, y)


@pytest.mark.parametrize("reformulate", [False, True])
def test_fmix_loss_matches_the_official_loss(reformulate: bool) -> None:
    """Our step's loss (soft cross-entropy on the method's targets) equals the official fmix_loss on the same mixed
    batch, with the official lam = the mask's share (exact here: ours weights by the share). With reformulate the
    official trains each mixed image on its own label alone; lam is then drawn from Beta(alpha+1, alpha)."""
    from cutmix_bench.training.module import soft_cross_entropy

    method = create_method("fmix", reformulate=reformulate)
    gen = torch.Generator().manual_seed(0)
    x, labels = torch.randn(8, 3, 16, 16, generator=gen), torch.arange(8) % 5
    params = method.sample(8, 16, 16, np.random.default_rng(3))
    mixed_x, target = method.apply(x, F.one_hot(labels, 5).float(), params)
    keep = torch.from_numpy(params["mask"][:, None]).float()
    index = torch.from_numpy(params["perm"])
    torch.testing.assert_close(mixed_x, keep * x + (1 - keep) * x[index])  # the official x1 + x2
    logits = torch.randn(8, 5, generator=gen)
    share = float(params["mask"][0].mean())
    torch.testing.assert_close(soft_cross_entropy(logits, target),
                               official_fmix_loss(logits, labels, index, share, reformulate))
    draws = create_method("fmix", mode="elem", reformulate=reformulate).sample(4000, 8, 8, np.random.default_rng(4))
    expected_mean = (1 + reformulate) / (2 + reformulate)  # Beta(1+r, 1): its mean; the mask share tracks lam
    assert abs(draws["mask"].mean() - expected_mean) < 0.02


def timm_rand_bbox(img_shape: tuple[int, int], lam: float, cy: int, cx: int) -> tuple[int, int, int, int]:
    """Oracle: huggingface/pytorch-image-models timm/data/mixup.py rand_bbox (margin 0), transcribed from v1.0.28 /
    main at aa4b5850, with its centre draws given."""
    ratio = np.sqrt(1 - lam)
    img_h, img_w = img_shape[-2:]
    cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
    yl, yh = np.clip(cy - cut_h // 2, 0, img_h), np.clip(cy + cut_h // 2, 0, img_h)
    xl, xh = np.clip(cx - cut_w // 2, 0, img_w), np.clip(cx + cut_w // 2, 0, img_w)
    return int(yl), int(yh), int(xl), int(xh)


def test_mixup_cutmix_box_is_timms_rand_bbox_on_odd_sides() -> None:
    """Our CutMix box (methods.base.cutmix_boxes, used by mixup_cutmix) equals timm's rand_bbox for the same lam
    and centre, odd cut sides and odd image sizes included."""
    from cutmix_bench.methods.base import cutmix_boxes

    rng = np.random.default_rng(0)
    odd_sides = 0
    for _ in range(2000):
        height, width = int(rng.integers(5, 40)), int(rng.integers(5, 40))
        lam, cy, cx = float(rng.random()), int(rng.integers(height)), int(rng.integers(width))
        ours = cutmix_boxes(np.array([lam]), np.array([cy]), np.array([cx]), np.array([True]), 1, height, width)
        assert tuple(int(b[0]) for b in ours) == timm_rand_bbox((height, width), lam, cy, cx)
        odd_sides += int(height * np.sqrt(1 - lam)) % 2
    assert odd_sides > 500


def official_manifold_mixup_loss(output: torch.Tensor, reweighted_target: torch.Tensor) -> torch.Tensor:
    """Oracle: vikasverma1077/manifold_mixup main.py (and snu-mllab/PuzzleMix main.py), transcribed:
    `bce_loss = nn.BCELoss()`, `softmax = nn.Softmax(dim=1)`, `loss = bce_loss(softmax(output), reweighted_target)`."""
    bce_loss, softmax = torch.nn.BCELoss(), torch.nn.Softmax(dim=1)
    return bce_loss(softmax(output), reweighted_target)


@pytest.mark.parametrize("name", ["manifold_mixup", "puzzlemix"])
def test_loss_bce_is_the_official_objective_and_soft_ce_the_default(name: str) -> None:
    """`loss: bce` trains the step with the official BCE on the softmax (through the trainer's `criterion` hook,
    smoothing included); the default keeps the soft cross-entropy, which is a different objective."""
    from cutmix_bench.training.module import soft_cross_entropy

    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 5, generator=gen)
    target = torch.softmax(torch.randn(6, 5, generator=gen), dim=1)  # mixed targets: rows sum to 1
    bce = create_method(name, loss="bce")
    official = official_manifold_mixup_loss(logits, target)
    torch.testing.assert_close(bce.criterion(logits, target), official)
    torch.testing.assert_close(create_method(name, loss="bce", smoothing=0.1).criterion(logits, target), official)
    assert getattr(create_method(name), "criterion", None) is None  # the trainer's soft cross-entropy
    assert abs(float(soft_cross_entropy(logits, target)) - float(official)) > 0.1
    with pytest.raises(Exception, match="loss must be 'soft_ce'"):
        create_method(name, loss="ce")
