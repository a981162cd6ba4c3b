"""Multi-device training of one run (train.devices, docs/scaleout.md): the global batch is split evenly over
the ranks, rank r taking rows r::N of every batch of the epoch's one seeded permutation (augmentation draws
included), so that N ranks see exactly what one device sees; gradient averaging over equal shards is the full
batch's mean gradient, so two gloo processes on the CPU train a BatchNorm-free model to the weights one
process reaches (up to float rounding); the log is written once, and evaluation runs once, after fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
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


@pytest.mark.parametrize(("devices", "nodes", "device", "strategy", "shown"), [
    (1, 1, "cpu", "single_device", "cpu"), (2, 1, "cpu", "ddp_spawn", "2 x cpu (ddp_spawn)"),
    (8, 2, "cuda", "ddp", "8 x cuda over 2 nodes (ddp)")])
def test_the_run_lines_name_the_devices_and_the_strategy_that_trains(devices: int, nodes: int, device: str,
                                                                     strategy: str, shown: str) -> None:
    raw = suite_dict(Path("/tmp/unused"), devices)
    raw["executor"] = {"name": "slurm", "nodes": nodes, "gpus_per_run": devices}
    suite = validate(raw)
    assert suite.strategy_ran() == strategy and suite.training_devices(torch.device(device)) == shown


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


def test_two_cpu_processes_train_the_weights_of_one(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    one = train(tmp_path / "one", 1)
    capfd.readouterr()
    two = train(tmp_path / "two", 2)
    # the ranks set up the command's logging (training/fit.py OwnRanks): before, they printed 20 lines, Lightning's
    # 8 warnings (6 sync_dist advices on values the ranks already share, 2 pytree deprecations) and 12 info lines
    # (rank banners, 4 checkpoint-loading notices, the end of fit)
    assert capfd.readouterr().err == ""
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
    config = yaml.safe_load(two.config.read_text())
    assert (config["train"]["devices"], config["train"]["strategy"], config["executor"]["nodes"]) == (2, "ddp_spawn", 1)
    assert validate(config).train.strategy == "ddp_spawn"  # config.yaml is still a suite
    info = [json.loads((f.path / "info.json").read_text()) for f in (one, two)]
    assert [(i["devices"], i["strategy"], i["nodes"]) for i in info] == [(1, "single_device", 1), (2, "ddp_spawn", 1)]
    assert one.setup.read_text() == two.setup.read_text()  # how a run executes is not its setup (nor its hash)


NO_BATCHNORM_PLUGIN = '''import os
from pathlib import Path

from torch import nn

from cutmix_bench.models import MODELS


class NoBatchNorm(nn.Sequential):
    def forward(self, x):
        if self.training:  # the rows each process trains on, in a file named by the process
            with open(Path(__file__).parent / f"train-rows-{os.getpid()}", "a") as rows:
                rows.write(f"{len(x)}\\n")
        return super().forward(x)


@MODELS.register("plugin-no-batchnorm")
def no_batchnorm(num_classes: int, width: int = 8) -> nn.Module:
    return NoBatchNorm(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                       nn.Linear(width, num_classes))
'''


def slurm_task_environment(rank: int, tasks: int, folder: Path, port: int) -> dict[str, str]:
    """What SLURM's srun gives task `rank` of a job of `tasks` tasks on as many nodes (one task per node), and
    what submitit's sbatch script adds: submitit's JobEnvironment and Lightning's SLURMEnvironment read these."""
    return {"SUBMITIT_EXECUTOR": "slurm", "SUBMITIT_FOLDER": str(folder), "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NAME": "cutmix-bench-ddp", "SLURM_NTASKS": str(tasks), "SLURM_NTASKS_PER_NODE": "1",
            "SLURM_JOB_NUM_NODES": str(tasks), "SLURM_NNODES": str(tasks), "SLURM_NODEID": str(rank),
            "SLURM_PROCID": str(rank), "SLURM_LOCALID": "0", "SLURM_JOB_NODELIST": "localhost",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}


