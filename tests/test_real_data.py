"""A short real-data run: ResNet-8, a 5,000-image CIFAR-100 subset, one epoch on one CPU thread,
through the same path as `cutmix-bench run suites/cifar100.yaml`. It must beat chance (1% top-1
accuracy) by a clear margin; skipped when the shared data is absent."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from cutmix_bench.runner import run_suite
from cutmix_bench.suite_file import load_suite

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_one_short_epoch_on_cifar100_beats_chance(data_dir: Path, tmp_path: Path) -> None:
    root = data_dir / "cifar100"
    if not (root / "train.npz").is_file():
        pytest.skip(f"{root}/train.npz not found")
    suite = load_suite(REPO_ROOT / "suites" / "cifar100.yaml", [
        f"data.root={root}", "data.train_subset=5000", "data.test_subset=5000", "model.name=resnet8",
        "methods={baseline: {}}", "seeds=[0]", "train.epochs=1", "train.batch_size=64", "train.threads=1",
        "train.optimizer.lr=0.05", "train.eval_every=0", "device=cpu", "evaluations={clean: {}}",
        f"output_dir={tmp_path / 'out'}",
    ])
    out, failures = run_suite(suite)
    assert failures == {}
    results = pd.read_csv(out / "results.csv")
    clean = results[results["evaluation"] == "clean"].set_index("metric")["value"]
    # Measured: 94.8-95.6% (about 5% accuracy, 5x chance; 1 sd of the estimate is 0.3 points).
    assert clean["top1_err"] < 97.0, f"top-1 error {clean['top1_err']:.1f}% is too close to chance (99%)"
    assert clean["top5_err"] < clean["top1_err"]
    log = pd.read_csv(out / "runs" / "baseline-s0" / "log.csv")
    assert len(log) == 1 and log["train_loss"].iloc[0] < math.log(100)  # below the loss of a uniform guess
    assert (out / "report.md").is_file()


def test_shortened_cifar100_suite_reports_every_evaluation(data_dir: Path, tmp_path: Path) -> None:
    """The CIFAR-100 suite with its default evaluations, shortened: corruption tables and figure, OOD
    with CIFAR-10 and Tiny ImageNet as near sets and the noise sets in their own group, occlusion, in-between
    and adversarial sections, for both methods."""
    root = data_dir / "cifar100"
    if not (root / "train.npz").is_file() or not (data_dir / "tinyimagenet32" / "test.npz").is_file():
        pytest.skip(f"{root}/train.npz or tinyimagenet32/test.npz not found")
    suite = load_suite(REPO_ROOT / "suites" / "cifar100.yaml", [
        f"data.root={root}", "data.train_subset=2000", "data.test_subset=500", "model.name=resnet8",
        "methods={baseline: {}, cutmix: {alpha: 1.0, prob: 0.5}}", "seeds=[0]", "train.epochs=1",
        "train.threads=1", "train.eval_every=0", "device=cpu", "evaluations.ood.max_images=500",
        f"output_dir={tmp_path / 'out'}",
    ])
    out, failures = run_suite(suite)
    assert failures == {}
    report = (out / "report.md").read_text()
    for heading in ("## Corruption robustness", "## Occlusion", "## In-between class", "## Adversarial",
                    "## Out-of-distribution detection", "### Paper protocol", "### OpenOOD", "### Per-set"):
        assert heading in report, heading
    for figure in ("corruption_severity", "occlusion", "inbetween", "adversarial", "ood_roc"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 0, figure
    results = pd.read_csv(out / "results.csv")
    ood = results[(results["evaluation"] == "ood") & (results["metric"] == "auroc")]
    assert set(ood.loc[ood["group"] == "near", "subset"]) == {"cifar10", "tinyimagenet"}
    assert {"gaussian", "uniform"} <= set(ood.loc[ood["group"] == "noise", "subset"])
    assert not {"gaussian", "uniform"} & set(ood.loc[ood["group"] == "far", "subset"])  # never reported as far
    cells = results[(results["evaluation"] == "corruptions") & (results["metric"] == "top1_err")]
    assert len(cells) == 2 * 19 * 5 and cells["value"].between(0, 100).all()
