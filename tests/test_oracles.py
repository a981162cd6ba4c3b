"""Reference oracles: the official code's own arithmetic, re-written here after reading it, against our public
API. Each oracle cites the file (and commit) it follows; none reuses our helpers.

- CutMix: clovaai/CutMix-PyTorch train.py @ 2d8eb68, `rand_bbox` and the lam correction in `train`.
- Cutout: uoguelph-mlrg/Cutout util/cutout.py @ 287f934 (`Cutout.__call__`), applied after Normalize
  (train.py), so the hole is 0 in normalised space.
- Mixup: facebookresearch/mixup-cifar10 train.py @ 1fe8c5e, `mixup_data` and `mixup_criterion`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from cutmix_bench.methods import METHODS
from cutmix_bench.training.module import soft_cross_entropy

SIDE = 32
DRAWS = 200_000


# --- CutMix ------------------------------------------------------------------------------------------------

def official_cutmix(rng: np.random.Generator, draws: int, alpha: float, prob: float) -> dict[str, np.ndarray]:
    """clovaai/CutMix-PyTorch train.py, per batch: `r = np.random.rand(1)`; if `r < cutmix_prob`:
    `lam = np.random.beta(beta, beta)`, `rand_bbox(size, lam)`:
        cut_rat = np.sqrt(1. - lam); cut_w = np.int(W * cut_rat); cut_h = np.int(H * cut_rat)
        cx = np.random.randint(W); cy = np.random.randint(H)
        bbx1 = np.clip(cx - cut_w // 2, 0, W); bbx2 = np.clip(cx + cut_w // 2, 0, W)   (same for y)
    then `lam = 1 - ((bbx2 - bbx1) * (bby2 - bby1) / (W * H))` is the weight of the original label;
    otherwise plain labels (weight 1, no box). Vectorised over `draws` batches (the arithmetic is per batch);
    square images, so W = H = SIDE."""
    applied = rng.random(draws) < prob
    lam = rng.beta(alpha, alpha, draws)
    cut_rat = np.sqrt(1.0 - lam)
    cut_w, cut_h = (SIDE * cut_rat).astype(int), (SIDE * cut_rat).astype(int)  # np.int truncates
    cx, cy = rng.integers(0, SIDE, draws), rng.integers(0, SIDE, draws)
    bbx1, bbx2 = np.clip(cx - cut_w // 2, 0, SIDE), np.clip(cx + cut_w // 2, 0, SIDE)
    bby1, bby2 = np.clip(cy - cut_h // 2, 0, SIDE), np.clip(cy + cut_h // 2, 0, SIDE)
    side_1, side_2 = np.where(applied, bbx2 - bbx1, 0), np.where(applied, bby2 - bby1, 0)
    weight = np.where(applied, 1 - ((bbx2 - bbx1) * (bby2 - bby1) / (SIDE * SIDE)), 1.0)
    return {"height": side_1.astype(float), "width": side_2.astype(float), "weight": weight}


def ours_cutmix(method: object, rng: np.random.Generator, calls: int, batch: int) -> dict[str, np.ndarray]:
    """Box sides from `sample`, `calls` batches of `batch` (batch mode: the first image of each batch)."""
    heights, widths = [], []
    for _ in range(calls):
        y0, y1, x0, x1 = method.sample(batch, SIDE, SIDE, rng)["box"]
        take = slice(0, 1) if method.mode == "batch" else slice(None)
        heights.append((y1 - y0)[take])
        widths.append((x1 - x0)[take])
    height, width = np.concatenate(heights).astype(float), np.concatenate(widths).astype(float)
    return {"height": height, "width": width, "weight": 1 - height * width / SIDE**2}


def test_cutmix_label_weight_is_the_pasted_share_of_pixels() -> None:
    """The bridge for the KS test below: through `__call__`, the original label's weight equals the measured
    share of pixels not taken from the partner, which is 1 - height * width / (H * W) of the sampled box."""
    rng = np.random.default_rng(0)
    for mode in ("batch", "elem"):
        method = METHODS.create("cutmix", "cutmix", alpha=1.0, prob=0.7, mode=mode)
        for _ in range(300):
            x = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, SIDE, SIDE).contiguous()
            y = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
            state = rng.bit_generator.state
            params = method.sample(4, SIDE, SIDE, rng)
            rng.bit_generator.state = state
            mixed, target = method(x, y, rng)
            own = (mixed == x).flatten(1).float().mean(1).double()
            perm = torch.from_numpy(params["perm"])
            own = torch.where(perm == torch.arange(4), torch.ones(4, dtype=torch.float64), own)
            expected = own[:, None] * y + (1 - own[:, None]) * y[perm]
            torch.testing.assert_close(target, expected, rtol=0, atol=1e-12)
            y0, y1, x0, x1 = params["box"]
            changed = perm != torch.arange(4)
            np.testing.assert_allclose((1 - own.numpy())[changed], ((y1 - y0) * (x1 - x0) / SIDE**2)[changed])


@pytest.mark.parametrize("mode,prob", [("batch", 1.0), ("batch", 0.5), ("elem", 1.0)])
def test_cutmix_draws_match_the_official_rand_bbox(mode: str, prob: float) -> None:
    method = METHODS.create("cutmix", "cutmix", alpha=1.0, prob=prob, mode=mode)
    calls, batch = (DRAWS, 2) if mode == "batch" else (20, DRAWS // 20)
    ours = ours_cutmix(method, np.random.default_rng(1), calls, batch)
    reference = official_cutmix(np.random.default_rng(2), DRAWS, 1.0, prob)
    for key in ("weight", "height", "width"):
        p = stats.ks_2samp(ours[key], reference[key]).pvalue
        assert p > 0.01, (key, p, ours[key].mean(), reference[key].mean())
    # Power: a box one pixel larger for odd sides (the former arithmetic) is told apart at once.
    cut = (SIDE * np.sqrt(1 - np.random.default_rng(3).beta(1.0, 1.0, DRAWS))).astype(int)
    centre = np.random.default_rng(4).integers(0, SIDE, DRAWS)
    wrong = np.clip(centre - cut // 2 + cut, 0, SIDE) - np.clip(centre - cut // 2, 0, SIDE)
    if prob == 1.0:
        assert stats.ks_2samp(wrong, reference["height"]).pvalue < 1e-10


# --- Cutout ------------------------------------------------------------------------------------------------

def official_cutout_mask(h: int, w: int, y: int, x: int, length: int) -> np.ndarray:
    """uoguelph-mlrg/Cutout util/cutout.py, one hole at centre (y, x):
        y1 = np.clip(y - length // 2, 0, h); y2 = np.clip(y + length // 2, 0, h)   (same for x)
        mask[y1: y2, x1: x2] = 0.   and the image is multiplied by the mask."""
    mask = np.ones((h, w), np.float32)
    y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
    x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
    mask[y1:y2, x1:x2] = 0.0
    return mask


class Centres:
    """A stand-in generator whose `integers` calls return every (row, column) centre of an h x w image in
    turn, and whose coin always says "apply": so one batch of `Cutout.sample` covers every centre."""

    def __init__(self, h: int, w: int) -> None:
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        self.queue = [rows.ravel(), cols.ravel()]

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        values = self.queue.pop(0)
        assert len(values) == size and values.min() >= low and values.max() < high
        return values

    def random(self, size: int) -> np.ndarray:
        return np.zeros(size)


@pytest.mark.parametrize("length", [1, 2, 5, 8, 15, 16, 17])
@pytest.mark.parametrize("h,w", [(32, 32), (31, 28)])
def test_cutout_holes_equal_the_official_mask_at_every_centre(length: int, h: int, w: int) -> None:
    method = METHODS.create("cutout", "cutout", size=length)
    x = torch.randn(h * w, 3, h, w)
    params = method.sample(h * w, h, w, Centres(h, w))
    out, _ = method.apply(x, torch.zeros(h * w, 2), params)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    masks = torch.from_numpy(np.stack([official_cutout_mask(h, w, y, c, length)
                                       for y, c in zip(rows.ravel(), cols.ravel())]))
    assert torch.equal(out, x * masks[:, None])


# --- Mixup -------------------------------------------------------------------------------------------------

def official_mixup(x: torch.Tensor, y: torch.Tensor, lam: float, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """facebookresearch/mixup-cifar10 train.py `mixup_data` with its draws given:
    `mixed_x = lam * x + (1 - lam) * x[index, :]`, `y_a, y_b = y, y[index]`."""
    return lam * x + (1 - lam) * x[index, :], y, y[index]


def official_mixup_loss(pred: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float) -> torch.Tensor:
    """`mixup_criterion`: lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b), CrossEntropyLoss."""
    return lam * F.cross_entropy(pred, y_a) + (1 - lam) * F.cross_entropy(pred, y_b)


def test_mixup_lambda_is_beta_per_batch_and_perm_a_permutation() -> None:
    """`mixup_data` draws `lam = np.random.beta(alpha, alpha)` once per batch and `index = torch.randperm`."""
    for alpha in (0.2, 1.0):
        method = METHODS.create("mixup", "mixup", alpha=alpha)
        rng = np.random.default_rng(5)
        lams = []
        for _ in range(DRAWS // 2):
            params = method.sample(8, SIDE, SIDE, rng)
            assert (params["lam"] == params["lam"][0]).all()
            lams.append(params["lam"][0])
        assert stats.kstest(lams, stats.beta(alpha, alpha).cdf).pvalue > 0.01
        assert sorted(params["perm"]) == list(range(8))
    perms = np.array([METHODS.create("mixup", "mixup").sample(3, SIDE, SIDE, rng)["perm"] for _ in range(6000)])
    _, counts = np.unique(perms, axis=0, return_counts=True)
    assert len(counts) == 6 and stats.chisquare(counts).pvalue > 0.01  # uniform over the 3! permutations


def test_mixup_inputs_and_loss_equal_the_official_code() -> None:
    method = METHODS.create("mixup", "mixup", alpha=1.0)
    rng = np.random.default_rng(6)
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        x = torch.randn(16, 3, 8, 8, generator=generator, dtype=torch.float64)
        labels = torch.randint(0, 10, (16,), generator=generator)
        state = rng.bit_generator.state
        params = method.sample(16, 8, 8, rng)
        rng.bit_generator.state = state
        mixed, target = method(x, F.one_hot(labels, 10).double(), rng)
        lam, index = float(params["lam"][0]), torch.from_numpy(params["perm"])
        ref_x, y_a, y_b = official_mixup(x, labels, lam, index)
        torch.testing.assert_close(mixed, ref_x, rtol=0, atol=1e-12)
        pred = torch.randn(16, 10, generator=generator, dtype=torch.float64)
        torch.testing.assert_close(soft_cross_entropy(pred, target).double(),
                                   official_mixup_loss(pred.float(), y_a, y_b, lam).double(), rtol=1e-5, atol=1e-6)
