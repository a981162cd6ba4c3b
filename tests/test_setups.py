"""A setup hash of what was trained, not of where it lay: the data enters the setup by identity (name, subsets,
a digest of the images and labels as used), and run folders recorded before keep working."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from cutmix_bench.rundir import Run
from cutmix_bench.setups import differences, same_setup, setup_hash, training_setup
from cutmix_bench.suite_file import load_suite

from helpers import tiny_suite

RUN = Run("baseline", 0)


def npz_folder(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for split, n in (("train", 96), ("test", 32)):
        np.savez(folder / f"{split}.npz", x=rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
                 y=np.arange(n, dtype=np.int64) % 4)
    return folder


def setup_of(tmp_path: Path, root: Path, name: str) -> str:
    (tmp_path / name).mkdir()
    suite = tiny_suite(tmp_path / name, data={"name": "npz", "root": str(root), "train_subset": 64})
    return training_setup(load_suite(suite), RUN)


def test_the_same_data_in_two_folders_is_one_setup_and_a_changed_pixel_another(tmp_path: Path) -> None:
    first = npz_folder(tmp_path / "a" / "data")
    second = tmp_path / "elsewhere" / "copy"
    shutil.copytree(first, second)
    one, two = setup_of(tmp_path, first, "s1"), setup_of(tmp_path, second, "s2")
    assert one == two and setup_hash(one) == setup_hash(two)
    assert str(tmp_path) not in one  # no path in the record

    with np.load(second / "train.npz") as archive:
        x, y = archive["x"].copy(), archive["y"]
    trained = np.random.default_rng(0).permutation(96)[:64]  # the subset's rows (data.subset_seed 0)
    x[trained[0], 3, 3, 1] ^= 1
    np.savez(second / "train.npz", x=x, y=y)
    changed = setup_of(tmp_path, second, "s3")
    assert setup_hash(changed) != setup_hash(one)
    assert differences(json.loads(one), json.loads(changed), "baseline") == [
        f"data.content.train: {json.dumps(json.loads(one)['data']['content']['train'])} (recorded) vs "
        f"{json.dumps(json.loads(changed)['data']['content']['train'])} (requested)"]


def test_a_record_from_before_is_read_in_the_current_form(tmp_path: Path) -> None:
    """Run folders written before the data entered by identity hold data.root and data.download and no digest:
    they match a request with the same name, subsets and parameters wherever the data lies now, and only then."""
    root = npz_folder(tmp_path / "data")
    requested = setup_of(tmp_path, root, "s")
    old = json.loads(requested)
    old["data"] = {**{k: v for k, v in old["data"].items() if k != "content"}, "root": "/old/checkout/data",
                   "download": False}
    recorded = json.dumps(old, sort_keys=True)
    assert same_setup(recorded, requested)
    assert setup_hash(recorded) != setup_hash(requested)  # an old record's hash has no digest to include

    other_subset = json.loads(recorded)
    other_subset["data"]["train_subset"] = 32
    assert not same_setup(json.dumps(other_subset), requested)
    assert differences(other_subset, json.loads(requested), "baseline") == [
        "data.train_subset: 32 (recorded) vs 64 (requested)"]
