"""benchmarks/gpu_check.sh in its reduced CPU mode (so that the GPU proof cannot rot), and its parts: the
subset it ships (seeded, class-balanced, git-ignored) and the per-phase times it reads from the suite log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
import make_subset  # noqa: E402

EVALUATIONS = ["clean", "corruptions", "occlusion", "inbetween", "adversarial", "ood"]
METHODS = ["baseline", "cutout", "mixup", "cutmix"]


def fake_source(root: Path) -> Path:
    """The shared layout with rows grouped by class (as the real files); every image's pixels encode its row."""
    for folder, split, classes in make_subset.SETS:
        n = classes * {10: 25, 100: 4, 200: 2}[classes]
        rows = np.arange(n)
        x = np.zeros((n, 32, 32, 3), np.uint8)
        x[:, 0, 0, 0], x[:, 0, 0, 1] = rows % 256, rows // 256
        (root / folder).mkdir(parents=True, exist_ok=True)
        np.savez(root / folder / f"{split}.npz", x=x, y=np.repeat(np.arange(classes), n // classes))
        (root / folder / "classes.txt").write_text("".join(f"class{k}\n" for k in range(classes)))
    return root


def test_subset_is_seeded_class_balanced_and_drawn_from_the_source(tmp_path: Path) -> None:
    source = fake_source(tmp_path / "source")
    info = make_subset.make_subset(source, tmp_path / "a", train_per_class=3, test_per_class=2, seed=5)
    make_subset.make_subset(source, tmp_path / "b", train_per_class=3, test_per_class=2, seed=5)
    other = make_subset.make_subset(source, tmp_path / "c", train_per_class=3, test_per_class=2, seed=6)
    expected = {"cifar100/train.npz": (100, 3), "cifar100/test.npz": (100, 2), "cifar10/test.npz": (10, 20),
                "tinyimagenet32/test.npz": (200, 1)}
    for name, (classes, per_class) in expected.items():
        with np.load(tmp_path / "a" / name) as a, np.load(tmp_path / "b" / name) as b, np.load(source / name) as src:
            assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"])  # seeded
            assert np.array_equal(np.bincount(a["y"], minlength=classes), np.full(classes, per_class))
            rows = a["x"][:, 0, 0, 0].astype(int) + 256 * a["x"][:, 0, 0, 1].astype(int)
            assert len(set(rows)) == len(rows)  # no image twice
            assert np.array_equal(src["x"][rows], a["x"]) and np.array_equal(src["y"][rows], a["y"])
        assert info["files"][name]["images"] == classes * per_class
    assert (tmp_path / "a" / "cifar100" / "classes.txt").read_text() == (source / "cifar100/classes.txt").read_text()
    assert other["files"]["cifar100/train.npz"]["sha256"] != info["files"]["cifar100/train.npz"]["sha256"]
    assert json.loads((tmp_path / "a" / "subset.json").read_text()) == info


def test_subset_sizes_that_cannot_be_balanced_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not divisible among the 200 classes of tinyimagenet32"):
        make_subset.make_subset(tmp_path, tmp_path / "out", 3, 1, 0)
    with pytest.raises(SystemExit, match="--source: .*cifar100/train.npz not found"):
        make_subset.make_subset(tmp_path, tmp_path / "out", 3, 2, 0)


def test_the_subset_folder_is_ignored_by_git() -> None:
    for path in ("gpu-check-data/cifar100/train.npz", "gpu-check-data/wheels/pydantic-2.14.4-py3-none-any.whl"):
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, check=False)
        assert done.returncode == 0, f"{path} is not git-ignored"


def test_phases_last_until_the_next_phase_starts(tmp_path: Path) -> None:
    log = tmp_path / "suite.log"
    log.write_text("[0.5 s] loading\n[1.0 s] [1/2] a-s0: training on cuda\n[4.0 s] a-s0: evaluation clean\n"
                   "[4.5 s] a-s0: evaluation ood\n[5.0 s] ood: set svhn skipped\n[7.0 s] [2/2] b-s0: training on cuda\n"
                   "[9.5 s] b-s0: evaluation clean\n[10.0 s] report: x/report.md\n")
    expected = pd.DataFrame({"run": ["a-s0", "a-s0", "a-s0", "b-s0", "b-s0"],
                             "phase": ["training", "clean", "ood", "training", "clean"],
                             "seconds": [3.0, 0.5, 2.5, 2.5, 0.5]})
    pd.testing.assert_frame_equal(gpu_check.phases(log), expected)


@pytest.mark.slow
def test_gpu_check_runs_in_cpu_mode_and_writes_every_output(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, OMP_NUM_THREADS="1")
    command = ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--mode", "cpu", "--data", str(data_dir)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True) as process:
        try:
            output = process.communicate(timeout=600)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)  # gpu_check.py then kills its running step's process group
            raise
    assert process.returncode == 0, output[-3000:]
    for name in ("gpu_check.log", "versions.json", "bench.txt", "suite.log", "summary.md", "suite/report.md"):
        assert (out / name).is_file(), name
    assert "gpu_check: exit 0" in (out / "gpu_check.log").read_text()
    assert json.loads((out / "versions.json").read_text())["cuda_available"] in (True, False)
    assert {p.name for p in (out / "suite" / "figures").glob("*.png")} >= {"corruption_severity.png", "ood_roc.png"}
    results = pd.read_csv(out / "suite" / "results.csv")
    assert sorted(results["method"].unique()) == sorted(METHODS)
    assert set(results["evaluation"]) == {"train", *EVALUATIONS}
    table = gpu_check.phases(out / "suite.log")
    assert len(table) == len(METHODS) * (1 + len(EVALUATIONS)) and (table["seconds"] >= 0).all()
    summary = (out / "summary.md").read_text()
    assert "| train-step benchmark | 0 |" in summary and "| shortened cifar100 suite | 0 |" in summary
    assert "`train_step.project_vs_bare_loop` |" in summary and "| cutmix-s0 |" in summary
