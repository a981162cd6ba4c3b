"""The bad-input catalogue: each mistake gives one clear line naming the key or path, exit status 2,
no traceback, and leaves earlier results untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from cutmix_bench.cli import main

from helpers import REPO, tiny_suite

SMOKE = str(REPO / "suites" / "smoke.yaml")


def write_npz(root: Path, x: np.ndarray, y: np.ndarray, classes: int | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        np.savez(root / f"{split}.npz", x=x, y=y)
    if classes:
        (root / "classes.txt").write_text("\n".join(f"c{i}" for i in range(classes)))
    return root


def make_case(name: str, tmp: Path) -> tuple[list[str], str]:
    """(command line, text the error line must contain) for catalogue entry `name`."""
    images = np.zeros((8, 32, 32, 3), np.uint8)
    labels = np.arange(8) % 2
    cases = {
        "yaml syntax": lambda: (["run", _write(tmp, "name: [unclosed\n")], "YAML syntax error"),
        "top level not a mapping": lambda: (["run", _write(tmp, "- a\n- b\n")], "expected a mapping"),
        "suite file missing": lambda: (["run", str(tmp / "nope.yaml")], "nope.yaml: suite file not found"),
        "unknown top-level key": lambda: (["run", SMOKE, "--set", "bogus=1"], "bogus"),
        "unknown nested key": lambda: (["run", SMOKE, "--set", "train.epochz=1"], "train.epochz"),
        "wrong type": lambda: (["run", SMOKE, "--set", "train.epochs=many"], "train.epochs"),
        "out of range": lambda: (["run", SMOKE, "--set", "train.epochs=0"], "train.epochs"),
        "empty seeds": lambda: (["run", SMOKE, "--set", "seeds=[]"], "seeds"),
        "negative subset": lambda: (["run", SMOKE, "--set", "data.train_subset=-5"], "data.train_subset"),
        "alpha <= 0": lambda: (["run", SMOKE, "--set", "methods.cutmix.alpha=-1"], "methods.cutmix: alpha must be > 0"),
        "probability > 1": lambda: (["run", SMOKE, "--set", "methods.cutmix.prob=1.5"], "methods.cutmix: prob"),
        "cutout size 0": lambda: (["run", SMOKE, "--set", "methods.cutout.size=0"], "methods.cutout: size"),
        "unknown method parameter": lambda: (["run", SMOKE, "--set", "methods.cutmix.beta=1"],
                                             "methods.cutmix.beta: unknown parameter"),
        "unknown method": lambda: (["run", SMOKE, "--set", "methods.fancymix={}"], "methods.fancymix: unknown method"),
        "unknown model": lambda: (["run", SMOKE, "--set", "model.name=resnet9000"], "model.name: unknown model"),
        "unknown dataset": lambda: (["run", SMOKE, "--set", "data.name=mnist9"], "data.name: unknown dataset"),
        "unknown dataset parameter": lambda: (["run", SMOKE, "--set", "data.name=cifar100", "--set", "data.root=."],
                                              "data.params.num_classes: unknown parameter"),
        "unknown evaluation": lambda: (["run", SMOKE, "--set", "evaluations.bogus={}"],
                                       "evaluations.bogus: unknown evaluation"),
        "override of a missing key": lambda: (["run", SMOKE, "--set", "train.optimizer.nope.deeper=1"],
                                              "train.optimizer.nope"),
        "override without =": lambda: (["run", SMOKE, "--set", "train.epochs"], "expected key.path=value"),
        "missing data root": lambda: (["run", str(tiny_suite(tmp, data={"name": "cifar100", "root": str(
            tmp / "no-such-dir")}))], "no-such-dir"),
        "npz wrong shape": lambda: (_npz_suite(tmp, write_npz(tmp / "d", np.zeros((8, 32, 32), np.uint8), labels)),
                                    "images must have shape [N, H, W, C]"),
        "npz wrong dtype": lambda: (_npz_suite(tmp, write_npz(tmp / "d", images.astype(np.float32), labels)),
                                    "images must be uint8"),
        "npz label out of range": lambda: (_npz_suite(tmp, write_npz(tmp / "d", images, labels + 5, classes=3)),
                                           "labels must be in [0, 3)"),
        "npz not a zip": lambda: (_npz_suite(tmp, _garbage_npz(tmp / "d")), "not a readable .npz"),
        "output dir not writable": lambda: (["run", SMOKE, "--set", f"output_dir={_file(tmp)}/sub"],
                                            "output_dir"),
        "jobs 0": lambda: (["run", SMOKE, "--jobs", "0"], "--jobs"),
        "cuda without gpu": lambda: (["run", SMOKE, "--set", "device=cuda"], "device: 'cuda' requested"),
    }
    return cases[name]()


def _write(tmp: Path, text: str) -> str:
    path = tmp / "suite.yaml"
    path.write_text(text)
    return str(path)


def _file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("")
    return path


def _garbage_npz(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        (root / f"{split}.npz").write_bytes(b"garbage")
    return root


def _npz_suite(tmp: Path, root: Path) -> list[str]:
    return ["run", str(tiny_suite(tmp, data={"name": "npz", "root": str(root)}))]


CASES = [
    "yaml syntax", "top level not a mapping", "suite file missing", "unknown top-level key", "unknown nested key",
    "wrong type", "out of range", "empty seeds", "negative subset", "alpha <= 0", "probability > 1", "cutout size 0",
    "unknown method parameter", "unknown method", "unknown model", "unknown dataset", "unknown dataset parameter",
    "unknown evaluation",
    "override of a missing key", "override without =", "missing data root", "npz wrong shape", "npz wrong dtype",
    "npz label out of range", "npz not a zip", "output dir not writable", "jobs 0", "cuda without gpu",
]


@pytest.fixture
def finished_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[Path, str]:
    """Earlier results in results/smoke under the cwd (the default output dir) with their hashes."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results" / "smoke"
    out.mkdir(parents=True)
    for name in ("results.csv", "report.md"):
        (out / name).write_text(f"earlier {name}\n")
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gives_one_clear_line(name: str, tmp_path: Path, finished_results: dict[Path, str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if name == "cuda without gpu" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    argv, expected = make_case(name, tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("cutmix-bench: error: ") and expected in err[0], err[0]
    for path, digest in finished_results.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    from cutmix_bench.errors import BenchError

    with pytest.raises(BenchError, match="train.epochs"):
        main(["--debug", "run", SMOKE, "--set", "train.epochs=0"])


def test_checkpoint_of_another_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Rerunning a run folder under another setup fails that run (exit 1) with one log line, no
    traceback: first the recorded setup differs; without that record, the checkpoint's shapes do."""
    suite = tiny_suite(tmp_path, methods={"baseline": {}}, train={"epochs": 1, "threads": 1, "batch_size": 64})
    assert main(["run", str(suite)]) == 0
    run_dir = tmp_path / "out" / "runs" / "baseline-s0"
    (run_dir / "DONE").unlink()
    (run_dir / "eval" / "train.csv").unlink()
    assert main(["run", str(suite), "--set", "model.params.width=4"]) == 1
    assert "baseline-s0: this run was started with another" in capsys.readouterr().err + caplog.text
    caplog.clear()
    (run_dir / "setup.json").unlink()
    assert main(["run", str(suite), "--set", "model.params.width=4"]) == 1
    err = capsys.readouterr().err + caplog.text
    assert "last.ckpt: checkpoint is of another model" in err and "Traceback" not in err
