"""`status`, `report` and `resume` on a results directory: the suite and its --set values are recorded there
(suite.json, written before training), so the folder alone is enough, also after it was moved."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_metadata_commands import heavy_imports

from cutmix_bench.cli import main
from cutmix_bench.rundir import ResultsDir, Run, RunDir

from helpers import REPO, tiny_suite

OVERRIDES = ["--set", "train.epochs=2", "--set", "seeds=[1]"]  # not the file's 3 epochs and seed 0


def status_of(capsys: pytest.CaptureFixture, *args: str) -> str:
    assert main(["status", *args]) == 0
    return capsys.readouterr().out


def test_status_resume_and_report_from_the_folder_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    suite = tiny_suite(tmp_path)
    killed = subprocess.run([sys.executable, "-m", "cutmix_bench", "run", str(suite), "--quiet", *OVERRIDES],
                            env={**os.environ, "PYTHONPATH": str(REPO), "CUTMIX_BENCH_KILL_AT": "epoch:cutmix-s1:0"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL  # killed after cutmix-s1's first epoch, before any report
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "out", moved)
    suite.unlink()  # the suite file is gone too: the folder is all the user has
    shown = status_of(capsys, str(moved))
    assert shown.splitlines()[-1] == f"{moved}: 2 run(s): 1 done, 1 to do"
    assert "baseline-s1  done" in shown
    (line,) = [line.split(maxsplit=5) for line in shown.splitlines() if line.startswith("cutmix-s1")]
    assert line[1:3] == ["to", "do"] and line[4] == "1/2" and line[5].startswith("its job ended without finishing")

    assert main(["resume", str(moved), "--quiet"]) == 0
    log = pd.read_csv(RunDir.of(moved, Run("cutmix", 1)).log)
    assert log["epoch"].tolist() == [0, 1]  # the recorded train.epochs=2, not the file's 3
    results = pd.read_csv(ResultsDir(moved).results)
    assert sorted(results["run"].unique()) == ["baseline-s1", "cutmix-s1"]
    assert json.loads(ResultsDir(moved).suite.read_text())["output_dir"] == str(moved)
    capsys.readouterr()
    assert status_of(capsys, str(moved)).splitlines()[-1] == f"{moved}: 2 run(s): 2 done, 0 to do"
    assert main(["report", str(moved)]) == 0 and "cutmix" in ResultsDir(moved).report.read_text()
    _, heavy = heavy_imports(["status", str(moved)], tmp_path)
    assert heavy == []  # status of a folder answers without torch, as for a suite file


def test_status_of_a_folder_equals_status_of_its_suite_and_overrides(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    suite = tiny_suite(tmp_path)
    assert main(["run", str(suite), "--quiet", "--dry-run", *OVERRIDES]) == 0  # writes nothing
    assert not (tmp_path / "out" / "suite.json").exists()
    ResultsDir(tmp_path / "out").path.mkdir()
    ResultsDir(tmp_path / "out").suite.write_text(json.dumps(
        {**yaml_load(suite), "train": {**yaml_load(suite)["train"], "epochs": 2}, "seeds": [1]}))
    capsys.readouterr()
    assert status_of(capsys, str(tmp_path / "out")) == status_of(capsys, str(suite), *OVERRIDES)


def yaml_load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_results_dir_commands_refuse_what_they_cannot_use(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    for argv in (["resume", str(tmp_path / "empty")], ["status", str(tmp_path / "empty")],
                 ["resume", str(tmp_path / "missing")]):
        assert main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and error.startswith(f"cutmix-bench: error: {tmp_path}")
    (tmp_path / "empty" / "suite.json").write_text("{not json")
    assert main(["status", str(tmp_path / "empty")]) == 2
    assert "damaged suite record" in capsys.readouterr().err
    assert main(["status", str(tmp_path / "empty"), "--set", "seeds=[0]"]) == 2
    assert "--set: only with a suite file" in capsys.readouterr().err
