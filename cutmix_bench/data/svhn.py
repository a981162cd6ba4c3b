"""SVHN cropped digits (Netzer et al. 2011): torchvision's files or the npz layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BenchError
from . import DATASETS
from .base import Dataset, Split, as_split
from .npz import Npz, npz_layout


@DATASETS.register("svhn")
class SVHN(Dataset):
    """`<root>/{train,test}_32x32.mat` (torchvision's layout, read with scipy so files need no checksum;
    label 10 means digit 0, as in torchvision) or `<root>/{train,test}.npz`."""

    num_classes = 10
    # Training-set statistics commonly used for SVHN.
    mean, std = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)

    def __init__(self, root: str | Path | None = None, download: bool = False) -> None:
        if root is None:
            raise BenchError("data.root (or the OOD set's root): "
                             "svhn needs a directory with test_32x32.mat (torchvision) or test.npz")
        self.root, self.download = Path(root), download
        self._npz = Npz(self.root, self.num_classes) if npz_layout(self.root) else None

    def _load(self, split: str) -> Split:
        if self._npz is not None:
            return self._npz.load(split)
        path = self.root / f"{split}_32x32.mat"
        if not path.is_file() and self.download:
            from torchvision import datasets

            datasets.SVHN(str(self.root), split=split, download=True)
        if not path.is_file():
            raise BenchError(f"{path}: SVHN file not found (torchvision layout); or put {split}.npz in {self.root}")
        from scipy.io import loadmat

        try:
            mat = loadmat(path)
            x, y = np.transpose(mat["X"], (3, 0, 1, 2)), mat["y"].astype(np.int64).ravel()
        except (KeyError, ValueError, OSError) as exc:
            raise BenchError(f"{path}: expected a .mat file with X [32, 32, 3, N] and y [N, 1] ({exc})") from exc
        return as_split(x, np.where(y == 10, 0, y), str(path), self.num_classes)
