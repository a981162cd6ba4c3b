"""The training-inputs figure is redrawn when what it shows changes (a method added or its parameters changed):
the committed ResNet-8 report once kept a figure drawn before CutMix joined the suite."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from cutmix_bench.cli import main

from helpers import tiny_suite

ROW_INCHES, DPI = 1.55, 120  # evaluations/figures.py: one row of images per method


def rows_of(out: Path) -> int:
    with Image.open(out / "figures" / "training_inputs.png") as image:
        return round(image.size[1] / (ROW_INCHES * DPI))


def test_the_figure_follows_the_suites_methods(tmp_path: Path) -> None:
    two = tiny_suite(tmp_path, train={"epochs": 1, "batch_size": 64, "threads": 1})
    assert main(["run", str(two), "--quiet"]) == 0
    out = tmp_path / "out"
    assert rows_of(out) == 2
    drawn = (out / "figures" / "training_inputs.png").stat().st_mtime_ns
    assert main(["run", str(two), "--quiet"]) == 0  # nothing changed: not drawn again
    assert (out / "figures" / "training_inputs.png").stat().st_mtime_ns == drawn

    three = tiny_suite(tmp_path, train={"epochs": 1, "batch_size": 64, "threads": 1},
                       methods={"baseline": {}, "cutmix": {"alpha": 1.0}, "mixup": {"alpha": 0.4}})
    assert main(["run", str(three), "--quiet"]) == 0
    assert rows_of(out) == 3
    key = json.loads((out / "figures" / "training_inputs.json").read_text())
    assert key["methods"]["mixup"] == ["mixup", {"alpha": 0.4}]


def test_the_committed_figure_has_one_row_per_method() -> None:
    from helpers import REPO

    published = REPO / "results" / "cifar100-cpu"
    suite = json.loads((published / "suite.json").read_text())
    assert rows_of(published) == len(suite["methods"]) == 4
