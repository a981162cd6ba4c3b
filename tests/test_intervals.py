"""Sampling intervals (cutmix_bench.intervals): the binomial interval is Clopper-Pearson's beta quantiles, a
bootstrap replicate is exactly the statistic of its resample (materialised with np.repeat), percentile
intervals agree with scipy's bootstrap and cover at their level, statistics of the same images are resampled
jointly, and every evaluation row that comes from images carries n / ci_low / ci_high."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from cutmix_bench import intervals
from cutmix_bench.cifar_c.metrics import summary_rows
from cutmix_bench.data.synthetic import Synthetic
from cutmix_bench.evaluations import EVALUATIONS, EvalContext
from cutmix_bench.evaluations.clean import classification_metrics, nll_ece_replicates
from cutmix_bench.models import create_model
from cutmix_bench.ood import metrics


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (1, 1), (517, 1000), (2, 10000)])
def test_binomial_is_clopper_pearson(k: int, n: int) -> None:
    reference = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")  # root search
    got = intervals.binomial(k, n)
    assert got["n"] == n
    assert got["ci_low"] == pytest.approx(100 * reference.low, abs=1e-8)
    assert got["ci_high"] == pytest.approx(100 * reference.high, abs=1e-8)
    assert got["ci_low"] <= 100 * k / n <= got["ci_high"]


def test_resample_counts_are_seeded_multinomial_draws() -> None:
    blocks = list(intervals.resample_counts(50, seed=3, resamples=250))
    assert [len(b) for b in blocks] == [100, 100, 50]
    counts = np.concatenate(blocks)
    assert (counts.sum(1) == 50).all() and counts.min() >= 0
    again = np.concatenate(list(intervals.resample_counts(50, seed=3, resamples=250)))
    other = np.concatenate(list(intervals.resample_counts(50, seed=4, resamples=250)))
    assert (counts == again).all() and not (counts == other).all()
    # Each image is drawn Binomial(n, 1/n) times: mean 1, variance 1 - 1/n.
    assert counts.mean() == pytest.approx(1.0) and counts.var() == pytest.approx(0.98, abs=0.05)


def test_mean_replicates_are_means_of_the_resamples() -> None:
    values = np.random.default_rng(0).normal(size=(40, 3))
    replicates = intervals.mean_replicates(values, seed=5, resamples=30)
    counts = next(intervals.resample_counts(40, seed=5, resamples=30))
    for row, weights in zip(replicates, counts):
        np.testing.assert_allclose(row, np.repeat(values, weights, axis=0).mean(0), atol=1e-12)


def test_percentile_interval_of_the_mean_agrees_with_scipy_bootstrap() -> None:
    values = np.random.default_rng(1).exponential(size=400)
    ours = intervals.percentile(intervals.mean_replicates(values, resamples=4000), len(values))
    ref = stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile", random_state=0)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert ours["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=0.05 * width)
    assert ours["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=0.05 * width)


# --- OOD metrics ------------------------------------------------------------------------------------------------

def ood_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2)
    return [("random", rng.normal(1, 1, 300), rng.normal(0, 1, 200)),
            ("ties", rng.integers(0, 6, 120).astype(float), rng.integers(0, 4, 90).astype(float)),
            ("all-equal", np.full(30, 0.3), np.full(20, 0.3)),
            ("separated", rng.random(50) + 2, rng.random(70))]


@pytest.mark.parametrize("row_elements", [metrics.Sweep.ROW_ELEMENTS, 1, 2000], ids=["one-step", "1-row", "steps"])
@pytest.mark.parametrize("name,ins,oods", ood_cases(), ids=[c[0] for c in ood_cases()])
def test_ood_replicates_equal_the_metrics_of_each_resample(name: str, ins: np.ndarray, oods: np.ndarray,
                                                           row_elements: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every resample's replicates = the metrics of the resampled scores, whether its rows are computed in
    one step, one row at a time or in steps of several rows (with a shorter last one)."""
    monkeypatch.setattr(metrics.Sweep, "ROW_ELEMENTS", row_elements)
    ones = metrics.ood_metric_replicates(ins, oods, np.ones((1, len(ins)), int), np.ones((1, len(oods)), int))
    for key, value in metrics.ood_metrics(ins, oods).items():
        assert ones[key][0] == pytest.approx(value, abs=1e-12), key
    in_counts = next(intervals.resample_counts(len(ins), seed=1, resamples=40))
    ood_counts = next(intervals.resample_counts(len(oods), seed=2, resamples=40))
    replicates = metrics.ood_metric_replicates(ins, oods, in_counts, ood_counts)
    for b in range(40):
        direct = metrics.ood_metrics(np.repeat(ins, in_counts[b]), np.repeat(oods, ood_counts[b]))
        for key, value in direct.items():
            assert replicates[key][b] == pytest.approx(value, abs=1e-12), (key, b)


def test_ood_bootstrap_interval_covers_the_true_auroc() -> None:
    """Normal scores N(1, 1) vs N(0, 1): AUROC = Phi(1 / sqrt 2). The 95% percentile interval over 150 fresh
    samples of 150 + 150 scores covers it about 95% of the time."""
    truth, rng, covered = stats.norm.cdf(1 / np.sqrt(2)), np.random.default_rng(3), 0
    for trial in range(150):
        ins, oods = rng.normal(1, 1, 150), rng.normal(0, 1, 150)
        replicates = np.concatenate([metrics.ood_metric_replicates(ins, oods, a, b)["auroc"] for a, b in zip(
            intervals.resample_counts(150, [trial, 0]), intervals.resample_counts(150, [trial, 1]))])
        spread = intervals.percentile(replicates, 150)
        covered += spread["ci_low"] <= truth <= spread["ci_high"]
    assert 0.88 <= covered / 150 <= 0.99, covered  # binomial sd of the coverage at 150 trials: 0.018


