"""AugMix: each operation byte-exact against a transcription of the official augmentations.py, the view equal to
the official cifar.py `aug` (its Normalize(0.5, 0.5) preprocessing), the loss equal to a hand computation of the
official CE + 12 * JSD, the uint8 images recovered exactly from the loader's normalisation, small and odd batches
keeping device and dtype, and a run that trains end to end through the runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps
from test_methods import devices

from cutmix_bench.errors import BenchError
from cutmix_bench.methods import create_method
from cutmix_bench.methods.augmix import ALL_OPS, OPS, AugMix, augment_and_mix, jensen_shannon
from cutmix_bench.rundir import Run
from cutmix_bench.runner import load_data
from cutmix_bench.suite_file import validate
from cutmix_bench.training import train_run
from cutmix_bench.training.loader import normalise
from cutmix_bench.user_mixing import MixCollate

CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

# ---------------------------------------------------------------- oracle: the official augmentations.py, with
# its global np.random calls replaced one for one by a generator argument, its own PIL calls, constants and
# (untyped) signatures.
IMAGE_SIZE = 32


def o_int_parameter(level, maxval):
    return int(level * maxval / 10)


def o_float_parameter(level, maxval):
    return float(level) * maxval / 10.


def o_sample_level(n, rng):
    return rng.uniform(low=0.1, high=n)


def o_autocontrast(pil_img, _, rng):
    return ImageOps.autocontrast(pil_img)


def o_equalize(pil_img, _, rng):
    return ImageOps.equalize(pil_img)


def o_posterize(pil_img, level, rng):
    level = o_int_parameter(o_sample_level(level, rng), 4)
    return ImageOps.posterize(pil_img, 4 - level)


def o_rotate(pil_img, level, rng):
    degrees = o_int_parameter(o_sample_level(level, rng), 30)
    if rng.uniform() > 0.5:
        degrees = -degrees
    return pil_img.rotate(degrees, resample=Image.BILINEAR)


def o_solarize(pil_img, level, rng):
    level = o_int_parameter(o_sample_level(level, rng), 256)
    return ImageOps.solarize(pil_img, 256 - level)


def o_shear_x(pil_img, level, rng):
    level = o_float_parameter(o_sample_level(level, rng), 0.3)
    if rng.uniform() > 0.5:
        level = -level
    return pil_img.transform((IMAGE_SIZE, IMAGE_SIZE), Image.AFFINE, (1, level, 0, 0, 1, 0), resample=Image.BILINEAR)


def o_shear_y(pil_img, level, rng):
    level = o_float_parameter(o_sample_level(level, rng), 0.3)
    if rng.uniform() > 0.5:
        level = -level
    return pil_img.transform((IMAGE_SIZE, IMAGE_SIZE), Image.AFFINE, (1, 0, 0, level, 1, 0), resample=Image.BILINEAR)


def o_translate_x(pil_img, level, rng):
    level = o_int_parameter(o_sample_level(level, rng), IMAGE_SIZE / 3)
    if rng.random() > 0.5:
        level = -level
    return pil_img.transform((IMAGE_SIZE, IMAGE_SIZE), Image.AFFINE, (1, 0, level, 0, 1, 0), resample=Image.BILINEAR)


def o_translate_y(pil_img, level, rng):
    level = o_int_parameter(o_sample_level(level, rng), IMAGE_SIZE / 3)
    if rng.random() > 0.5:
        level = -level
    return pil_img.transform((IMAGE_SIZE, IMAGE_SIZE), Image.AFFINE, (1, 0, 0, 0, 1, level), resample=Image.BILINEAR)


def o_color(pil_img, level, rng):
    level = o_float_parameter(o_sample_level(level, rng), 1.8) + 0.1
    return ImageEnhance.Color(pil_img).enhance(level)


def o_contrast(pil_img, level, rng):
    level = o_float_parameter(o_sample_level(level, rng), 1.8) + 0.1
    return ImageEnhance.Contrast(pil_img).enhance(level)


def o_brightness(pil_img, level, rng):
    level = o_float_parameter(o_sample_level(level, rng), 1.8) + 0.1
    return ImageEnhance.Brightness(pil_img).enhance(level)


def o_sharpness(pil_img, level, rng):
    level = o_float_parameter(o_sample_level(level, rng), 1.8) + 0.1
    return ImageEnhance.Sharpness(pil_img).enhance(level)


O_AUGMENTATIONS = [o_autocontrast, o_equalize, o_posterize, o_rotate, o_solarize, o_shear_x, o_shear_y,
                   o_translate_x, o_translate_y]
O_AUGMENTATIONS_ALL = O_AUGMENTATIONS + [o_color, o_contrast, o_brightness, o_sharpness]


def o_preprocess(image: Image.Image) -> torch.Tensor:
    """The official preprocess: ToTensor, Normalize([0.5] * 3, [0.5] * 3)."""
    tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    return (tensor - 0.5) / 0.5


def o_aug(image, preprocess, rng, aug_list, mixture_width=3, mixture_depth=-1, aug_severity=3):
    """cifar.py `aug`, its np.random calls on the generator (np.random.choice(list) as rng.integers(len))."""
    ws = np.float32(rng.dirichlet([1] * mixture_width))
    m = np.float32(rng.beta(1, 1))
    mix = torch.zeros_like(preprocess(image))
    for i in range(mixture_width):
        image_aug = image.copy()
        depth = mixture_depth if mixture_depth > 0 else rng.integers(1, 4)
        for _ in range(depth):
            op = aug_list[rng.integers(len(aug_list))]
            image_aug = op(image_aug, aug_severity, rng)
        mix += ws[i] * preprocess(image_aug)
    return (1 - m) * preprocess(image) + m * mix


# ---------------------------------------------------------------- test images


def images(count: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """uint8 [N, H, W, 3]: smooth gradients with noise and a bright square (190-255, for solarize) and no black
    (for autocontrast), so that every op changes pixels."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)
    out = []
    for _ in range(count):
        low, high = sorted(rng.uniform(0, 255, 2))
        base = low + (high - low) * (ramp[:, None, None] * rng.uniform(0, 1, 3) + ramp[None, :, None] *
                                     rng.uniform(0, 1, 3)) / 2
        base = base + rng.normal(0, 8, (size, size, 3))
        y, x, side = *rng.integers(0, size - size // 4, 2), size // 4
        base[y:y + side, x:x + side] = rng.uniform(190, 255, 3)
        out.append(np.clip(base, 10, 255).astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize("index", range(len(ALL_OPS)))
def test_every_operation_is_byte_exact_with_the_official_one(index: int) -> None:
    ours, official = ALL_OPS[index], O_AUGMENTATIONS_ALL[index]
    assert ours.__name__ == official.__name__[2:] or index >= len(OPS)
    changed = 0
    for seed, array in enumerate(images(40, seed=index)):
        image = Image.fromarray(array)
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        a, b = np.asarray(ours(image, 3, rng_a)), np.asarray(official(image, 3, rng_b))
        assert np.array_equal(a, b), (ours.__name__, seed)
        assert rng_a.random() == rng_b.random()  # the same number of draws
        changed += not np.array_equal(a, array)
    assert changed >= 20  # the op changes most images (a translation below 1 pixel rounds to 0: 29% of draws)


def test_the_operation_lists_are_the_official_ones() -> None:
    assert [op.__name__ for op in OPS] == [op.__name__[2:] for op in O_AUGMENTATIONS]
    assert len(ALL_OPS) == len(O_AUGMENTATIONS_ALL) == 13


@pytest.mark.parametrize("all_ops", [False, True])
@pytest.mark.parametrize("depth", [-1, 2])
def test_a_view_is_the_official_aug(depth: int, all_ops: bool) -> None:
    """Our [0, 1] view, normalised by (0.5, 0.5), equals cifar.py's aug (which mixes after Normalize)."""
    ops, o_ops = (ALL_OPS, O_AUGMENTATIONS_ALL) if all_ops else (OPS, O_AUGMENTATIONS)
    for seed, array in enumerate(images(25, seed=7)):
        image = Image.fromarray(array)
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        ours = augment_and_mix(image, rng_a, ops, 3, depth, 3, 1.0)
        official = o_aug(image, o_preprocess, rng_b, o_ops, mixture_depth=depth)
        assert torch.allclose((torch.from_numpy(ours).permute(2, 0, 1) - 0.5) / 0.5, official, atol=2e-6)
        assert rng_a.random() == rng_b.random()


def test_the_views_start_from_the_exact_uint8_images_of_the_loader() -> None:
    raw = torch.from_numpy(images(6, seed=3))
    mean, std = torch.tensor(CIFAR100_MEAN), torch.tensor(CIFAR100_STD)
    x = normalise(raw, mean, std)  # what the loader yields
    method = create_method("augmix")
    method.set_normalisation(CIFAR100_MEAN, CIFAR100_STD)
    views = method.views(x, np.random.default_rng(4), 2)
    rng = np.random.default_rng(4)
    for i, array in enumerate(raw.numpy()):
        for v in range(2):
            expected = torch.from_numpy(augment_and_mix(Image.fromarray(array), rng, OPS, 3, -1, 3, 1.0))
            expected = ((expected - mean) / std).permute(2, 0, 1)
            assert torch.allclose(views[v][i], expected, atol=1e-6)


def test_jensen_shannon_is_the_official_formula_by_hand() -> None:
    logits = [np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 30.0]]), np.array([[1.0, 1.0, 1.0], [0.0, 40.0, 0.0]]),
              np.array([[-3.0, 2.0, 0.0], [5.0, 0.0, 0.0]])]
    probs = [np.exp(v) / np.exp(v).sum(1, keepdims=True) for v in logits]
    mixture = np.clip(sum(probs) / 3, 1e-7, 1)
    # KL(p || M) = sum_k p_k (log p_k - log M_k), averaged over the batch ('batchmean'), 0 log 0 = 0
    kl = [np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - np.log(mixture)), 0).sum(1).mean() for p in probs]
    expected = sum(kl) / 3
    got = jensen_shannon(*(torch.tensor(v, dtype=torch.float32) for v in logits)).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert 0 < got < np.log(3)
    same = torch.tensor(logits[0], dtype=torch.float32)
    assert jensen_shannon(same, same, same).item() == pytest.approx(0.0, abs=1e-6)


