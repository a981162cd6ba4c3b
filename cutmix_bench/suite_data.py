"""A suite's device and data: the device it asks for, and its dataset with the train / test subsets it names.
Torch and the dataset registry only, no Lightning, so that `--dry-run` starts fast."""

from __future__ import annotations

import torch

from .config import Suite
from .data import Dataset, Split, create_dataset
from .errors import BenchError


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
