"""`benchmarks/same_results.py`, the before/after check of a change of structure: timing rows and header lines
do not count, any other difference does."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "same_results.py"


def load():  # noqa: ANN201 (a module object)
    spec = importlib.util.spec_from_file_location("same_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results_dir(root: Path, train_minutes: float, value: float, started: str) -> Path:
    (root / "runs" / "a-s0" / "eval").mkdir(parents=True)
    pd.DataFrame({"run": ["a-s0"] * 2, "evaluation": ["train", "clean"], "metric": ["train_minutes", "top1_err"],
                  "value": [train_minutes, value]}).to_csv(root / "results.csv", index=False)
    table = f"| Method | Err | Train time (min) |\n|---|---|---|\n| A | {value:.2f} | {train_minutes:.2f} |\n"
    (root / "report.md").write_text(f"| **Started** | {started} |\n\n{table}")
    log = pd.DataFrame({"epoch": [0], "test_acc": [0.5], "seconds": [train_minutes]})
    log.to_csv(root / "runs" / "a-s0" / "log.csv", index=False)
    return root


def test_timing_aside_the_same_and_any_number_differs(tmp_path: Path, capsys) -> None:
    same_results = load()
    a = results_dir(tmp_path / "a", 1.0, 12.5, "2026-12-02 01:00:00 UTC")
    b = results_dir(tmp_path / "b", 2.0, 12.5, "2026-12-02 02:30:00 UTC")
    assert same_results.compare(a, b) == []
    assert "3 of 3 files the same" in capsys.readouterr().out
    shutil.rmtree(b)
    b = results_dir(tmp_path / "b", 1.0, 12.25, "2026-12-02 01:00:00 UTC")
    assert same_results.compare(a, b) == ["results.csv: differs", "report.md: differs"]
    (b / "runs" / "a-s0" / "log.csv").unlink()
    assert "runs/a-s0/log.csv: only in " + str(a) in same_results.compare(a, b)
