"""Lightning's loggers of a run: the CSVLogger gets every epoch row of log.csv (the file resumption and the
report read), one version folder per training session, and TensorBoard asked for without its package stops
the command before training with one line naming the key."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch

from cutmix_bench.cli import main
from cutmix_bench.rundir import Run, RunDir
from cutmix_bench.setups import training_setup
from cutmix_bench.suite_data import load_data
from cutmix_bench.suite_file import validate
from cutmix_bench.training import train_run
from cutmix_bench.training.callbacks import LOG_COLUMNS, TENSORBOARD_PACKAGES, TRACKER_PACKAGES

from helpers import tiny_suite

CPU = torch.device("cpu")


def suite(epochs: int, logger: str | list[str] = "csv") -> object:
    return validate({
        "name": "loggers",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 96, "test_size": 32, "size": 16}},
        "model": {"name": "tiny", "params": {"width": 4}},
        "train": {"epochs": epochs, "batch_size": 32, "optimizer": {"lr": 0.05}, "logger": logger},
        "methods": {"cutmix": {"alpha": 1.0}},
        "seeds": [0],
        "device": "cpu",
    })


def lightning_rows(run_dir: Path, version: int) -> pd.DataFrame:
    frame = pd.read_csv(RunDir(run_dir).lightning_logs / f"version_{version}" / "metrics.csv")
    assert "test_acc" not in frame  # the validation pass's own (0..1) stays out: one name per quantity
    rows = frame[frame["per_epoch/train_loss"].notna()]
    return rows.rename(columns={f"per_epoch/{c}": c for c in LOG_COLUMNS})[list(LOG_COLUMNS)].reset_index(drop=True)


def test_csv_logger_gets_the_rows_of_log_csv_one_version_per_session(tmp_path: Path) -> None:
    two = suite(2)
    data, run = load_data(two), Run("cutmix", 0)
    train_run(suite(1), run, data, CPU, tmp_path)  # stopped after one epoch
    train_run(two, run, data, CPU, tmp_path)  # resumed from last.ckpt: a second session
    log = pd.read_csv(tmp_path / "log.csv")
    assert list(log.columns) == list(LOG_COLUMNS) and log["epoch"].tolist() == [0, 1]
    first, second = lightning_rows(tmp_path, 0), lightning_rows(tmp_path, 1)
    assert first["epoch"].tolist() == [0] and second["epoch"].tolist() == [1]
    logged = pd.concat([first, second], ignore_index=True)
    # Lightning logs float32 tensors: equal to log.csv to float32 precision
    pd.testing.assert_frame_equal(logged, log, check_dtype=False, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("tracker", ["tensorboard", "mlflow", "wandb"])
def test_tracker_without_its_package_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture, tracker: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in TRACKER_PACKAGES[tracker]
                        else real(name, *a))
    path = tiny_suite(tmp_path)
    assert main(["run", str(path), "--quiet", "--set", f"train.logger=[csv, {tracker}]"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"cutmix-bench: error: train.logger: '{tracker}' needs the {tracker} package "
                            f"(pip install 'cutmix-bench[{tracker}]'")
    assert len(error.splitlines()) == 1 and not (tmp_path / "out" / "runs").exists()


def test_the_tracker_is_not_in_the_setup() -> None:
    assert training_setup(suite(1, "csv"), Run("cutmix", 0)) == training_setup(
        suite(1, ["tensorboard", "mlflow", "wandb"]), Run("cutmix", 0))
    assert suite(1, "tensorboard").train.logger == ("tensorboard",)


def test_logger_key_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", str(tiny_suite(tmp_path)), "--dry-run", "--set", "train.logger=comet"]) == 2
    assert "train.logger" in capsys.readouterr().err


@pytest.mark.skipif(not any(importlib.util.find_spec(p) for p in TENSORBOARD_PACKAGES), reason="no tensorboard")
def test_tensorboard_logger_writes_event_files(tmp_path: Path) -> None:
    one = suite(1, "tensorboard")
    train_run(one, Run("cutmix", 0), load_data(one), CPU, tmp_path)
    assert list((RunDir(tmp_path).tensorboard_logs / "version_0").glob("events.out.tfevents.*"))
    assert lightning_rows(tmp_path, 0)["epoch"].tolist() == [0]  # the CSV logger runs as well
