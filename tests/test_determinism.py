"""Bit-for-bit reproducibility, as docs/reproducibility.md states it: the same suite and seed, trained twice in
two fresh processes on one host (one thread each, as the runner's workers), gives bitwise-equal weights, loss
curves and evaluation results. Across hosts (another CPU's kernels), thread counts or GPUs it need not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from helpers import REPO, tiny_suite

VOLATILE = ["seconds"]  # log.csv's wall-clock column; everything else must match to the bit


def train_in_a_fresh_process(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    suite = tiny_suite(tmp_path / name, model={"name": "resnet8", "params": {"width": 4}},
                       methods={"cutmix": {"alpha": 1.0}}, train={"epochs": 2, "batch_size": 64, "threads": 1,
                                                                   "optimizer": {"lr": 0.05}})
    done = subprocess.run([sys.executable, "-m", "cutmix_bench", "run", str(suite), "--quiet"], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp_path / name / "out" / "runs" / "cutmix-s0"


def test_the_same_seed_trains_to_the_same_bits_in_two_processes(tmp_path: Path) -> None:
    first, second = (train_in_a_fresh_process(tmp_path, name) for name in ("a", "b"))
    weights = [torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
               for run in (first, second)]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    logs = [pd.read_csv(run / "log.csv").drop(columns=VOLATILE) for run in (first, second)]
    pd.testing.assert_frame_equal(logs[0], logs[1], check_exact=True)
    assert (first / "eval" / "clean.csv").read_bytes() == (second / "eval" / "clean.csv").read_bytes()
