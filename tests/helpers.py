"""Shared test helpers: a tiny suite that trains in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """Where the real data lives: $CUTMIX_BENCH_DATA, else `<repo root>/../shared/data` (it may be absent)."""
    return Path(os.environ.get("CUTMIX_BENCH_DATA", REPO.parent / "shared" / "data"))


def tiny_suite(tmp_path: Path, **changes: object) -> Path:
    """Write a suite of 2 methods x 1 seed on small synthetic data; `changes` replace top-level keys."""
    suite = {
        "name": "tiny",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 512, "test_size": 256}},
        "model": {"name": "tiny", "params": {"width": 8}},
        "train": {"epochs": 3, "batch_size": 64, "threads": 1, "checkpoint_every": 1,
                  "optimizer": {"lr": 0.05}},
        "methods": {"baseline": {}, "cutmix": {"alpha": 1.0}},
        "seeds": [0],
        "evaluations": {"clean": {}},
        "output_dir": str(tmp_path / "out"),
    }
    suite.update(changes)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


class LegacyRng:
    """The generator methods the corruptions call, answered by NumPy's global legacy state: after the same
    `np.random.seed(s)` the project draws exactly the numbers a reference that uses `np.random` draws for one
    image (Hendrycks' make_cifar_c.py, `imagecorruptions`)."""

    def normal(self, loc, scale, size):
        return np.random.normal(loc, scale, size)

    def uniform(self, low, high, size):
        return np.random.uniform(low, high, size)

    def integers(self, low, high, size=None):
        return np.random.randint(low, high, size)

    def poisson(self, lam):
        return np.random.poisson(lam)


def documented_units() -> dict[tuple[str, str], str]:
    """(evaluation, metric) -> unit, from the metric table of docs/results-schema.md."""
    text = (REPO / "docs" / "results-schema.md").read_text().split("## Metrics", 1)[1]
    cells = [[c.strip().strip("`") for c in line.strip("|").split("|")] for line in text.splitlines()
             if line.startswith("| `")]
    return {(row[0], row[1]): row[2] for row in cells}