def test_the_loss_is_cross_entropy_on_clean_plus_12_jsd_in_one_forward() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    calls: list[int] = []
    model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    method = create_method("augmix", smoothing=0.1)
    method.set_normalisation((0.5,) * 3, (0.25,) * 3)
    x = normalise(torch.from_numpy(images(4, seed=5, size=8)), torch.full((3,), 0.5), torch.full((3,), 0.25))
    y = F.one_hot(torch.tensor([0, 3, 1, 4]), 5).float()
    loss, logits = method.loss(model, x, y, np.random.default_rng(6))
    assert calls == [12]  # the clean batch and its two views, concatenated as in cifar.py
    aug1, aug2 = method.views(x, np.random.default_rng(6), 2)
    with torch.no_grad():
        out = [model(v).double().numpy() for v in (x, aug1, aug2)]
    assert np.allclose(logits.detach().double().numpy(), out[0], atol=1e-6)
    target = y.double().numpy() * 0.9 + 0.1 / 5
    log_p = [o - np.log(np.exp(o).sum(1, keepdims=True)) for o in out]
    ce = -(target * log_p[0]).sum(1).mean()
    probs = [np.exp(v) for v in log_p]
    log_m = np.log(np.clip(sum(probs) / 3, 1e-7, 1))
    jsd = sum((p * (np.log(p) - log_m)).sum(1).mean() for p in probs) / 3
    assert loss.item() == pytest.approx(ce + 12 * jsd, rel=1e-5)
    loss.backward()  # differentiable through all three views


