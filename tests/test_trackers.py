"""The trackers of `train.logger` (Lightning's TensorBoard, MLflow and W&B loggers), read back from the files they
write under the run folder: the setup as hyperparameters, one name per quantity, the learning rate of every step
from the first, log.csv's epoch rows, and the run's headline evaluation values at the end. Each tracker's test
runs only where its package is installed (MLflow and W&B are optional extras, not CI installs)."""

from __future__ import annotations

import importlib.util
import json
import math
import struct
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cutmix_bench.cli import main
from cutmix_bench.rundir import RunDir
from cutmix_bench.suite_file import load_suite
from cutmix_bench.summary import headline_values, suite_headlines
from cutmix_bench.training.callbacks import LOG_COLUMNS, TRACKER_PACKAGES

INSTALLED = [name for name, packages in TRACKER_PACKAGES.items() if any(importlib.util.find_spec(p) for p in packages)]
LR, STEPS_PER_EPOCH, EPOCHS = 0.05, 4, 2
EPOCH_NAMES = {f"per_epoch/{c}" for c in LOG_COLUMNS if c != "epoch"} | {"epoch"}


def step_lrs() -> list[float]:
    """The cosine schedule without warmup (module.configure_optimizers), at steps 0 .. 7."""
    total = STEPS_PER_EPOCH * EPOCHS
    return [LR * 0.5 * (1 + math.cos(math.pi * s / total)) for s in range(total)]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunDir, dict[str, float]]:
    """One run that logs to every installed tracker; its suite, folder and headline values (results.csv)."""
    if not INSTALLED:
        pytest.skip("no tracker package installed")
    tmp = tmp_path_factory.mktemp("trackers")
    path = tmp / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "trackers",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 128, "test_size": 64, "size": 16}},
        "model": {"name": "tiny", "params": {"width": 4}},
        "train": {"epochs": EPOCHS, "batch_size": 32, "threads": 1, "optimizer": {"lr": LR}, "logger": INSTALLED},
        "methods": {"baseline": {}}, "seeds": [0], "evaluations": {"clean": {}}, "output_dir": str(tmp / "out")}))
    assert main(["run", str(path), "--quiet"]) == 0
    suite = load_suite(path)
    results = pd.read_csv(tmp / "out" / "results.csv")
    values = headline_values(results, suite_headlines(suite))
    evals = {f"eval/clean/{key}": value for key, value in zip(values["headline"], values["value"])}
    assert set(evals) == {"eval/clean/clean_err", "eval/clean/ece"}
    return path, RunDir(tmp / "out" / "runs" / "baseline-s0"), evals


def flat(setup: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in setup.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_series(series: dict[str, list[tuple[int, float]]], run: RunDir, evals: dict[str, float]) -> None:
    """One name per quantity; lr at steps 0..7; log.csv's rows at each epoch's last step; the evaluations once."""
    assert set(series) == EPOCH_NAMES | {"per_step/lr"} | set(evals)
    lrs = sorted(series["per_step/lr"])
    assert [s for s, _ in lrs] == list(range(STEPS_PER_EPOCH * EPOCHS))
    assert [v for _, v in lrs] == pytest.approx(step_lrs(), rel=1e-6)
    log = pd.read_csv(run.log)
    assert sorted(series["epoch"]) == [((e + 1) * STEPS_PER_EPOCH - 1, e) for e in range(EPOCHS)]
    for column in LOG_COLUMNS[1:]:
        logged = [v for _, v in sorted(series[f"per_epoch/{column}"])]
        assert logged == pytest.approx(log[column].tolist(), rel=1e-6), column
    for name, value in evals.items():
        assert [v for _, v in series[name]] == pytest.approx([value], rel=1e-6), name


def tfrecords(path: Path) -> list[bytes]:
    """The records of a TFRecord file (u64 length, u32 crc, data, u32 crc): tensorboardX writes event files
    but has no reader, and tensorboard (whose EventAccumulator reads them) is not a test dependency."""
    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        out.append(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
    return out


@pytest.mark.skipif("tensorboard" not in INSTALLED, reason="no tensorboard / tensorboardX")
def test_tensorboard_event_files(tracked: tuple[Path, RunDir, dict[str, float]]) -> None:
    _, run, evals = tracked
    folder = run.tensorboard_logs / "version_0"
    if importlib.util.find_spec("tensorboard"):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(folder))
        events.Reload()
        series = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    else:
        from tensorboardX.proto.event_pb2 import Event

        series = {}
        for file in sorted(folder.glob("events.out.tfevents.*")):
            for record in tfrecords(file):
                event = Event.FromString(record)
                for value in event.summary.value:
                    if value.HasField("simple_value"):
                        series.setdefault(value.tag, []).append((event.step, value.simple_value))
    # TensorBoard keeps float32: compare at that precision
    check_series({k: [(s, float(v)) for s, v in vs] for k, vs in series.items()}, run,
                 {k: float(pytest.approx(v, rel=1e-6).expected) for k, v in evals.items()})
    assert flat(yaml.safe_load((folder / "hparams.yaml").read_text())) == flat(json.loads(run.setup.read_text()))


def test_mlflow_file_store(tracked: tuple[Path, RunDir, dict[str, float]]) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    _, run, evals = tracked
    client = MlflowClient(tracking_uri=run.mlflow_logs.resolve().as_uri())
    run_id = json.loads(run.trackers.read_text())["mlflow"]
    record = client.get_run(run_id)
    series = {name: [(m.step, m.value) for m in client.get_metric_history(run_id, name)]
              for name in record.data.metrics}
    check_series(series, run, evals)
    # Lightning flattens lists into one key per item: an empty list (schedule.milestones) leaves none
    setup = {k: str(v) for k, v in flat(json.loads(run.setup.read_text())).items() if v != []}
    assert record.data.params == setup


def wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B .wandb file: a 7-byte header (':W&B', magic, version), then LevelDB's log format
    (32 KiB blocks; each chunk crc u32, length u16, type u8: 1 full, 2 first, 3 middle, 4 last). wandb 0.31 has
    no Python reader (its core is in Go)."""
    data, pos, buffer, out = path.read_bytes(), 7, b"", []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        if kind == 0:
            break
        buffer += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            out.append(buffer)
            buffer = b""
    return out


def name(item: object) -> str:
    """A W&B record item's name: `key`, or for names with a slash their `nested_key` parts."""
    return item.key or "/".join(item.nested_key)


def test_wandb_offline_run_folder(tracked: tuple[Path, RunDir, dict[str, float]]) -> None:
    pytest.importorskip("wandb")
    from wandb.proto.wandb_internal_pb2 import Record

    _, run, evals = tracked
    series: dict[str, list[tuple[int, float]]] = {}
    config = {}
    files = sorted(run.wandb_logs.glob("wandb/offline-run-*/run-*.wandb"))
    assert files and {f.stem for f in files} == {f"run-{json.loads(run.trackers.read_text())['wandb']}"}
    for file in files:
        for data in wandb_records(file):
            record = Record.FromString(data)
            kind = record.WhichOneof("record_type")
            if kind == "config":
                config.update({name(item): json.loads(item.value_json) for item in record.config.update})
            if kind == "history":
                items = {name(item): json.loads(item.value_json) for item in record.history.item}
                step = items.get("trainer/global_step")
                for key, value in items.items():
                    if not key.startswith(("_", "trainer/")):
                        series.setdefault(key, []).append((step, value))
    check_series(series, run, evals)
    assert {k: v for k, v in config.items() if not k.startswith("_")} == json.loads(run.setup.read_text())
