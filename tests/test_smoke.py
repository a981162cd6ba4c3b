"""The README's promise: the smoke suite runs end to end and writes a 4-row report."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from cutmix_bench.cli import main

from helpers import REPO


def main_table_rows(report: str) -> list[list[str]]:
    section = report.split("## Clean test set", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]  # skip header + rule
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_smoke_suite_end_to_end(tmp_path: Path) -> None:
    assert main(["run", str(REPO / "suites" / "smoke.yaml"), "--set", f"output_dir={tmp_path}"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "last epoch" in report
    rows = main_table_rows(report)
    assert [row[0] for row in rows] == ["Baseline", "Cutout", "Mixup", "CutMix"]
    for row in rows:
        numbers = [float(x) for cell in row[1:5] for x in re.findall(r"\d+\.\d+", cell)]
        assert len(numbers) == 8 and all(0 <= x <= 100 for x in numbers), row  # mean and std of 4 metrics
    results = pd.read_csv(tmp_path / "results.csv")
    assert results["run"].nunique() == 8
    clean = results[(results["evaluation"] == "clean") & (results["metric"] == "top1_err")]
    assert (clean["value"] < 60).all(), clean  # 10 classes: chance is 90% error
    for run in results["run"].unique():
        log = pd.read_csv(tmp_path / "runs" / run / "log.csv")
        assert log["epoch"].tolist() == list(range(10))