def test_without_jsd_the_model_sees_one_view_and_plain_cross_entropy() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    method = create_method("augmix", jsd=False)
    method.set_normalisation((0.5,) * 3, (0.25,) * 3)
    x = normalise(torch.from_numpy(images(3, seed=8, size=8)), torch.full((3,), 0.5), torch.full((3,), 0.25))
    y = F.one_hot(torch.tensor([0, 3, 1]), 5).float()
    loss, logits = method.loss(model, x, y, np.random.default_rng(9))
    view = method.views(x, np.random.default_rng(9), 1)[0]
    assert torch.allclose(logits, model(view)) and not torch.allclose(view, x)
    assert loss.item() == pytest.approx(F.cross_entropy(model(view), y.argmax(1)).item(), rel=1e-6)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 32, 32), (3, 31, 27), (5, 17, 32)])
def test_small_and_odd_batches_keep_device_dtype_and_inputs(shape: tuple, dtype: torch.dtype, device: str) -> None:
    batch, height, width = shape
    mean, std = torch.tensor(CIFAR100_MEAN), torch.tensor(CIFAR100_STD)
    raw = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (batch, height, width, 3), dtype=np.uint8))
    x = normalise(raw, mean, std).to(device=device, dtype=dtype)
    y = F.one_hot(torch.arange(batch) % 4, 4).to(device=device, dtype=dtype)
    before = x.clone(), y.clone()
    method = create_method("augmix")
    method.set_normalisation(CIFAR100_MEAN, CIFAR100_STD)
    views = method.views(x, np.random.default_rng(1), 2)
    for view in views:
        assert view.shape == x.shape and view.dtype == dtype and view.device == x.device
        pixels = (view.double().cpu() * std[:, None, None].double() + mean[:, None, None].double())
        assert pixels.min() >= -0.02 and pixels.max() <= 1.02  # convex mixes of images stay in [0, 1]
    mixed, target = method(x, y, np.random.default_rng(1))
    assert (mixed.dtype, target.dtype, mixed.device) == (dtype, dtype, x.device) and torch.equal(target, y)
    assert torch.equal(x, before[0]) and torch.equal(y, before[1])