def test_a_run_over_two_nodes_trains_in_the_slurm_tasks_and_rank_0_alone_keeps_the_run(tmp_path: Path) -> None:
    """executor.nodes 2: the job's two tasks (one per node, here two processes of this machine with the variables
    SLURM gives them) each run the pickled job submitit runs; Lightning's SLURMEnvironment joins them (plain ddp,
    num_nodes 2): they train the weights one process trains; rank 0 alone writes the log, evaluates and records
    the run (devices, strategy and nodes in config.yaml and info.json), rank 1 writes nothing of the run's."""
    import os
    import pickle
    import socket
    import subprocess
    import sys

    from cutmix_bench.executing import work
    from cutmix_bench.executors.slurm import RunJob
    from cutmix_bench.executors.state import read_state, write_state

    from helpers import REPO

    plugin = tmp_path / "no_batchnorm_plugin.py"
    plugin.write_text(NO_BATCHNORM_PLUGIN)

    def suite_of(out: Path, devices: int, nodes: int) -> dict:
        raw = suite_dict(out, devices)
        raw["model"]["name"], raw["plugins"] = "plugin-no-batchnorm", [str(plugin)]
        raw["executor"] = {"name": "slurm", "nodes": nodes, "gpus_per_run": 0}
        return raw

    one = tmp_path / "one"
    suite = validate(suite_of(one, 1, 1))
    execute_run(suite, Run("baseline", 0), load_data(suite), torch.device("cpu"), one)
    out, run = tmp_path / "two", Run("baseline", 0)
    suite = validate(suite_of(out, 2, 2))
    folder = RunDir.of(out, run)
    write_state(folder, fresh=True, state="queued", token="t", cluster="slurm")
    job = tmp_path / "job.pkl"
    job.write_bytes(pickle.dumps(RunJob(work, suite.model_dump(), out, run, "t")))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    call = "import pickle, sys; print(pickle.load(open(sys.argv[1], 'rb'))())"
    tasks = [subprocess.Popen([sys.executable, "-c", call, str(job)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                                              **slurm_task_environment(rank, 2, tmp_path / "submitit", port)})
             for rank in (0, 1)]
    outputs = [task.communicate(timeout=600) for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs
    rows = {pid: (tmp_path / f"train-rows-{pid}").read_text().split() for pid in (os.getpid(), *(t.pid for t in tasks))}
    assert rows[os.getpid()] == ["32"] * 8  # one process: 4 global batches of 32 per epoch, 2 epochs
    assert rows[tasks[0].pid] == rows[tasks[1].pid] == ["16"] * 8  # two ranks: half of every global batch each
    assert [stdout.strip() for stdout, _ in outputs] == ["{}", "{}"]
    assert folder.finished({"clean": {}}) and read_state(folder)["state"] == "done"
    assert read_state(folder)["job_id"] == "4242" and read_state(folder)["attempt"] == 1  # written by rank 0 alone
    weights = [torch.load(RunDir.of(o, run).checkpoint, weights_only=True)["state_dict"] for o in (one, out)]
    for name in weights[0]:
        torch.testing.assert_close(weights[1][name], weights[0][name], rtol=1e-5, atol=1e-6)
    assert pd.read_csv(folder.log)["epoch"].tolist() == [0, 1]  # one line per epoch: rank 0's
    assert "baseline-s0: evaluation clean" in outputs[0][1] and "evaluation" not in outputs[1][1]
    config = yaml.safe_load(folder.config.read_text())
    assert (config["train"]["devices"], config["train"]["strategy"], config["executor"]["nodes"]) == (2, "ddp", 2)
    info = json.loads((folder.path / "info.json").read_text())
    assert (info["devices"], info["strategy"], info["nodes"]) == (2, "ddp", 2)
    assert folder.setup.read_text() == RunDir.of(one, run).setup.read_text()  # how it ran is not the setup
