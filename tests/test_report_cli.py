"""The command line around the report, end to end on a tiny suite: `run` records what the report needs in
the results directory, `report RESULTS_DIR` rebuilds the same bytes from it, `--dry-run` tells the state
of every run without training, `list` describes every component."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from PIL import Image

from cutmix_bench.cli import main
from cutmix_bench.data import DATASETS
from cutmix_bench.evaluations import EVALUATIONS
from cutmix_bench.methods import METHODS
from cutmix_bench.models import MODELS
from cutmix_bench.ood.scores import SCORES

from helpers import REPO, tiny_suite

EVALS = {"clean": {}, "occlusion": {"sizes": [0, 16], "max_images": 64}}


def test_run_records_what_the_report_needs_and_report_rebuilds_it(tmp_path: Path, capsys) -> None:
    suite = tiny_suite(tmp_path, evaluations=EVALS)
    out = tmp_path / "out"
    assert main(["run", str(suite), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert not (out / "runs").exists()  # a dry run trains nothing
    assert re.search(r"baseline-s0\s+to train", plan) and re.search(r"cutmix-s0\s+to train", plan)
    assert "512 train / 256 test images" in plan and "64 images x 2 modes x 2 sizes" in plan
    assert re.search(r"estimate: \d+ s \(range \d+ s to \d+ s\) with 1 worker\(s\) \(2 run\(s\) to train", plan)

    assert main(["run", str(suite)]) == 0
    report = (out / "report.md").read_text()
    env = json.loads((out / "environment.json").read_text())
    assert {"device", "torch", "lightning", "cuda", "commit", "started"} <= set(env)
    infos = json.loads((out / "runs.json").read_text())
    assert set(infos) == {"baseline-s0", "cutmix-s0"}
    for info in infos.values():
        assert info["train_images"] == 512 and info["test_images"] == 256 and info["parameters"] > 0
        assert set(info["seconds"]) == {"train", "clean", "occlusion"} and min(info["seconds"].values()) > 0
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["run", "method", "seed", "epoch", "train_loss", "train_acc", "test_acc", "lr",
                                    "seconds"]
    assert len(curves) == 2 * 3
    assert "512 train / 256 test images" in report and f"{infos['cutmix-s0']['parameters']:,} parameters" in report
    assert f"torch {env['torch']}" in report and env["commit"] in report and "training " in report
    with Image.open(out / "figures" / "training_inputs.png") as image:  # 2 methods x 6 images of 1.25 x 1.55 in
        assert image.size == (round(6 * 1.25 * 120), round(2 * 1.55 * 120))

    before = (out / "report.md").read_bytes()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_bytes() == before
    assert main(["report", str(suite)]) == 0  # from the suite file: results.csv re-collected, same report
    assert (out / "report.md").read_bytes() == before

    capsys.readouterr()
    started = time.perf_counter()
    assert main(["run", str(suite), "--dry-run"]) == 0
    assert time.perf_counter() - started < 30  # generous for a loaded CI machine; ~1 s on an idle CPU
    plan = capsys.readouterr().out
    assert re.search(r"baseline-s0\s+finished", plan) and "estimate: 0 s" in plan


def test_compare_command_writes_the_file(tmp_path: Path, capsys) -> None:
    from test_report import SUITE, results_table, write_dir

    a = write_dir(tmp_path / "a", SUITE, results_table([0, 1, 2]))
    b = write_dir(tmp_path / "b", SUITE, results_table([0, 1, 2]))
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "c.md")]) == 0
    text = (tmp_path / "c.md").read_text()
    assert "| Clean top-1 error (%) ↓ | CutMix" in text and "+0.00 [" in text  # B = A: zero, inside its interval
    assert capsys.readouterr().out.strip() == f"comparison: {tmp_path / 'c.md'}"


def test_list_describes_every_component(capsys) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for registry in (METHODS, MODELS, DATASETS, EVALUATIONS, SCORES):
        for name in registry.names():
            line = next(line for line in lines if line.split()[:1] == [name])
            description = line.split(None, 1)[1]
            assert description != "(no description)" and len(description) > 20, line
    assert any("CutMix (Yun et al., ICCV 2019)" in line for line in lines)
    for name in METHODS.names():  # each method's reference (paper, official code) on the line after it
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        assert lines[at + 1].strip() == METHODS.get(name).reference, name
    corruptions = lines[next(i for i, line in enumerate(lines) if line.startswith("corruptions")) + 1:]
    assert sum(line.split()[-1] in ("noise", "blur", "weather", "digital") for line in corruptions) == 15


def test_dry_run_imports_no_slow_module(tmp_path: Path) -> None:
    """--dry-run answers in seconds because it imports neither Lightning, nor matplotlib, nor scipy.stats,
    nor torch._dynamo (torch.optim's constructor pulls that in: 2 s); measured wall time is too noisy on a
    shared CI machine to assert, the imports are not."""
    suite = tiny_suite(tmp_path, evaluations=EVALS)
    code = ("import sys; from cutmix_bench.cli import main; main(['run', sys.argv[1], '--dry-run']); "
            "print(sorted(m for m in ('pytorch_lightning', 'matplotlib', 'scipy.stats', 'torch._dynamo') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(suite)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert "estimate:" in result.stdout and result.stdout.strip().splitlines()[-1] == "[]"


def test_report_of_a_suite_keeps_the_failed_runs(tmp_path: Path, capsys) -> None:
    """`report SUITE` takes the same end-of-suite step as `run` (finish.finish_suite): a failed run stays in
    failures.json and in the report's failed-runs section, as `status` shows it (it wrote `{}` before)."""
    from cutmix_bench.rundir import Run, RunDir
    from cutmix_bench.status import status_table
    from cutmix_bench.suite_file import load_suite

    suite = tiny_suite(tmp_path)
    failed = RunDir.of(tmp_path / "out", Run("cutmix", 0))
    failed.path.mkdir(parents=True)
    failed.failed.write_text("RuntimeError: out of memory\n\ntraceback\n")
    assert main(["report", str(suite)]) == 0
    assert capsys.readouterr().out == f"report: {tmp_path / 'out' / 'report.md'}\n"
    failures = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert failures == {"baseline-s0": "not finished: not run yet, or still running "
                                       "(see `cutmix-bench status RESULTS_DIR`)",
                        "cutmix-s0": "RuntimeError: out of memory"}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Failed or unfinished runs" in report and "- `cutmix-s0`: RuntimeError: out of memory" in report
    assert re.search(r"cutmix-s0\s+failed\s+RuntimeError: out of memory", status_table(load_suite(suite)))
    assert main(["report", str(tmp_path / "out")]) == 0  # `report DIR` reads the same failures back
    assert (tmp_path / "out" / "report.md").read_text() == report
