"""The bad-input catalogue: each mistake, through the CLI, gives exactly one `cutmix-bench: error:` line naming
the key or path and what was expected, the exit status (2 for bad input, 1 for a failed run or a failed write),
no traceback, and leaves earlier finished results byte-identical.

Cheap by design: one tiny finished output folder (2 runs, 1 epoch, 128 synthetic images) is trained once per
module and copied into each test; most cases stop at validation, before any data is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from cutmix_bench.cli import main

from helpers import REPO

SMOKE = str(REPO / "suites" / "smoke.yaml")

BASE = {
    "name": "tiny",
    "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 128, "test_size": 64}},
    "model": {"name": "tiny", "params": {"width": 4}},
    "train": {"epochs": 1, "batch_size": 32, "threads": 1, "optimizer": {"lr": 0.05}},
    "methods": {"baseline": {}, "cutmix": {"alpha": 1.0}},
    "seeds": [0],
    "evaluations": {"clean": {}, "ood": {"near": [], "far": ["gaussian"], "scores": ["msp"], "max_images": 64}},
}


def write_suite(path: Path, output_dir: Path, **changes: object) -> str:
    suite = {**BASE, "output_dir": str(output_dir), **changes}
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def finished_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    assert main(["run", write_suite(tmp / "suite.yaml", tmp / "out")]) == 0
    return tmp / "out"


@dataclass
class Bench:
    """A test's copy of the finished folder (`out`), its suite file, and a scratch folder for new outputs."""

    tmp: Path
    out: Path
    suite: str

    def variant(self, output_dir: Path | None = None, **changes: object) -> str:
        """A suite file like the finished one, with top-level keys replaced (and by default the same output)."""
        return write_suite(self.tmp / "variant.yaml", output_dir or self.out, **changes)

    @property
    def fresh(self) -> Path:
        return self.tmp / "fresh"

    def text(self, name: str, content: str | bytes) -> str:
        path = self.tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(path)