def test_misuse_is_reported_clearly() -> None:
    with pytest.raises(RuntimeError, match="set_normalisation"):
        create_method("augmix")(torch.zeros(1, 3, 8, 8), torch.eye(1), np.random.default_rng(0))
    with pytest.raises(ValueError, match="own loss"):
        MixCollate("augmix", num_classes=4)
    for params, word in (({"depth": 0}, "depth"), ({"width": 0}, "width"), ({"severity": 1.5}, "severity"),
                         ({"alpha": 0}, "alpha"), ({"smoothing": 1.0}, "smoothing")):
        with pytest.raises(BenchError, match=f"methods.a.*{word}"):
            create_method("augmix", "methods.a", **params)


def test_a_run_trains_end_to_end_through_the_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner hands AugMix the data's normalisation and trains every step with its own loss."""
    calls: list[int] = []
    original = AugMix.loss
    monkeypatch.setattr(AugMix, "loss", lambda self, model, x, y, rng: calls.append(len(x)) or
                        original(self, model, x, y, rng))
    suite = validate({
        "name": "augmix",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 64, "test_size": 32, "size": 16}},
        "model": {"name": "resnet8", "params": {"width": 4}},
        "train": {"epochs": 1, "batch_size": 32, "threads": 1},
        "methods": {"augmix": {}},
        "seeds": [0],
        "device": "cpu",
    })
    rows = train_run(suite, Run("augmix", 0), load_data(suite), torch.device("cpu"), tmp_path / "run")
    final = next(r["value"] for r in rows if r["metric"] == "final_train_loss")
    assert np.isfinite(final) and final > 0 and calls == [32, 32]


def test_the_training_inputs_figure_shows_augmix_and_leaves_out_the_methods_that_need_the_model(
        tmp_path: Path) -> None:
    from PIL import Image as PILImage

    from cutmix_bench.finish import draw_training_inputs

    suite = validate({
        "name": "figure",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 16, "test_size": 8}},
        "model": {"name": "resnet8", "params": {"width": 4}},
        "train": {"epochs": 1, "batch_size": 8},
        "methods": {"cutmix": {}, "augmix": {}, "manifold_mixup": {}, "puzzlemix": {}},
        "seeds": [0],
        "device": "cpu",
    })
    draw_training_inputs(suite, load_data(suite), tmp_path)
    with PILImage.open(tmp_path / "figures" / "training_inputs.png") as image:  # 2 rows: cutmix and augmix
        assert image.size == (round(6 * 1.25 * 120), round(2 * 1.55 * 120))
