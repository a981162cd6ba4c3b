"""A directory holding `train.npz` / `test.npz` (`x` uint8 NHWC, `y` int), e.g. ../shared/data/cifar100."""

from __future__ import annotations

from pathlib import Path

from ..errors import BenchError
from . import DATASETS
from .base import Dataset, Split, channel_stats, read_npz


@DATASETS.register("npz")
class Npz(Dataset):
    """Class count from `classes.txt` when present, else from the labels; mean/std from the train split
    when present, else from the test split."""

    def __init__(self, root: str | Path | None = None, num_classes: int | None = None) -> None:
        if root is None:
            raise BenchError("data.root: the npz dataset needs a directory holding train.npz and/or test.npz")
        self.root = Path(root)
        if not self.root.is_dir():
            raise BenchError(f"data.root: directory {self.root} not found; expected train.npz / test.npz inside")
        available = [s for s in ("train", "test") if (self.root / f"{s}.npz").is_file()]
        if not available:
            raise BenchError(f"data.root: {self.root} holds neither train.npz nor test.npz")
        classes = self.root / "classes.txt"
        if num_classes is None and classes.is_file():
            num_classes = len([line for line in classes.read_text().splitlines() if line.strip()])
        self._cache: dict[str, Split] = {}
        if num_classes is None:
            num_classes = max(int(self._load(s).y.max()) + 1 for s in available)
        self.num_classes = num_classes
        self.mean, self.std = channel_stats(self._load(available[0]).x)

    def _load(self, split: str) -> Split:
        if split not in self._cache:
            self._cache[split] = read_npz(self.root / f"{split}.npz", getattr(self, "num_classes", None))
        return self._cache[split]


def npz_layout(root: Path) -> bool:
    """True when `root` holds the npz layout (so torchvision-named datasets can read it too)."""
    return any((root / f"{s}.npz").is_file() for s in ("train", "test"))


