"""Cut a seeded, class-balanced subset of the shared data small enough to travel with the working tree.

A GPU machine receives a copy of the tree capped at 64 MiB and has no `../shared/data`, so
`benchmarks/gpu_check.sh` trains and evaluates on this subset. It keeps the shared folder's layout, so the
OOD evaluation finds its near sets beside `cifar100/` as it does in the shared folder:

    <out>/cifar100/train.npz, test.npz   CIFAR-100 train / test images per class (defaults 80 / 30)
    <out>/cifar10/test.npz               CIFAR-10 test, the same total as the CIFAR-100 test subset
    <out>/tinyimagenet32/test.npz        Tiny ImageNet (32x32) test, the same total
    <out>/subset.json                    counts, seed and the SHA-256 of every file written

    python benchmarks/make_subset.py                       # -> gpu-check-data/ (git ignores it), about 46 MiB
    python benchmarks/make_subset.py --out /tmp/tiny --train-per-class 5 --test-per-class 2

The data must never be committed (the shared folder's licence note): `gpu-check-data/` is in .gitignore.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "gpu-check-data"
# (folder, split, classes): the in-distribution splits and the near-OOD sets of a CIFAR-100 suite.
SETS = [("cifar100", "train", 100), ("cifar100", "test", 100), ("cifar10", "test", 10), ("tinyimagenet32", "test", 200)]


def balanced(y: np.ndarray, per_class: int, classes: int, seed: int) -> np.ndarray:
    """Sorted positions of `per_class` seeded random images of every class (rows come grouped by class)."""
    rng = np.random.default_rng(seed)
    picked = []
    for label in range(classes):
        rows = np.flatnonzero(y == label)
        if len(rows) < per_class:
            raise SystemExit(f"make_subset: error: class {label} has {len(rows)} images, {per_class} asked for")
        picked.append(rng.choice(rows, per_class, replace=False))
    return np.sort(np.concatenate(picked))


def counts(train_per_class: int, test_per_class: int) -> dict[tuple[str, str], int]:
    """Images per class of every set: the OOD sets get as many images in total as the in-distribution test."""
    test_total = 100 * test_per_class
    per_class = {("cifar100", "train"): train_per_class, ("cifar100", "test"): test_per_class}
    for folder, split, classes in SETS[2:]:
        if test_total % classes:
            raise SystemExit(f"make_subset: error: --test-per-class {test_per_class} gives {test_total} test images, "
                             f"not divisible among the {classes} classes of {folder}")
        per_class[folder, split] = test_total // classes
    return per_class


def make_subset(source: Path, out: Path, train_per_class: int, test_per_class: int, seed: int) -> dict:
    """Write the subset under `out` and return its description (also written as subset.json)."""
    per_class = counts(train_per_class, test_per_class)
    missing = [str(source / folder / f"{split}.npz") for folder, split, _ in SETS
               if not (source / folder / f"{split}.npz").is_file()]
    if missing:
        raise SystemExit(f"make_subset: error: --source: {missing[0]} not found; expected the shared data layout "
                         "(cifar100/train.npz, cifar100/test.npz, cifar10/test.npz, tinyimagenet32/test.npz)")
    info = {"seed": seed, "source": str(source), "files": {}}
    for index, (folder, split, classes) in enumerate(SETS):
        with np.load(source / folder / f"{split}.npz") as data:
            x, y = data["x"], data["y"]
        keep = balanced(y, per_class[folder, split], classes, seed + index)
        target = out / folder / f"{split}.npz"
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(target, x=x[keep], y=y[keep])
        for extra in ("classes.txt", "class_names.txt"):
            if (source / folder / extra).is_file():
                shutil.copyfile(source / folder / extra, out / folder / extra)
        info["files"][f"{folder}/{split}.npz"] = {"images": len(keep), "per_class": per_class[folder, split],
                                                  "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
    (out / "subset.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="the shared data folder (default %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default %(default)s)")
    parser.add_argument("--train-per-class", type=int, default=80, help="CIFAR-100 training images per class")
    parser.add_argument("--test-per-class", type=int, default=30, help="CIFAR-100 test images per class; must make "
                                                                       "a total divisible by 200 (Tiny ImageNet)")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(argv)
    if opts.train_per_class < 1 or opts.test_per_class < 1:
        parser.error("--train-per-class and --test-per-class must be >= 1")
    info = make_subset(opts.source, opts.out, opts.train_per_class, opts.test_per_class, opts.seed)
    size = sum(path.stat().st_size for path in opts.out.rglob("*") if path.is_file())
    images = ", ".join(f"{name} {item['images']}" for name, item in info["files"].items())
    print(f"make_subset: {opts.out}: {images}; {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
