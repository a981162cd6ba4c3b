"""The committed real-data results (results/<suite>/): each report is what `cutmix-bench report` builds from the
committed results alone, and the ResNet-8 comparison holds all 4 methods, >= 3 seeds and every evaluation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cutmix_bench.cli import main

RESULTS = Path(__file__).resolve().parents[1] / "results"
PUBLISHED = RESULTS / "cifar100-cpu"
COMMITTED_REPORTS = sorted(path.parent.name for path in RESULTS.glob("*/report.md"))
SECTIONS = ["## Summary", "## Findings", "## Clean test set", "## Corruption robustness", "## Occlusion",
            "## In-between class", "## Adversarial", "## Out-of-distribution detection"]


def test_every_committed_results_folder_has_a_report() -> None:
    assert "cifar100-cpu" in COMMITTED_REPORTS
    assert {path.name for path in RESULTS.iterdir() if path.is_dir()} == set(COMMITTED_REPORTS)


@pytest.mark.parametrize("name", COMMITTED_REPORTS)
def test_committed_report_is_rebuilt_identically_from_the_committed_results(name: str, tmp_path: Path) -> None:
    copy = tmp_path / name
    # figures/ stays: training_inputs.png is drawn by the run, not by the report
    shutil.copytree(RESULTS / name, copy, ignore=shutil.ignore_patterns("report.md", "tables"))
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.md").read_text() == (RESULTS / name / "report.md").read_text()


def test_committed_results_cover_every_method_seed_and_evaluation() -> None:
    results = pd.read_csv(PUBLISHED / "results.csv")
    assert set(results["method"]) == {"baseline", "cutout", "mixup", "cutmix"}
    assert results.groupby("method")["seed"].nunique().min() >= 3
    assert set(results["dataset"]) == {"cifar100"}
    assert {"clean", "corruptions", "occlusion", "inbetween", "adversarial", "ood"} <= set(results["evaluation"])
    report = (PUBLISHED / "report.md").read_text()
    for section in SECTIONS:
        assert section in report, section
    assert "not a git checkout" not in report and "Not evaluated" not in report
