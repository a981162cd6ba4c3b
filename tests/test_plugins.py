"""Plug-ins from the user's own folder: a method, model, dataset, OOD score (with a fit stage), evaluation and
corruption, each defined in a file outside the package, run through `cutmix-bench run --jobs 2` (spawned workers must
import them too), plus evaluation labels and the one-line errors of a broken plug-in."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PLUGIN = '''
"""A user's plug-in file: one component of each kind."""
import numpy as np
import torch
from torch import nn

from cutmix_bench.corruptions import register_corruption
from cutmix_bench.data import DATASETS, Dataset
from cutmix_bench.data.base import as_split, channel_stats
from cutmix_bench.evaluations import EVALUATIONS, Evaluation
from cutmix_bench.methods import METHODS
from cutmix_bench.methods.base import Method, partners, to_device
from cutmix_bench.models import MODELS
from cutmix_bench.ood.scores import SCORES, Score


@DATASETS.register("user_stripes")
class Stripes(Dataset):
    """Class k = horizontal stripes of period k + 2, plus noise."""
    num_classes = 4

    def __init__(self, train_size: int = 256, test_size: int = 64) -> None:
        self.sizes = {"train": train_size, "test": test_size}
        self.mean, self.std = channel_stats(self._load("train").x)

    def _load(self, split):
        n = self.sizes[split]
        rng = np.random.default_rng(0 if split == "train" else 1)
        y = np.arange(n) % self.num_classes
        rows = np.arange(16)[None, :, None, None]
        x = ((rows // (y[:, None, None, None] + 2)) % 2) * 200.0 + rng.normal(0, 20, (n, 16, 16, 3))
        return as_split(np.clip(x, 0, 255).astype(np.uint8), y, f"user_stripes[{split}]", self.num_classes)


@MODELS.register("user_mlp")
def user_mlp(num_classes: int, hidden: int = 32) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


@METHODS.register("user_halfmix", display="HalfMix", reference="A user, 2026 (no code)")
class HalfMix(Method):
    """Mixup with lam fixed at `lam`."""

    def __init__(self, lam: float = 0.5) -> None:
        self.lam = lam

    def sample(self, batch_size, height, width, rng):
        return {"perm": rng.permutation(batch_size)}

    def apply(self, x, y, params):
        perm = to_device(params["perm"], x.device)
        return self.lam * x + (1 - self.lam) * partners(x, perm), self.lam * y + (1 - self.lam) * y[perm]


@SCORES.register("user_centroid")
class Centroid(Score):
    """Minus the distance of the logits to the nearest class-mean logit vector of the training split."""

    def setup(self, ctx, train):
        logits = ctx.logits(train.x)
        self.centres = torch.stack([logits[train.y == k].mean(0) for k in range(logits.shape[1])])
        self.fitted_on = len(train)

    def __call__(self, ctx, images, logits):
        assert self.fitted_on == 256, "setup did not see the training split"
        return (-torch.cdist(logits.double(), self.centres.double()).min(1).values).numpy()


@register_corruption("user_invert", category="digital", extra=True, short="Invert", cifar=[0.2, 0.4, 0.6, 0.8, 1.0])
def invert(x, c, rng, variant):
    """Blend towards the negative image, plus a little seeded noise."""
    return np.clip((1 - c) * x + c * (255.0 - x) + rng.normal(0, 2, x.shape), 0, 255)


@EVALUATIONS.register("user_confidence")
class MeanConfidence(Evaluation):
    title = "Mean confidence"

    def __init__(self, scale: float = 100.0) -> None:
        self.scale = scale

    def run(self, ctx):
        probs = ctx.logits(ctx.test.x).softmax(1)
        return [{"metric": "mean_confidence", "value": self.scale * float(probs.max(1).values.mean())}]

    @classmethod
    def report(cls, rows, ctx):
        return f"{len(rows)} rows from {len(set(rows['run']))} runs"
'''

SUITE = '''
name: user
plugins: [my_plugins.py]
data: {name: user_stripes}
model: {name: user_mlp}
train: {epochs: 1, batch_size: 32, eval_every: 0}
methods:
  baseline: {}
  halfmix: {method: user_halfmix, lam: 0.7}
seeds: [0]
device: cpu
evaluations:
  clean: {}
  user_confidence: {}
  confidence_x1: {evaluation: user_confidence, scale: 1.0}
  ood: {near: [{name: synthetic, label: syn, params: {num_classes: 4, size: 16, train_size: 10, test_size: 64}}],
        far: [gaussian], scores: [msp, user_centroid]}
  corruptions: {corruptions: [user_invert, contrast], severities: [1, 5]}
'''


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutmix_bench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A folder outside the package holding the user's plug-in file and suite."""
    (tmp_path / "my_plugins.py").write_text(PLUGIN)
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(SUITE))
    return tmp_path


def test_every_plugin_kind_runs_through_the_cli_with_two_workers(user_repo: Path) -> None:
    result = cli("run", "suite.yaml", "--jobs", "2", "--set", "output_dir=out", cwd=user_repo)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = pd.read_csv(user_repo / "out" / "results.csv")
    assert set(rows["method"]) == {"baseline", "halfmix"}
    assert set(rows["model"]) == {"user_mlp"} and set(rows["dataset"]) == {"user_stripes"}
    confidence = rows[rows["metric"] == "mean_confidence"].set_index(["method", "evaluation"])["value"]
    for method in ("baseline", "halfmix"):  # the same evaluation under two labels, different parameters
        assert confidence[method, "user_confidence"] == pytest.approx(100 * confidence[method, "confidence_x1"])
    auroc = rows[(rows["evaluation"] == "ood") & (rows["metric"] == "auroc")]
    assert set(auroc["score"]) == {"msp", "user_centroid"} and auroc["value"].notna().all()
    report = (user_repo / "out" / "report.md").read_text()
    assert "## Mean confidence\n\n2 rows from 2 runs" in report  # the label that is the evaluation's name
    assert "## Mean confidence (`confidence_x1`)\n\n2 rows from 2 runs" in report
    invert = rows[(rows["metric"] == "top1_err") & (rows["subset"] == "user_invert")]
    assert sorted(invert["level"]) == [1, 1, 5, 5] and set(rows.loc[rows["metric"] == "extra_err", "cells"]) == {2}
    assert re.search(r"^\| Invert +\|", report, re.M) and re.search(r"^\| Contrast +\|", report, re.M)


def test_a_plugin_corruption_is_generated_by_two_worker_processes(user_repo: Path) -> None:
    """`cutmix-bench corrupt --plugin`: the spawned corruption workers import the plug-in file too, and the
    files equal a one-process generation byte for byte."""
    for workers in ("1", "2"):
        result = cli("corrupt", "--plugin", "my_plugins.py", "--dataset", "user_stripes", "--out", f"c{workers}",
                     "--corruptions", "user_invert,contrast", "--workers", workers, cwd=user_repo)
        assert result.returncode == 0, result.stderr[-2000:]
    one, two = (np.load(user_repo / f"c{w}" / "user_invert.npy") for w in "12")
    assert one.shape == (5 * 64, 16, 16, 3) and np.array_equal(one, two)
    assert not np.array_equal(one[:64], one[-64:])  # severity 1 and 5 differ


def test_list_shows_a_plugin_given_on_the_command_line(user_repo: Path) -> None:
    result = cli("list", "--plugin", "my_plugins.py", cwd=user_repo)
    assert result.returncode == 0, result.stderr
    assert "user_halfmix" in result.stdout and "user_mlp" in result.stdout and "user_stripes" in result.stdout
    # declared at registration: display name and reference; the description is the class docstring by default
    lines = result.stdout.splitlines()
    at = lines.index("  user_halfmix     HalfMix: Mixup with lam fixed at `lam`")
    assert lines[at + 1].strip() == "A user, 2026 (no code)"
    assert "  user_stripes     Class k = horizontal stripes of period k + 2, plus noise" in lines
    assert "  user_invert        extra (reported apart, never in the mCE)" in result.stdout  # after the built-ins
    assert result.stdout.index("saturate") < result.stdout.index("user_invert")


@pytest.mark.parametrize("plugin,expected", [
    ("missing_file.py", "missing_file.py: plug-in file not found"),
    ("no_such_module_xyz", "plugins: no_such_module_xyz: import failed: ModuleNotFoundError"),
    ("broken.py", "import failed: ZeroDivisionError"),
])
def test_a_broken_plugin_is_one_error_line(user_repo: Path, plugin: str, expected: str) -> None:
    (user_repo / "broken.py").write_text("x = 1 / 0\n")
    result = cli("run", "suite.yaml", "--set", f"plugins=[{plugin}]", "--set", "output_dir=out", cwd=user_repo)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cutmix-bench: error:") and expected in lines[0], result.stderr
    assert not (user_repo / "out").exists()


EXECUTOR_PLUGIN = '''
"""A user's executor: the pending runs in this process, one after another, their names written down."""
from cutmix_bench.executors import EXECUTORS


@EXECUTORS.register("inline_log")
class InlineLog:
    local = True

    def __init__(self, config):
        self.config = config

    def execute(self, suite, out, pending, work, jobs, data, wait):
        (out / "inline_log.txt").write_text("".join(f"{name}\\n" for name in pending))
        return work(suite.model_dump(), data=data), {}
'''
SMOKE = Path(__file__).resolve().parents[1] / "suites" / "smoke.yaml"


def test_a_plugin_executor_runs_the_smoke_suite(tmp_path: Path) -> None:
    """Executors are a registry a plug-in extends: the smoke suite (1 epoch, 1 seed, small data and evaluations
    to stay fast) runs through a plug-in executor, which receives every run and the runner's `work`."""
    (tmp_path / "my_executor.py").write_text(EXECUTOR_PLUGIN)
    small = ["--set", "train.epochs=1", "--set", "seeds=[0]", "--set", "data.params.train_size=128",
             "--set", "data.params.test_size=64", "--set", "evaluations={clean: {}, occlusion: {sizes: [0, 16]}}",
             "--set", "output_dir=out", "--set", "plugins=[my_executor.py]"]
    result = cli("run", str(SMOKE), "--executor", "inline_log", *small, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = ["baseline-s0", "cutout-s0", "mixup-s0", "cutmix-s0"]
    assert (tmp_path / "out" / "inline_log.txt").read_text().split() == runs
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(dict.fromkeys(rows["run"])) == runs and set(rows["evaluation"]) == {"train", "clean", "occlusion"}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Failed or unfinished runs" not in report
    plugin = (tmp_path / "my_executor.py").resolve()  # its source is recorded: the file and its content's hash
    source = f"{plugin} (sha256 {hashlib.sha256(plugin.read_bytes()).hexdigest()[:12]})"
    assert json.loads((tmp_path / "out" / "environment.json").read_text())["plugins"] == {str(plugin): source}
    assert re.search(rf"^\| \*\*Plug-ins\*\* +\| `{re.escape(str(plugin))}`: {re.escape(source)} +\|$", report, re.M)

    unknown = cli("run", str(SMOKE), "--executor", "nowhere", *small, cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == ("cutmix-bench: error: executor.name: unknown executor 'nowhere'; expected one "
                                      "of inline_log, local, slurm")


def test_a_plugin_from_an_installed_distribution_records_its_name_and_version() -> None:
    import importlib
    from importlib.metadata import version

    from cutmix_bench.plugins import plugin_source

    assert plugin_source(importlib.import_module("yaml")) == f"PyYAML {version('PyYAML')}"


def test_the_report_shows_a_method_label_by_its_registered_display_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from cutmix_bench.evaluations.tables import display_name
    from cutmix_bench.methods import METHODS
    from cutmix_bench.registry import About

    monkeypatch.setitem(METHODS._factories, "user_x", object)  # as a plug-in's registration leaves them
    monkeypatch.setitem(METHODS._about, "user_x", About("User X"))
    assert display_name("user_x") == "User X" and display_name("cutmix") == "CutMix"
    assert display_name("a_label_of_my_own") == "a_label_of_my_own"
