"""A short real-data run: ResNet-8, a 5,000-image CIFAR-100 subset, one epoch on one CPU thread,
through the same path as `cutmix-bench run suites/cifar100.yaml`. It must beat chance (1% top-1
accuracy) by a clear margin; skipped when the shared data is absent."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from cutmix_bench.config import load_suite
from cutmix_bench.runner import run_suite

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_one_short_epoch_on_cifar100_beats_chance(data_dir: Path, tmp_path: Path) -> None:
    root = data_dir / "cifar100"
    if not (root / "train.npz").is_file():
        pytest.skip(f"{root}/train.npz not found")
    suite = load_suite(REPO_ROOT / "suites" / "cifar100.yaml", [
        f"data.root={root}", "data.train_subset=5000", "data.test_subset=5000", "model.name=resnet8",
        "methods={baseline: {}}", "seeds=[0]", "train.epochs=1", "train.batch_size=64", "train.threads=1",
        "train.optimizer.lr=0.05", "train.eval_every=0", "device=cpu", f"output_dir={tmp_path / 'out'}",
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
