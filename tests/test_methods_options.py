"""Options beyond the four methods: label smoothing on any method, timm's Mixup-or-CutMix, Cutout + Mixup.

timm (an optional dependency, installed with the bench extra) is the oracle for the Mixup-or-CutMix sampling
and the smoothed targets: its own `Mixup._params_per_batch/_params_per_elem` and `mixup_target` are run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from test_methods import distinct_batch, own_labels, source_image

from cutmix_bench.errors import BenchError
from cutmix_bench.methods import METHODS, create_method

timm_mixup = pytest.importorskip("timm.data.mixup")


@pytest.mark.parametrize("name", ["baseline", "cutmix", "mixup", "cutout", "mixup_cutmix", "cutout_mixup"])
def test_smoothing_smooths_the_one_hot_targets_before_mixing_with_the_same_draws(name: str) -> None:
    x, y = torch.randn(9, 3, 16, 16, dtype=torch.float64), torch.eye(9, dtype=torch.float64)[:, :9]
    plain_x, plain_y = create_method(name)(x, y, np.random.default_rng(0))
    smooth_x, smooth_y = create_method(name, smoothing=0.1)(x, y, np.random.default_rng(0))
    assert torch.equal(plain_x, smooth_x)  # same draws, same images
    # Mixing is linear with weights summing to 1, so smoothing before == smoothing after the mix.
    assert torch.allclose(smooth_y, plain_y * 0.9 + 0.1 / 9, rtol=0, atol=1e-12)


def test_smoothed_targets_equal_timms_mixup_target() -> None:
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    one_hot = torch.nn.functional.one_hot(labels, 10).double()
    method = create_method("label_smoothing", smoothing=0.2)
    _, ours = method(torch.zeros(6, 3, 4, 4), one_hot, np.random.default_rng(0))
    theirs = timm_mixup.mixup_target(labels, 10, lam=1.0, smoothing=0.2)
    assert torch.allclose(ours.float(), theirs, rtol=0, atol=1e-7)


@pytest.mark.parametrize("smoothing", [-0.1, 1.0, "a"])
def test_bad_smoothing_names_the_key(smoothing: object) -> None:
    with pytest.raises(BenchError, match=r"methods\.cm.*smoothing"):
        create_method("cutmix", "methods.cm", smoothing=smoothing)


# ---------------------------------------------------------------- mixup_cutmix against timm's own sampling

N = 100_000


def timm_draws(mode: str, prob: float, switch: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    mix = timm_mixup.Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=prob, switch_prob=switch, mode=mode,
                           num_classes=10)
    np.random.seed(seed)
    if mode == "elem":
        lam, cut = mix._params_per_elem(N)
        return lam.astype(np.float64), cut
    pairs = [mix._params_per_batch() for _ in range(N)]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def our_draws(mode: str, prob: float, switch: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    method = create_method("mixup_cutmix", mixup_alpha=0.8, cutmix_alpha=1.0, prob=prob, switch_prob=switch, mode=mode)
    rng = np.random.default_rng(seed)
    if mode == "elem":
        params = method.sample(N, 8, 8, rng)
        return params["lam"], params["use_cutmix"]
    params = [method.sample(2, 8, 8, rng) for _ in range(N)]
    return np.array([p["lam"][0] for p in params]), np.array([p["use_cutmix"][0] for p in params])


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_mixup_cutmix_sampling_matches_timm(mode: str) -> None:
    prob, switch = 0.8, 0.3
    ours_lam, ours_cut = our_draws(mode, prob, switch, 1)
    timm_lam, timm_cut = timm_draws(mode, prob, switch, 2)
    for lam in (ours_lam, timm_lam):
        unmixed = lam == 1.0
        assert stats.binomtest(int(unmixed.sum()), N, 1 - prob).pvalue > 1e-4
    # The switch: share of CutMix among the mixed draws, and lam of each branch, ours vs timm's.
    for cut_flag in (True, False):
        ours = ours_lam[(ours_cut == cut_flag) & (ours_lam < 1)]
        theirs = timm_lam[(timm_cut == cut_flag) & (timm_lam < 1)]
        assert stats.ks_2samp(ours, theirs).pvalue > 1e-4
        alpha = 1.0 if cut_flag else 0.8
        assert stats.kstest(ours, stats.beta(alpha, alpha).cdf).pvalue > 1e-4
    table = [[(ours_cut & (ours_lam < 1)).sum(), (~ours_cut & (ours_lam < 1)).sum()],
             [(timm_cut & (timm_lam < 1)).sum(), (~timm_cut & (timm_lam < 1)).sum()]]
    assert stats.chi2_contingency(table).pvalue > 1e-4
    # Power: the two alphas are told apart on these sample sizes.
    mixup_lam = ours_lam[~ours_cut & (ours_lam < 1)]
    assert stats.kstest(mixup_lam, stats.beta(1.0, 1.0).cdf).pvalue < 1e-6


@pytest.mark.parametrize("batch", [1, 7, 16])
def test_mixup_cutmix_elem_mixes_each_sample_by_its_own_rule(batch: int) -> None:
    height, width = 12, 10
    method = create_method("mixup_cutmix", mode="elem", prob=0.9, pairing="perm")
    rng = np.random.default_rng(3)
    for _ in range(20):
        x, y = distinct_batch(batch, height, width), own_labels(batch)
        params = method.sample(batch, height, width, rng)
        mixed, target = method.apply(x, y, params)
        perm = params["perm"]
        for i in range(batch):
            if params["use_cutmix"][i]:
                source = source_image(mixed[i:i + 1])[0]
                assert set(source.unique().tolist()) <= {i, int(perm[i])}
                share = (source != i).double().mean().item() if perm[i] != i else 0.0
                assert target[i, i].item() == pytest.approx(1 - share, abs=1e-12)
            else:
                lam = params["lam"][i]
                assert torch.allclose(mixed[i], lam * x[i] + (1 - lam) * x[perm[i]], rtol=0, atol=1e-9)
                expected = lam + (1 - lam) * (perm[i] == i)
                assert target[i, i].item() == pytest.approx(expected, abs=1e-12)
        assert torch.allclose(target.sum(1), torch.ones(batch, dtype=torch.float64), atol=1e-12)


def test_mixup_cutmix_flip_pairs_as_timm() -> None:
    params = create_method("mixup_cutmix").sample(5, 8, 8, np.random.default_rng(4))
    assert params["perm"].tolist() == [4, 3, 2, 1, 0]


def test_mixup_cutmix_batch_mode_uses_one_rule_per_batch() -> None:
    method = create_method("mixup_cutmix", switch_prob=0.5)
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(40):
        params = method.sample(6, 8, 8, rng)
        assert len(set(params["use_cutmix"].tolist())) == 1 and len(set(params["lam"].tolist())) == 1
        seen.add(bool(params["use_cutmix"][0]))
    assert seen == {True, False}


# ---------------------------------------------------------------- Cutout + Mixup


def test_cutout_mixup_is_mixup_of_the_cutout_batch_with_the_same_draws() -> None:
    x, y = torch.randn(8, 3, 16, 16, dtype=torch.float64) + 10, own_labels(8)
    mixed, target = create_method("cutout_mixup", size=8, alpha=1.0)(x, y, np.random.default_rng(6))
    rng = np.random.default_rng(6)
    holed, same_y = create_method("cutout", size=8)(x, y, rng)
    assert torch.equal(same_y, y)
    expected = create_method("mixup", alpha=1.0)(holed, y, rng)
    assert torch.equal(mixed, expected[0]) and torch.equal(target, expected[1])
    assert (holed == 0).all(1).flatten(1).any(1).all()  # every image got its hole before mixing


@pytest.mark.parametrize("name,params,word", [
    ("mixup_cutmix", {"switch_prob": 1.5}, "switch_prob"),
    ("mixup_cutmix", {"mixup_alpha": 0.0}, "mixup_alpha"),
    ("mixup_cutmix", {"cutmix_alpha": -1.0}, "cutmix_alpha"),
    ("mixup_cutmix", {"pairing": "random"}, "pairing"),
    ("cutout_mixup", {"size": 0}, "size"),
    ("cutout_mixup", {"cutout_prob": 2.0}, "prob"),
    ("label_smoothing", {"smoothing": 1.0}, "smoothing"),
])
def test_bad_option_parameters_name_the_key(name: str, params: dict, word: str) -> None:
    with pytest.raises(BenchError) as info:
        create_method(name, f"methods.{name}", **params)
    assert f"methods.{name}" in str(info.value) and word in str(info.value)


def test_every_method_has_a_reference_and_a_one_line_summary() -> None:
    for name in METHODS.names():
        factory = METHODS.get(name)
        assert factory.reference and "20" in factory.reference, name
        assert factory.__doc__ and factory.__doc__.splitlines()[0].strip(), name