@pytest.fixture
def bench(finished_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bench:
    from cutmix_bench.methods import METHODS

    monkeypatch.chdir(tmp_path)  # suites without output_dir write results/<name> here
    monkeypatch.setattr(METHODS, "_factories", dict(METHODS._factories))  # a case's plug-in methods go with it
    out = tmp_path / "out"
    shutil.copytree(finished_dir, out)
    return Bench(tmp_path, out, write_suite(tmp_path / "suite.yaml", out))


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """mount(name, size, readonly): a small tmpfs (a real full disk, a real read-only file system), root only."""
    mounted: list[Path] = []

    def make(name: str, size: str = "64k", readonly: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir(parents=True, exist_ok=True)
        options = f"size={size}" + (",ro" if readonly else "")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                          capture_output=True).returncode:
            pytest.skip("needs permission to mount a tmpfs (root)")
        mounted.append(point)
        return point

    yield make
    for point in reversed(mounted):
        subprocess.run(["umount", str(point)], capture_output=True)


def write_npz(root: Path, x: np.ndarray, y: np.ndarray, classes: int | None = None,
              test: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "train.npz", x=x, y=y)
    np.savez(root / "test.npz", x=test[0] if test else x, y=test[1] if test else y)
    if classes:
        (root / "classes.txt").write_text("\n".join(f"c{i}" for i in range(classes)))
    return root


def _garbage_npz(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        (root / f"{split}.npz").write_bytes(b"garbage")
    return root


def _file(b: Bench) -> Path:
    path = b.tmp / "a-file"
    path.write_text("")
    return path


def _npz(b: Bench, root: Path, **changes: object) -> list[str]:
    """A fresh output folder on npz data (the finished folder's setup has synthetic data)."""
    return ["run", b.variant(b.fresh, data={"name": "npz", "root": str(root)},
                             train={**BASE["train"], "batch_size": 4}, methods={"baseline": {}}, **changes)]


RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
LABELS = np.arange(8) % 2


def _unfinish(b: Bench, run: str) -> Path:
    """Turn a finished run back into one interrupted after training."""
    run_dir = b.out / "runs" / run
    (run_dir / "DONE").unlink()
    return run_dir


def _object_scores(b: Bench) -> list[str]:
    junk = np.array([{}, None], dtype=object)
    np.savez(b.out / "runs" / "baseline-s0" / "ood_scores.npz", in__msp=junk, gaussian__msp=junk)
    return ["report", b.suite]


def _full_disk(b: Bench, mount: Callable[..., Path]) -> Path:
    return mount("full", "16k")  # room for a run's setup and log, not for its checkpoint


# name -> (command line, text the error line must contain, exit status); each builder may prepare files.
Case = Callable[[Bench, Callable[..., Path]], tuple[list[str], str, int]]
CASES: dict[str, Case] = {
    # suite files and overrides
    "yaml syntax": lambda b, m: (["run", b.text("s.yaml", "name: [unclosed\n")], "YAML syntax error", 2),
    "top level not a mapping": lambda b, m: (["run", b.text("s.yaml", "- a\n- b\n")], "expected a mapping", 2),
    "suite file missing": lambda b, m: (["run", str(b.tmp / "nope.yaml")], "nope.yaml: suite file not found", 2),
    "suite file is a folder": lambda b, m: (["run", str(b.tmp)], "is a directory; expected a suite file", 2),
    "suite file is /dev/null": lambda b, m: (["run", "/dev/null"], "/dev/null: is a device, not a regular file", 2),
    "suite file is a named pipe": lambda b, m: (["run", _fifo(b)], "is a named pipe, not a regular file", 2),
    "suite file empty": lambda b, m: (["run", b.text("s.yaml", "")], "s.yaml: the suite file is empty", 2),
    "suite file of 2 MB": lambda b, m: (["run", b.text("s.yaml", b"#" * 2_000_000)],
                                        "is 2,000,000 bytes, more than the limit of 1,048,576 bytes", 2),
    "plug-in file is a folder": lambda b, m: ((b.tmp / "plug.py").mkdir() or ["run", b.suite, "--set",
                                              f"plugins=[{b.tmp / 'plug.py'}]"], "plug.py: is a directory", 2),
    "plug-in file empty": lambda b, m: (["run", b.suite, "--set", f"plugins=[{b.text('plug.py', '')}]"],
                                        "plugins: ", 2),
    "plug-in exits at import": lambda b, m: (["run", b.suite, "--set", f"plugins=[{b.text('plug.py', 'exit(3)')}]"],
                                             "plug.py: the plug-in exited at import (SystemExit(3))", 2),
    "suite not UTF-8": lambda b, m: (["run", b.text("s.yaml", b"name: caf\xe9\xff\n")], "not a UTF-8 text file", 2),
    "duplicate top-level key": lambda b, m: (["run", b.text("s.yaml", "name: a\nseeds: [0]\nname: b\n")],
                                             "duplicate key 'name'", 2),
    "duplicate nested key": lambda b, m: (["run", b.text("s.yaml", "name: a\nmethods:\n  cutmix: {}\n  cutmix: {}\n")],
                                          "duplicate key 'cutmix'", 2),
    "duplicate key in --set value": lambda b, m: (["run", b.suite, "--set", "methods.cutmix={alpha: 1, alpha: 2}"],
                                                  "--set methods.cutmix: value", 2),
    "unknown top-level key": lambda b, m: (["run", SMOKE, "--set", "bogus=1"], "bogus", 2),
    "unknown nested key": lambda b, m: (["run", SMOKE, "--set", "train.epochz=1"], "train.epochz", 2),
    "wrong type": lambda b, m: (["run", SMOKE, "--set", "train.epochs=many"], "train.epochs", 2),
    "out of range": lambda b, m: (["run", SMOKE, "--set", "train.epochs=0"], "train.epochs", 2),
    "bad precision": lambda b, m: (["run", SMOKE, "--set", "train.precision=fp8"], "train.precision", 2),
    "eval batch size 0": lambda b, m: (["run", SMOKE, "--set", "eval_batch_size=0"], "eval_batch_size", 2),
    "empty seeds": lambda b, m: (["run", SMOKE, "--set", "seeds=[]"], "seeds", 2),
    "duplicate seeds": lambda b, m: (["run", SMOKE, "--set", "seeds=[0, 0]"], "seeds: seed 0 is listed twice", 2),
    "negative seed": lambda b, m: (["run", SMOKE, "--set", "seeds=[-1]"], "seeds: seed -1 is out of range", 2),
    "huge seed": lambda b, m: (["run", SMOKE, "--set", "seeds=[1099511627776]"], "seeds: seed 1099511627776", 2),
    "negative subset": lambda b, m: (["run", SMOKE, "--set", "data.train_subset=-5"], "data.train_subset", 2),
    "alpha <= 0": lambda b, m: (["run", SMOKE, "--set", "methods.cutmix.alpha=-1"],
                                "methods.cutmix: alpha must be > 0", 2),
    "probability > 1": lambda b, m: (["run", SMOKE, "--set", "methods.cutmix.prob=1.5"], "methods.cutmix: prob", 2),
    "cutout size 0": lambda b, m: (["run", SMOKE, "--set", "methods.cutout.size=0"], "methods.cutout: size", 2),
    "alpha inf": lambda b, m: (["run", SMOKE, "--set", "methods.cutmix.alpha=.inf"],
                               "methods.cutmix: alpha must be a finite number, got inf", 2),
    "probability yes": lambda b, m: (["run", SMOKE, "--set", "methods.cutmix.prob=yes"],
                                     "methods.cutmix: prob must be a finite number, got True", 2),
    "augmix severity 11": lambda b, m: (["run", SMOKE, "--set", "methods.augmix={severity: 11}"],
                                        "methods.augmix: severity must be an integer in [1, 10], got 11", 2),
    "augmix switch as text": lambda b, m: (["run", SMOKE, "--set", "methods.augmix={jsd: 'no'}"],
                                           "methods.augmix: jsd must be true or false, got 'no'", 2),
    "fmix switch as a number": lambda b, m: (["run", SMOKE, "--set", "methods.fmix={reformulate: 2}"],
                                             "methods.fmix: reformulate must be true or false, got 2", 2),
    "hidden layer listed twice": lambda b, m: (["run", SMOKE, "--set", "methods.manifold_mixup={layers: [1, 1]}"],
                                               "layers must be a non-empty list of distinct integers", 2),
    "resizemix scope NaN": lambda b, m: (["run", SMOKE, "--set", "methods.resizemix={scope_max: .nan}"],
                                         "scope_max must be a finite number, got nan", 2),
    "smoothing as text": lambda b, m: (["run", SMOKE, "--set", "methods.cutmix.smoothing=lots"],
                                       "smoothing must be a finite number, got 'lots'", 2),
    "ece bins 1.5": lambda b, m: (["run", SMOKE, "--set", "evaluations.clean.ece_bins=1.5"],
                                  "evaluations.clean: ece_bins must be an integer >= 1, got 1.5", 2),
    "adversarial seed -1": lambda b, m: (["run", SMOKE, "--set", "evaluations.adversarial.seed=-1"],
                                         "evaluations.adversarial: seed must be an integer in [0, 4294967295]", 2),
    "adversarial switch as text": lambda b, m: (["run", SMOKE, "--set", "evaluations.adversarial.random_start=maybe"],
                                                "random_start must be true or false, got 'maybe'", 2),
    "corruption workers 1.5": lambda b, m: (["run", SMOKE, "--set", "evaluations.corruptions.workers=1.5"],
                                            "evaluations.corruptions: workers must be an integer >= 1", 2),
    "in-between seed as text": lambda b, m: (["run", SMOKE, "--set", "evaluations.inbetween.seed=abc"],
                                             "evaluations.inbetween: seed must be an integer", 2),
    "milestone beyond the epochs": lambda b, m: (["run", SMOKE, "--set", "train.schedule={name: multistep, "
                                                  "milestones: [5, 12]}"], "12 is not an epoch in [1, 9]", 2),
    "milestones out of order": lambda b, m: (["run", SMOKE, "--set", "train.schedule={name: multistep, "
                                              "milestones: [5, 3]}"], "expected distinct epochs in increasing", 2),
    "milestones with cosine": lambda b, m: (["run", SMOKE, "--set", "train.schedule.milestones=[5]"],
                                            "only used by schedule multistep, not cosine", 2),
    "warm-up as long as training": lambda b, m: (["run", SMOKE, "--set", "train.schedule.warmup_epochs=10"],
                                                 "schedule.warmup_epochs 10 is not below epochs 10", 2),
    "nesterov without momentum": lambda b, m: (["run", SMOKE, "--set", "train.optimizer.momentum=0"],
                                               "Nesterov momentum needs optimizer.momentum > 0", 2),
    "unknown method parameter": lambda b, m: (["run", SMOKE, "--set", "methods.cutmix.beta=1"],
                                              "methods.cutmix.beta: unknown parameter", 2),
    "unknown method": lambda b, m: (["run", SMOKE, "--set", "methods.fancymix={}"],
                                    "methods.fancymix: unknown method", 2),
    "no methods": lambda b, m: (["run", b.variant(methods={})], "methods: expected at least one method", 2),
    "unknown model": lambda b, m: (["run", SMOKE, "--set", "model.name=resnet9000"], "model.name: unknown model", 2),
    "unknown dataset": lambda b, m: (["run", SMOKE, "--set", "data.name=mnist9"], "data.name: unknown dataset", 2),
    "unknown dataset parameter": lambda b, m: (["run", SMOKE, "--set", "data.name=cifar100", "--set", "data.root=."],
                                               "data.params.num_classes: unknown parameter", 2),
    "unknown evaluation": lambda b, m: (["run", SMOKE, "--set", "evaluations.bogus={}"],
                                        "evaluations.bogus: unknown evaluation", 2),
    "unknown evaluation parameter": lambda b, m: (["run", SMOKE, "--set", "evaluations.occlusion={bogus: 1}"],
                                                  "evaluations.occlusion.bogus: unknown parameter", 2),
    "override of a missing key": lambda b, m: (["run", SMOKE, "--set", "train.optimizer.nope.deeper=1"],
                                               "train.optimizer.nope", 2),
    "override without =": lambda b, m: (["run", SMOKE, "--set", "train.epochs"], "expected key.path=value", 2),
    "override value not YAML": lambda b, m: (["run", SMOKE, "--set", "train.epochs=[1"], "is not valid YAML", 2),
    "jobs 0": lambda b, m: (["run", SMOKE, "--jobs", "0"], "--jobs", 2),
    "cuda without gpu": lambda b, m: (["run", SMOKE, "--set", "device=cuda"], "device: 'cuda' requested", 2),
    # names that become paths
    "label escapes the output dir": lambda b, m: (_label(b, "../../../escaped"),
                                                  "methods: '../../../escaped' is not a valid name", 2),
    "label with a slash": lambda b, m: (_label(b, "a/b"),
                                        "methods: 'a/b' is not a valid name", 2),
    "label of 300 characters": lambda b, m: (_label(b, "x" * 300),
                                             "(302 characters) is not a valid name", 2),
    "label of 65 characters": lambda b, m: (_label(b, "y" * 65),
                                            "is not a valid name; expected 1-64 characters", 2),
    "hidden label": lambda b, m: (_label(b, ".hidden"),
                                  "'.hidden' is not a valid name", 2),
    "label with a space": lambda b, m: (_label(b, "my method"),
                                        "'my method' is not a valid name", 2),
    "suite name escapes results/": lambda b, m: (["run", b.text("s.yaml", yaml.safe_dump({**BASE, "name": "../../x"}))],
                                                 "name: '../../x' is not a valid name", 2),
    "suite name with a slash": lambda b, m: (["run", b.suite, "--set", "name=a/b"], "name: 'a/b' is not a valid", 2),
    # a finished (or started) folder under another setup
    "finished run, other epochs": lambda b, m: (["run", b.suite, "--set", "train.epochs=2"],
                                                "train.epochs: 1 (recorded) vs 2 (requested)", 2),
    "finished run, other method parameter": lambda b, m: (["run", b.suite, "--set", "methods.cutmix.alpha=0.2"],
                                                          "methods.cutmix.alpha: 1.0 (recorded) vs 0.2 (requested)", 2),
    "finished run, other method": lambda b, m: (["run", b.suite, "--set", "methods.cutmix.method=mixup"],
                                                "methods.cutmix.method: \"cutmix\" (recorded) vs \"mixup\"", 2),
    "finished run, other data": lambda b, m: (["run", b.suite, "--set", "data.params.train_size=100"],
                                              "data.params.train_size: 128 (recorded) vs 100 (requested)", 2),
    "finished run, other subset": lambda b, m: (["run", b.suite, "--set", "data.train_subset=100"],
                                                "data.train_subset: null (recorded) vs 100 (requested)", 2),
    "finished run, other model": lambda b, m: (["run", b.suite, "--set", "model.params.width=8"],
                                               "model.params.width: 4 (recorded) vs 8 (requested)", 2),
    "added seeds, other lr": lambda b, m: (["run", b.suite, "--set", "seeds=[0, 1]", "--set", "train.optimizer.lr=0.1"],
                                           "train.optimizer.lr: 0.05 (recorded) vs 0.1 (requested)", 2),
    "both ways out are named": lambda b, m: (["run", b.suite, "--set", "train.epochs=3"],
                                             "use another output_dir, or delete those run folders", 2),
    "started run, other setup": lambda b, m: (_unfinish(b, "cutmix-s0") and ["run", b.suite, "--set",
                                              "train.batch_size=16"], "(baseline-s0, cutmix-s0)", 2),
    "report under another setup": lambda b, m: (["report", b.suite, "--set", "train.epochs=2"],
                                                "train.epochs: 1 (recorded) vs 2 (requested)", 2),
    "damaged setup.json": lambda b, m: ((b.out / "runs" / "cutmix-s0" / "setup.json").write_text("{garbage")
                                        and ["run", b.suite], "setup.json: not a valid setup record", 2),
    # damaged files a command reads
    "damaged log.csv": lambda b, m: ((_unfinish(b, "cutmix-s0") / "log.csv").write_text("epoch,train_loss\n0,1.0\n")
                                     and ["run", b.suite], "log.csv: damaged training log (missing", 2),
    "binary log.csv": lambda b, m: ((_unfinish(b, "cutmix-s0") / "log.csv").write_bytes(b"\x00\xff\xfe\x00" * 9)
                                    and ["run", b.suite], "log.csv: ", 2),
    "report: garbage metrics.csv": lambda b, m: ((b.out / "runs" / "cutmix-s0" / "metrics.csv").write_bytes(
        b"\xff\xfe\x00garbage\n\x00") and ["report", b.suite], "cutmix-s0/metrics.csv: ", 2),
    "report: metrics.csv without value": lambda b, m: ((b.out / "runs" / "cutmix-s0" / "metrics.csv").write_text(
        "run,method\nx,y\n") and ["report", b.suite], "metrics.csv: damaged metrics file (missing column(s) seed", 2),
    "report: text in values": lambda b, m: ((b.out / "runs" / "cutmix-s0" / "metrics.csv").write_text(
        "run,method,seed,evaluation,metric,value\nx,cutmix,0,clean,top1_err,lots\n") and ["report", b.suite],
        "non-numeric values in column value", 2),
    "report: object-array ood_scores.npz": lambda b, m: (_object_scores(b), "ood_scores.npz: unreadable OOD score", 2),
    "report: garbage ood_scores.npz": lambda b, m: ((b.out / "runs" / "baseline-s0" / "ood_scores.npz").write_bytes(
        b"PK\x03\x04junk") and ["report", b.suite], "ood_scores.npz: unreadable OOD score file", 2),
    "report: suite file missing": lambda b, m: (["report", str(b.tmp / "nope.yaml")], "suite file not found", 2),
    # compare: A is the finished folder, B a copy of it (changed where said); A stays byte-identical
    "compare: --out over A's results.csv": lambda b, m: (_compare(b, "--out", str(b.out / "results.csv"), "--force"),
                                                         "results.csv: is a file of the results folder", 2),
    "compare: --out over A's report": lambda b, m: (_compare(b, "--out", str(b.out / "report.md")),
                                                    "report.md: is a file of the results folder", 2),
    "compare: --out inside A": lambda b, m: (_compare(b, "--out", str(b.out / "c.md")),
                                             "is inside the results folder", 2),
    "compare: --out over an existing file": lambda b, m: (_compare(b, "--out", b.text("c.md", "mine")),
                                                          "c.md: exists; pass --force to overwrite it", 2),
    "compare: a folder with itself": lambda b, m: (["compare", str(b.out), str(b.out), "--out", str(b.fresh)],
                                                   "are the same results folder", 2),
    "compare: other datasets": lambda b, m: (_compare(b, dataset="cifar10"),
                                             'different setups (dataset.name: A "synthetic" vs B "cifar10")', 2),
    "compare: other models": lambda b, m: (_compare(b, width=8), "(model.params.width: A 4 vs B 8)", 2),
    "compare: other method parameter": lambda b, m: (_compare(b, alpha=0.5),
                                                     "(methods.cutmix.alpha: A 1.0 vs B 0.5)", 2),
    "compare: no results": lambda b, m: (_compare(b, results="run,method,seed,evaluation,metric,value\n"),
                                         "holds no results (results.csv has no rows)", 2),
    "compare: damaged results.csv": lambda b, m: (_compare(b, results="\x00garbage\n"),
                                                  "results.csv: damaged results table (missing column(s)", 2),
    "compare: damaged suite.json": lambda b, m: (_compare(b, suite="{truncat"), "suite.json: damaged suite record", 2),
    "compare: not a results folder": lambda b, m: (["compare", str(b.out), str(_folder(b)), "--out", str(b.fresh)],
                                                   "not a results directory (no results.csv)", 2),
    "report: damaged results.csv": lambda b, m: ((b.out / "results.csv").write_text("x\n1\n") and ["report",
                                                 str(b.out)], "results.csv: damaged results table", 2),
    # --dry-run refuses what run refuses, with the same line (and writes nothing)
    "dry run: finished run, other epochs": lambda b, m: (["run", b.suite, "--dry-run", "--set", "train.epochs=2"],
                                                         "train.epochs: 1 (recorded) vs 2 (requested)", 2),
    "dry run: damaged setup.json": lambda b, m: ((b.out / "runs" / "cutmix-s0" / "setup.json").write_text("{x")
                                                 and ["run", b.suite, "--dry-run"], "not a valid setup record", 2),
    "dry run: damaged log.csv": lambda b, m: ((_unfinish(b, "cutmix-s0") / "log.csv").write_text("epoch\n0\n")
                                              and ["run", b.suite, "--dry-run"], "log.csv: damaged training log", 2),
    "dry run: model without stages": lambda b, m: (["run", b.suite, "--dry-run", "--set", "methods.feature_cutmix={}"],
                                                   "methods.feature_cutmix: FeatureCutMix layers", 2),
    "dry run: batch larger than the data": lambda b, m: (["run", b.variant(b.fresh, train={**BASE["train"],
                                                          "batch_size": 1000}), "--dry-run"],
                                                         "train.batch_size: 1000 is larger than the training set", 2),
    "dry run: output dir under a file": lambda b, m: (["run", b.suite, "--dry-run", "--set",
                                                       f"output_dir={_file(b)}/sub"], "is not writable", 2),
    "dry run: read-only output dir": lambda b, m: (["run", b.variant(m("ro", readonly=True)), "--dry-run"],
                                                   "is not writable (Read-only file system)", 2),
    # data
    "missing data root": lambda b, m: (["run", b.variant(b.fresh, data={"name": "cifar100", "root": str(
        b.tmp / "no-such-dir")})], "no-such-dir", 2),
    "npz without root": lambda b, m: (["run", b.variant(b.fresh, data={"name": "npz"})], "data.root", 2),
    "npz wrong shape": lambda b, m: (_npz(b, write_npz(b.tmp / "d", np.zeros((8, 32, 32), np.uint8), LABELS)),
                                     "images must have shape [N, H, W, C]", 2),
    "npz wrong dtype": lambda b, m: (_npz(b, write_npz(b.tmp / "d", IMAGES.astype(np.float32), LABELS)),
                                     "images must be uint8", 2),
    "npz label out of range": lambda b, m: (_npz(b, write_npz(b.tmp / "d", IMAGES, LABELS + 5, classes=3)),
                                            "labels must be in [0, 3)", 2),
    "npz not a zip": lambda b, m: (_npz(b, _garbage_npz(b.tmp / "d")), "not a readable .npz", 2),
    "npz of 0 images": lambda b, m: (_npz(b, write_npz(b.tmp / "d", IMAGES[:0], LABELS[:0], classes=2)),
                                     "expected at least one image of at least 1x1 pixels, got shape [0, 32, 32, 3]", 2),
    "npz of 0x0 images": lambda b, m: (_npz(b, write_npz(b.tmp / "d", np.zeros((8, 0, 0, 3), np.uint8), LABELS)),
                                       "got shape [8, 0, 0, 3]", 2),
    "train and test sizes differ": lambda b, m: (_npz(b, write_npz(b.tmp / "d", IMAGES, LABELS, test=(
        IMAGES[:, :28, :28], LABELS))), "train images are [32, 32, 3] (H, W, C) but test images are [28, 28, 3]", 2),
    "constant images": lambda b, m: (_npz(b, write_npz(b.tmp / "d", np.full_like(IMAGES, 7), LABELS)),
                                     "are constant (per-channel std", 2),
    # parameters that can be checked before training
    "batch larger than the training set": lambda b, m: (["run", b.variant(b.fresh, train={**BASE["train"],
                                                         "batch_size": 1000})],
                                                        "train.batch_size: 1000 is larger than the training set", 2),
    "occlusion size larger than the image": lambda b, m: (_sizes(b, "occlusion", "[0, 40]"),
                                                          "evaluations.occlusion.sizes: 40 is larger than the", 2),
    "in-between size larger than the image": lambda b, m: (_sizes(b, "inbetween", "[0, 33]"),
                                                           "evaluations.inbetween.sizes: 33 is larger than the", 2),
    "ODIN temperature NaN": lambda b, m: (["run", b.suite, "--set", "evaluations.ood.scores=[{odin: {temperature: "
                                           ".nan}}]"], "evaluations.ood: scores.odin: odin needs temperature > 0", 2),
    "energy temperature NaN": lambda b, m: (["run", b.suite, "--set", "evaluations.ood.scores=[{energy: {temperature: "
                                             ".nan}}]"], "energy temperature must be > 0", 2),
    "cutout larger than the image": lambda b, m: (["run", b.suite, "--set", "methods.cutout={size: 40}"],
                                                  "methods.cutout: size 40 is larger than the image (32x32)", 2),
    "manifold mixup beyond the model's stages": lambda b, m: (["run", b.suite, "--set", "methods.mm={method: "
                                                               "manifold_mixup, layers: [0, 1]}"],
                                                              "methods.mm: ManifoldMixup layers [0, 1]: the model has "
                                                              "0 stages", 2),
    "feature cutmix on a model without stages": lambda b, m: (["run", b.suite, "--set", "methods.feature_cutmix={}"],
                                                              "methods.feature_cutmix: FeatureCutMix layers", 2),
    "timm model without timm": lambda b, m: (["run", SMOKE, "--set", "model.name=timm:resnet18"], "needs timm", 2),
    # the output folder and the disk
    "output dir under a file": lambda b, m: (["run", SMOKE, "--set", f"output_dir={_file(b)}/sub"], "output_dir", 2),
    "output dir is a file": lambda b, m: (["run", b.variant(_file(b))], "is not writable", 2),
    "read-only output dir": lambda b, m: (["run", b.variant(m("ro", readonly=True))],
                                          "is not writable (Read-only file system)", 2),
    "disk full during a run": lambda b, m: (["run", b.variant(_full_disk(b, m))], "the disk is full", 1),
    "read-only run folder": lambda b, m: (["run", b.suite, "--set", "seeds=[0, 1]"] if m(
        "out/runs/baseline-s1", readonly=True) else [], "baseline-s1", 1),
    "corrupt: disk full": lambda b, m: (_corrupt(b, m("cfull", "8k")),
                                        "contrast.npy: could not write (the disk is full", 1),
    "corrupt: read-only output": lambda b, m: (_corrupt(b, m("cro", readonly=True)),
                                               "could not write (the file system is read-only)", 1),
    "corrupt: unknown corruption": lambda b, m: (["corrupt", "--dataset", "synthetic", "--out", str(b.fresh),
                                                  "--corruptions", "lava"], "unknown corruption(s) ['lava']", 2),
    "corrupt: severity 9": lambda b, m: (["corrupt", "--dataset", "synthetic", "--out", str(b.fresh),
                                          "--severities", "1,9"], "--severities: expected values in", 2),
    "corrupt: severities not numbers": lambda b, m: (_corrupt(b, b.fresh, "--severities", "a,b"),
                                                     "--severities: expected comma-separated", 2),
    "corrupt: 0 workers": lambda b, m: (["corrupt", "--dataset", "synthetic", "--out", str(b.fresh), "--workers", "0"],
                                        "--workers: expected >= 1", 2),
    # runs that fail (exit 1): the others finish, the earlier results stay
    "unreadable checkpoint": lambda b, m: (_bad_checkpoint(b), "baseline-s1: BenchError:", 1),
    "plug-in method: other image size": lambda b, m: (_contract(b, "x[:, :, :16], y"),
                                                      "methods.bad: the method's output breaks its contract on the "
                                                      "first batch: images of shape [32, 3, 16, 32]", 1),
    "plug-in method: labels not summing to 1": lambda b, m: (_contract(b, "x, y * 0.5"),
                                                             "target rows that do not sum to 1 (row 0 sums to 0.5)", 1),
    "plug-in method: NaN labels": lambda b, m: (_contract(b, "x, y * float('nan')"),
                                                "non-finite values (NaN or inf) in the targets", 1),
    "plug-in method: hard labels": lambda b, m: (_contract(b, "x, y.argmax(1)"),
                                                 "targets of shape [32] and dtype torch.int64", 1),
    "finished run, damaged checkpoint, new evaluation": lambda b, m: (_damage(b, "cutmix-s0") and _occlusion(b),
                                                                      "(cutmix-s0; see", 1),
    "diverging training": lambda b, m: (["run", b.variant(b.fresh, methods={"baseline": {}}, train={
        **BASE["train"], "optimizer": {"lr": 1.0e+30}})], "training diverged: non-finite loss", 1),
}


def _damage(b: Bench, run: str) -> Path:
    path = b.out / "runs" / run / "last.ckpt"
    path.write_bytes(path.read_bytes()[:100])
    return path


def _occlusion(b: Bench) -> list[str]:
    return ["run", b.suite, "--set", "evaluations.occlusion={sizes: [0, 16], max_images: 32}"]


# cases where a run finished earlier fails (its new evaluation): it becomes a failed run, the other stays as it was
FAILS_A_FINISHED_RUN = {"finished run, damaged checkpoint, new evaluation": "cutmix-s0"}


def _compare(b: Bench, *extra: str, dataset: str = "", width: int = 0, alpha: float = 0, results: str = "",
             suite: str = "") -> list[str]:
    """`compare A B` of the finished folder A and a copy B, changed as asked, into a fresh file unless --out."""
    import json

    other = b.tmp / "other"
    shutil.copytree(b.out, other)
    recorded = json.loads((other / "suite.json").read_text())
    recorded["data"]["name"] = dataset or recorded["data"]["name"]
    recorded["model"]["params"]["width"] = width or recorded["model"]["params"]["width"]
    recorded["methods"]["cutmix"]["alpha"] = alpha or recorded["methods"]["cutmix"]["alpha"]
    (other / "suite.json").write_text(suite or json.dumps(recorded))
    if results:
        (other / "results.csv").write_text(results)
    return ["compare", str(b.out), str(other), *(extra or ("--out", str(b.tmp / "c.md")))]


def _folder(b: Bench) -> Path:
    (b.tmp / "folder").mkdir()
    return b.tmp / "folder"


def _fifo(b: Bench) -> str:
    import os

    os.mkfifo(b.tmp / "pipe.yaml")  # reading it would block forever: the check must not open it
    return str(b.tmp / "pipe.yaml")


CONTRACT_PLUGIN = """
from cutmix_bench.methods import METHODS
from cutmix_bench.methods.base import Method


@METHODS.register("bad")
class Bad(Method):
    \"\"\"A plug-in method whose output breaks the contract.\"\"\"

    reference = "none, 2026"

    def apply(self, x, y, params):
        return {output}
"""


def _contract(b: Bench, output: str) -> list[str]:
    """A run of a plug-in method returning `output` (an expression of x, y), added to the finished folder."""
    plugin = b.text("bad_method.py", CONTRACT_PLUGIN.format(output=output))
    return ["run", b.suite, "--set", f"plugins=[{plugin}]", "--set", "methods.bad={}"]


def _label(b: Bench, label: str) -> list[str]:
    return ["run", b.variant(methods={label: {"method": "baseline"}})]


def _sizes(b: Bench, evaluation: str, sizes: str) -> list[str]:
    return ["run", b.suite, "--set", f"evaluations.{evaluation}={{sizes: {sizes}}}"]


def _corrupt(b: Bench, out: Path, *extra: str) -> list[str]:
    """`corrupt` of 8 images (labels.npy fits in 8 KiB, the corruption's 5 x 8 images do not)."""
    root = write_npz(b.tmp / "c8", IMAGES, LABELS)
    return ["corrupt", "--dataset", "npz", "--data-root", str(root), "--out", str(out), "--corruptions", "contrast",
            "--workers", "1", *extra]


def _bad_checkpoint(b: Bench) -> list[str]:
    bad = b.out / "runs" / "baseline-s1" / "last.ckpt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    return ["run", b.suite, "--set", "seeds=[0, 1]"]


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def finished_runs(files: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in files.items() if k.startswith(("runs/baseline-s0/", "runs/cutmix-s0/"))}


def test_the_catalogue_is_large() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_clear_line(name: str, bench: Bench, mount: Callable[..., Path],
                                        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    import torch

    if name == "cuda without gpu" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    if name == "timm model without timm" and importlib.util.find_spec("timm") is not None:
        pytest.skip("timm is installed")
    argv, expected, code = CASES[name](bench, mount)
    before = snapshot(bench.out)
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("cutmix-bench: error: ") and expected in err[0], err[0]
    assert "Traceback" not in caplog.text
    after = snapshot(bench.out)
    if code == 2:  # refused before anything ran: not a byte changed, nothing added
        assert after == before
    else:  # a failed run: the runs finished earlier are untouched
        failed = FAILS_A_FINISHED_RUN.get(name)
        if not failed:
            assert finished_runs(after) == finished_runs(before)
        else:  # a failed run, never DONE and FAILED side by side, listed in the report's failure section; the
            # other run gained the new evaluation; what both held before (evaluations, setups) is unchanged
            run_dir = bench.out / "runs" / failed
            assert (run_dir / "FAILED").exists() and not (run_dir / "DONE").exists()
            assert (bench.out / "runs" / "baseline-s0" / "DONE").exists()
            kept = {k: v for k, v in finished_runs(before).items() if "/eval/" in k or k.endswith("setup.json")}
            assert kept.items() <= after.items()
            report = (bench.out / "report.md").read_text()
            assert f"`{failed}`" in report.split("## Failed", 1)[-1], report
    assert not (bench.tmp.parent / "escaped-s0").exists() and not (bench.tmp / "x").exists()


def test_adding_an_evaluation_to_a_finished_folder_is_not_a_setup_change(bench: Bench) -> None:
    """Only the new evaluation runs; the recorded setups and earlier evaluation files stay as they were."""
    before = snapshot(bench.out)
    assert main(["run", bench.suite, "--set", "evaluations.occlusion={sizes: [0, 16], max_images: 32}"]) == 0
    after = snapshot(bench.out)
    assert "runs/baseline-s0/eval/occlusion.csv" in after
    assert {k: after[k] for k in before if "/eval/" in k or k.endswith(("setup.json", "last.ckpt"))} == \
        {k: before[k] for k in before if "/eval/" in k or k.endswith(("setup.json", "last.ckpt"))}


def test_results_name_their_recorded_setup(bench: Bench) -> None:
    """results.csv has a `setup` column, the hash of each run's setup.json; setups.json maps it back."""
    import json

    import pandas as pd

    from cutmix_bench.setups import setup_hash

    assert main(["report", bench.suite]) == 0
    results = pd.read_csv(bench.out / "results.csv")
    setups = json.loads((bench.out / "setups.json").read_text())
    for run, rows in results.groupby("run"):
        recorded = (bench.out / "runs" / run / "setup.json").read_text()
        assert set(rows["setup"]) == {setup_hash(recorded)}
        assert setups[setup_hash(recorded)] == {k: v for k, v in json.loads(recorded).items() if k != "seed"}
    assert len(setups) == 2  # baseline and cutmix differ by their method
    assert setup_hash(recorded) == setup_hash(recorded.replace('"seed": 0', '"seed": 1'))  # one row, any seed
    assert setup_hash(recorded) != setup_hash(recorded.replace('"epochs": 1', '"epochs": 2'))


def test_report_refuses_a_row_of_mixed_setups() -> None:
    import pandas as pd

    from cutmix_bench.errors import BenchError
    from cutmix_bench.report import check_one_setup

    rows = pd.DataFrame({"method": ["cutmix", "cutmix", "baseline"], "setup": ["aaa", "bbb", "ccc"],
                         "value": [1.0, 2.0, 3.0]})
    with pytest.raises(BenchError, match="method cutmix mixes runs of 2 setups"):
        check_one_setup(rows)
    check_one_setup(rows[rows["setup"] != "bbb"])


def test_jobs_above_the_runs_and_cpus_are_capped(bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    from cutmix_bench.preflight import capped_jobs

    cpus = len(__import__("os").sched_getaffinity(0))
    assert capped_jobs(cpus + 10, 100, torch.device("cpu")) == cpus
    assert capped_jobs(12, 2, torch.device("cpu")) == min(2, cpus)
    assert capped_jobs(1, 0, torch.device("cpu")) == 1
    assert "capped at" in caplog.text
    caplog.clear()
    assert main(["run", bench.suite, "--jobs", "12"]) == 0  # nothing left to run: no worker pool at all
    assert "--jobs 12: capped at 1" in caplog.text


def test_debug_shows_the_traceback() -> None:
    from cutmix_bench.errors import BenchError

    with pytest.raises(BenchError, match="train.epochs"):
        main(["--debug", "run", SMOKE, "--set", "train.epochs=0"])


def test_checkpoint_of_another_model_is_refused(bench: Bench, capsys: pytest.CaptureFixture[str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Without a setup record (older folders), a checkpoint of another model fails that run with one line."""
    run_dir = _unfinish(bench, "cutmix-s0")
    for name in ("setup.json", "eval/train.csv"):
        (run_dir / name).unlink()
    (bench.out / "runs" / "baseline-s0" / "setup.json").unlink()
    assert main(["run", bench.suite, "--set", "model.params.width=8"]) == 1
    err = capsys.readouterr().err + caplog.text
    assert "last.ckpt: checkpoint is of another model" in err and "Traceback" not in err


def test_compare_with_allow_different_names_both_sides(bench: Bench, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _compare(bench, dataset="cifar10", width=8)
    assert main([*argv, "--allow-different"]) == 0
    text = (bench.tmp / "c.md").read_text()
    assert "dataset synthetic, model tiny" in text and "dataset cifar10, model tiny" in text  # A's and B's lines
    assert '- dataset.name: A "synthetic" vs B "cifar10"\n- model.params.width: A 4 vs B 8\n' in text
    assert main([*argv, "--allow-different"]) == 2  # the file exists now
    assert "c.md: exists" in capsys.readouterr().err
    assert main([*argv, "--allow-different", "--force"]) == 0 and (bench.tmp / "c.md").read_text() == text


def test_a_plugin_that_prints_at_import_is_named_in_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """`list` output stays the command's own: the plug-in's print is captured and reported by name."""
    plugin = tmp_path / "chatty.py"
    plugin.write_text("print('hello from the plug-in')\nprint('second line')\n")
    assert main(["list", "--plugin", str(plugin)]) == 0
    assert "hello" not in capsys.readouterr().out
    assert "chatty.py: the plug-in printed at import (2 line(s), not shown: 'hello from the plug-in')" in caplog.text


@pytest.mark.parametrize("fault", ["read-only", "disk full"])
def test_output_that_fails_mid_run_gives_one_line_and_the_rerun_finishes(fault: str, tmp_path: Path,
                                                                         mount: Callable[..., Path]) -> None:
    """The output turns read-only, or its disk fills up, while a run is in progress (the process stops itself
    at a crash point of faults.py with SIGSTOP, the test changes the mount, then lets it go on): one error line
    naming a file and the cause, exit 1; once the disk is back, a rerun finishes every run."""
    import os
    import sys

    point = mount("mid", "8m")
    suite = write_suite(tmp_path / "suite.yaml", point / "out", methods={"baseline": {}}, evaluations={"clean": {}})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CUTMIX_BENCH_KILL_SIGNAL": "STOP",
           "CUTMIX_BENCH_KILL_AT": "evaluation:baseline-s0:clean"}  # evaluated, its file not yet written
    command = [sys.executable, "-m", "cutmix_bench", "run", suite, "--quiet"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        err = _fail_mid_run(process, point, fault)
    finally:
        if process.poll() is None:  # a failed assertion must not leave a stopped process holding the mount
            process.kill()
            process.wait()
    lines = [line for line in err.splitlines() if line.startswith("cutmix-bench: error:")]
    assert process.returncode == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert ("read-only" if fault == "read-only" else "the disk is full") in lines[0], lines[0]
    if fault == "disk full":
        (point / "filler").unlink()
    rerun = subprocess.run(command, env={k: v for k, v in env.items() if not k.startswith("CUTMIX_BENCH_KILL")},
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert (point / "out" / "runs" / "baseline-s0" / "DONE").exists()


def _fail_mid_run(process: subprocess.Popen, point: Path, fault: str) -> str:
    """Wait for the run to stop itself, make its output read-only or full, let it go on; its stderr."""
    import os
    import signal
    import time

    deadline = time.monotonic() + 600
    while Path(f"/proc/{process.pid}/stat").read_text().split(") ")[1][0] != "T":  # T: stopped
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    evals = point / "out" / "runs" / "baseline-s0" / "eval"
    if fault == "read-only":  # a read-only bind mount of the folder the next write goes to (a file system with
        # files open for writing, as the run's lock, cannot be remounted read-only as a whole)
        subprocess.run(["mount", "--bind", str(evals), str(evals)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(evals)], check=True)
    else:
        with open(point / "filler", "wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * (1 << 16))
                filler.flush()
    os.kill(process.pid, signal.SIGCONT)
    try:
        _, err = process.communicate(timeout=600)
    finally:
        if fault == "read-only":
            subprocess.run(["umount", str(evals)], check=True)
    return err
