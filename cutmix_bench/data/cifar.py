"""CIFAR-10 / CIFAR-100 through torchvision, or the npz layout when the data root holds it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BenchError
from . import DATASETS
from .base import Dataset, Split, as_split
from .npz import Npz, npz_layout

# Published training-set statistics.
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


class _Cifar(Dataset):
    name: str

    def __init__(self, root: str | Path | None = None, download: bool = False) -> None:
        if root is None:
            raise BenchError(f"data.root: {self.name} needs a data root (torchvision layout or train.npz/test.npz)")
        self.root = Path(root)
        self.download = download
        self.num_classes = 10 if self.name == "cifar10" else 100
        self.mean, self.std = STATS[self.name]
        self._npz = Npz(self.root, self.num_classes) if npz_layout(self.root) else None

    def _load(self, split: str) -> Split:
        if self._npz is not None and (self.root / f"{split}.npz").is_file():
            return self._npz.load(split)
        from torchvision import datasets

        cls = datasets.CIFAR10 if self.name == "cifar10" else datasets.CIFAR100
        try:
            data = cls(str(self.root), train=split == "train", download=self.download)
        except RuntimeError as exc:
            raise BenchError(
                f"data.root: {self.name} not found in {self.root} (tried torchvision's layout and {split}.npz); "
                f"set data.download=true to fetch it, or point data.root at a directory with {split}.npz"
            ) from exc
        return as_split(np.asarray(data.data), np.asarray(data.targets), f"{self.root} ({self.name})", self.num_classes)


@DATASETS.register("cifar10")
class Cifar10(_Cifar):
    name = "cifar10"


@DATASETS.register("cifar100")
class Cifar100(_Cifar):
    name = "cifar100"