# --- clean metrics and means over cells ------------------------------------------------------------------------

def test_nll_and_ece_replicates_are_the_metrics_of_each_resample() -> None:
    generator = torch.Generator().manual_seed(0)
    logits, labels = 3 * torch.randn(300, 7, generator=generator), torch.randint(0, 7, (300,), generator=generator)
    nll, ece = nll_ece_replicates(logits, labels, bins=10, seed=9)
    counts = next(intervals.resample_counts(300, seed=9))
    for b in range(20):
        index = torch.from_numpy(np.repeat(np.arange(300), counts[b]))
        direct = classification_metrics(logits[index], labels[index], bins=10)
        assert nll[b] == pytest.approx(direct["nll"], rel=1e-5) and ece[b] == pytest.approx(direct["ece"], abs=1e-4)


def test_means_over_cells_resample_the_images_jointly() -> None:
    """Two cells that are copies of the clean errors: their relative mean is exactly 0 in every resample, which
    independent resamples of the cells would not give; the mean's interval equals the clean one."""
    wrong = (np.random.default_rng(4).random(500) < 0.3).astype(float) * 100
    replicates = intervals.mean_replicates(np.stack([wrong, wrong, wrong], 1))
    cells = pd.DataFrame({"subset": ["gaussian_noise", "gaussian_noise"], "level": [1, 2],
                          "value": [wrong.mean(), wrong.mean()]})
    rows = {r["metric"]: r for r in summary_rows(cells, wrong.mean(), replicates[:, 1:], replicates[:, 0], 500)}
    assert rows["relative_mean_err"]["ci_low"] == rows["relative_mean_err"]["ci_high"] == 0
    clean = intervals.percentile(replicates[:, 0], 500)
    assert rows["mean_err"]["ci_low"] == clean["ci_low"] and rows["mean_err"]["ci_high"] == clean["ci_high"]
    assert rows["mean_err"]["n"] == 500 and rows["corruption_err"]["n"] == 500


# --- every evaluation's rows ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> EvalContext:
    """An untrained tiny CNN on 16x16 synthetic data: the intervals need logits, not a good model."""
    torch.manual_seed(0)
    data = Synthetic(num_classes=4, train_size=10, test_size=120, size=16, separation=0.5, seed=0)
    folder = tmp_path_factory.mktemp("intervals")
    return EvalContext(model=create_model("tiny", 4, width=8).eval(), dataset=data, test=data.load("test"),
                       device=torch.device("cpu"), batch_size=64, seed=0, run_dir=folder, cache_dir=folder,
                       channels_last=False)


def check_rows(rows: list[dict], n: int) -> None:
    for row in rows:
        assert row["n"] == n, row
        assert row["ci_low"] <= row["ci_high"], row
        if row["metric"] in ("top1_err", "top5_err", "top1_acc", "p_a", "p_b", "p_neither"):
            assert row["ci_low"] <= row["value"] <= row["ci_high"], row  # Clopper-Pearson contains k / n


@pytest.mark.parametrize("name,params,n", [
    ("clean", {}, 120), ("occlusion", {"sizes": [0, 8, 16]}, 120),
    ("adversarial", {"epsilons": [2], "pgd_steps": 2}, 120),
    ("inbetween", {"pairs": 90, "lams": [0, 0.5, 1], "sizes": [0, 8]}, 90)])
def test_every_row_has_an_interval(ctx: EvalContext, name: str, params: dict, n: int) -> None:
    rows = EVALUATIONS.create(name, f"evaluations.{name}", **params).run(ctx)
    check_rows(rows, n)
    if name == "clean":
        byname = {r["metric"]: r for r in rows}
        assert byname["nll"]["ci_high"] - byname["nll"]["ci_low"] > 0


def test_ood_rows_and_set_means_have_intervals(ctx: EvalContext, tmp_path: Path) -> None:
    rows = EVALUATIONS.create("ood", "evaluations.ood", near=[], far=["gaussian", "uniform"], scores=["msp"],
                              max_images=100).run(ctx)
    scored = [r for r in rows if r["metric"] in metrics.METRICS]
    assert len(scored) == 12
    check_rows(scored, 100)
    assert all(r["n_in"] == 100 for r in scored)
    means = {(r["subset"], r["metric"]): r for r in rows if r["metric"].startswith("mean_")}
    assert set(means) == {(g, f"mean_{m}") for g in ("noise", "all") for m in metrics.METRICS}  # synthetic: noise
    for (_, metric), row in means.items():
        per_set = [r["value"] for r in scored if r["metric"] == metric.removeprefix("mean_")]
        assert row["value"] == pytest.approx(np.mean(per_set)) and row["sets"] == 2 and row["n"] == 200
        assert row["ci_low"] <= row["ci_high"]


def test_corruption_rows_have_intervals(ctx: EvalContext) -> None:
    rows = EVALUATIONS.create("corruptions", "evaluations.corruptions", corruptions=["gaussian_noise", "brightness"],
                              severities=[1, 3], workers=1).run(ctx)
    check_rows(rows, 120)
    summaries = [r for r in rows if r["metric"] not in ("top1_err", "clean_err")]
    assert {r["metric"] for r in summaries} >= {"mean_err", "relative_mean_err", "category_err", "severity_err"}
    cells = [r for r in rows if r["metric"] == "top1_err"]
    mean = next(r for r in rows if r["metric"] == "mean_err")
    # The mean of 4 cells of the same images is known better than any one of them.
    assert mean["ci_high"] - mean["ci_low"] < min(r["ci_high"] - r["ci_low"] for r in cells)
