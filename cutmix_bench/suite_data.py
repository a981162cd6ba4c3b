"""A suite's device and data: the device it asks for, and its dataset with the train / test subsets it names.
Torch and the dataset registry only, no Lightning, so that `--dry-run` starts fast."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from .config import Suite, is_path_key
from .data import Dataset, Split, create_dataset
from .errors import BenchError

DIGEST_CHARS = 16
_IDENTITIES: dict[str, dict[str, Any]] = {}


def select_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise BenchError("device: 'cuda' requested but no CUDA device is available; use 'auto' or 'cpu'")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def load_data(suite: Suite) -> tuple[Dataset, Split, Split]:
    params = dict(suite.data.params)
    if suite.data.root is not None:
        params["root"] = suite.data.root
    if suite.data.download:
        params["download"] = True
    dataset = create_dataset(suite.data.name, "data.params", **params)
    train = dataset.load("train").subset(suite.data.train_subset, suite.data.subset_seed)
    test = dataset.load("test").subset(suite.data.test_subset, suite.data.subset_seed)
    return dataset, train, test


def data_identity(suite: Suite) -> dict[str, Any]:
    """What the suite trains and tests on, not where it lies: the dataset's name, subsets and subset seed, its
    parameters less the paths, and a SHA-256 of the images and labels of the train and test splits as used (after
    the subsets). The same files in two folders give one identity; a changed pixel gives another. Loads the data
    once per process, data config and state of the root's files (CIFAR-100: about 1 s)."""
    key = suite.data.model_dump_json() + _root_state(suite.data.root)
    if key not in _IDENTITIES:
        _, train, test = load_data(suite)
        data = suite.data.model_dump(mode="json", exclude={"root", "download"})
        data["params"] = {k: v for k, v in data["params"].items() if not is_path_key(k)}
        data["content"] = {"train": split_digest(train), "test": split_digest(test)}
        _IDENTITIES[key] = data
    return _IDENTITIES[key]


def _root_state(root: str | None) -> str:
    """(name, size, mtime) of the files directly in the data root: a file rewritten in place is loaded again."""
    if root is None or not Path(root).is_dir():
        return ""
    return repr(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(root).iterdir() if p.is_file()))


def split_digest(split: Split) -> str:
    digest = hashlib.sha256()
    for array in (split.x, split.y):
        digest.update(str((tuple(array.shape), str(array.dtype))).encode())
        digest.update(array.contiguous().numpy().data)
    return digest.hexdigest()[:DIGEST_CHARS]
