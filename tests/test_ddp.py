"""Multi-device training of one run (train.devices, docs/scaleout.md): the global batch is split evenly over
the ranks, rank r taking rows r::N of every batch of the epoch's one seeded permutation (augmentation draws
included), so that N ranks see exactly what one device sees; gradient averaging over equal shards is the full
batch's mean gradient, so two gloo processes on the CPU train a BatchNorm-free model to the weights one
process reaches (up to float rounding); the log is written once, and evaluation runs once, after fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cutmix_bench.data import Split
from cutmix_bench.errors import BenchError
from cutmix_bench.executing import execute_run
from cutmix_bench.models import MODELS
from cutmix_bench.rundir import Run, RunDir
from cutmix_bench.suite_data import load_data
from cutmix_bench.suite_file import validate
from cutmix_bench.training.loader import BatchLoader

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@MODELS.register("test-no-batchnorm")
def no_batchnorm(num_classes: int, width: int = 8) -> nn.Module:
    """Per-rank BatchNorm statistics differ from the full batch's on CPUs (torch has no SyncBatchNorm there)."""
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, num_classes))


def indexed_split(n: int) -> Split:
    """Label i for sample i, so the labels of a batch name its samples."""
    x = np.random.default_rng(0).integers(0, 256, (n, 12, 12, 3), dtype=np.uint8)
    return Split(torch.from_numpy(x), torch.arange(n))


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_split_every_global_batch_of_the_one_device_epoch(world: int) -> None:
    split, batch = indexed_split(50), 8
    one = BatchLoader(split, batch, MEAN, STD, torch.device("cpu"), train=True, seed=3)
    ranks = [BatchLoader(split, batch, MEAN, STD, torch.device("cpu"), train=True, seed=3, rank=r, world=world)
             for r in range(world)]
    for epoch in (0, 1):
        for loader in [one, *ranks]:
            loader.sampler.set_epoch(epoch)
        expected = list(one)
        shards = list(zip(*[list(loader) for loader in ranks]))
        assert len(shards) == len(expected) == 50 // batch and all(len(r) == len(one) for r in ranks)
        for (x, y), per_rank in zip(expected, shards):
            assert all(len(shard_y) == batch // world for _, shard_y in per_rank)
            for r, (shard_x, shard_y) in enumerate(per_rank):  # rows r::world of the global batch, crops included
                assert torch.equal(shard_y, y[r::world]) and torch.equal(shard_x, x[r::world])
        seen = torch.cat([y for _, y in expected])
        union = torch.cat([y for per_rank in shards for _, y in per_rank])
        assert sorted(union.tolist()) == sorted(seen.tolist())
        permutation = np.random.default_rng([3, epoch, 0]).permutation(50)[: len(seen)]
        assert seen.tolist() == permutation.tolist()  # one device's epoch is the seeded permutation


def test_a_batch_that_does_not_split_evenly_is_refused() -> None:
    with pytest.raises(BenchError, match="train: batch_size 30 is not divisible by devices 4; the global batch"):
        validate(suite_dict(Path("/tmp/unused"), devices=4, batch_size=30))


def suite_dict(out: Path, devices: int, batch_size: int = 32) -> dict:
    return {"name": "ddp", "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 128,
                                                                  "test_size": 64, "size": 12}},
            "model": {"name": "test-no-batchnorm"}, "device": "cpu",
            "train": {"epochs": 2, "batch_size": batch_size, "precision": "32", "threads": 1, "devices": devices,
                      "strategy": "ddp" if devices > 1 else "auto", "optimizer": {"lr": 0.1}},
            "methods": {"baseline": {}}, "seeds": [0], "evaluations": {"clean": {}}, "output_dir": str(out)}


def train(out: Path, devices: int) -> RunDir:
    suite = validate(suite_dict(out, devices))
    execute_run(suite, Run("baseline", 0), load_data(suite), torch.device("cpu"), out)
    return RunDir.of(out, Run("baseline", 0))


def test_two_cpu_processes_train_the_weights_of_one(tmp_path: Path) -> None:
    one, two = train(tmp_path / "one", 1), train(tmp_path / "two", 2)
    weights = [torch.load(f.checkpoint, weights_only=True)["state_dict"] for f in (one, two)]
    assert weights[0].keys() == weights[1].keys()
    initial = dict(no_batchnorm(4).named_parameters())  # shapes only: the run moved away from any init
    assert all(weights[0][f"model.{name}"].shape == p.shape for name, p in initial.items())
    for name in weights[0]:
        torch.testing.assert_close(weights[1][name], weights[0][name], rtol=1e-5, atol=1e-6)
    logs = [pd.read_csv(f.log) for f in (one, two)]
    assert logs[1]["epoch"].tolist() == [0, 1]  # rank 0 alone writes the log
    np.testing.assert_allclose(logs[1]["train_loss"], logs[0]["train_loss"], rtol=1e-5)  # summed over both ranks
    assert logs[1]["train_acc"].tolist() == logs[0]["train_acc"].tolist()
    assert logs[1]["lr"].tolist() == logs[0]["lr"].tolist()  # 4 global steps per epoch on both
    metrics = [pd.read_csv(f.metrics) for f in (one, two)]
    assert two.is_done() and len(metrics[1]) == len(metrics[0])  # evaluated once, in this process
    clean = [m[m["evaluation"] == "clean"].set_index("metric")["value"] for m in metrics]
    assert (clean[1] - clean[0]).abs().max() <= 100 / 64  # at most one of the 64 test images changes its vote
