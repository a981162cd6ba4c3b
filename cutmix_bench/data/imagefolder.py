"""A torchvision ImageFolder tree (`<root>/<split>/<class>/<image>`), resized to a fixed side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BenchError
from . import DATASETS
from .base import Dataset, Split, as_split, channel_stats


@DATASETS.register("imagefolder")
class ImageFolder(Dataset):
    """Images are resized (shorter side) and centre-cropped to `size`; classes are the folder names
    of the first split found, sorted, as in torchvision."""

    def __init__(self, root: str | Path | None = None, size: int = 32, train_folder: str = "train",
                 test_folder: str = "test") -> None:
        if root is None:
            raise BenchError("data.root: imagefolder needs a directory with <split>/<class>/<image> files")
        self.root, self.size = Path(root), size
        self.dirs = {"train": train_folder, "test": test_folder}
        found = [s for s, d in self.dirs.items() if (self.root / d).is_dir()]
        if not found:
            raise BenchError(f"data.root: {self.root} has neither {train_folder}/ nor {test_folder}/ class folders")
        self.classes = sorted(p.name for p in (self.root / self.dirs[found[0]]).iterdir() if p.is_dir())
        self.num_classes = len(self.classes)
        self._cache: dict[str, Split] = {}
        self.mean, self.std = channel_stats(self._load(found[0]).x)

    def _load(self, split: str) -> Split:
        if split in self._cache:
            return self._cache[split]
        from torchvision import datasets, transforms

        folder = self.root / self.dirs[split]
        if not folder.is_dir():
            raise BenchError(f"{folder}: split folder not found")
        resize = transforms.Compose([transforms.Resize(self.size), transforms.CenterCrop(self.size)])
        try:
            data = datasets.ImageFolder(str(folder), transform=resize)
        except FileNotFoundError as exc:  # no class folders, or one without images
            raise BenchError(f"{folder}: {exc}") from exc
        index = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted(set(data.classes) - set(index))
        if unknown:
            raise BenchError(f"{folder}: class folders {unknown} are not among the {self.num_classes} classes "
                             f"of the first split found ({', '.join(self.classes)})")
        images, labels = [], []
        for (path, _), (image, _) in zip(data.samples, data):
            images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
            labels.append(index[Path(path).parent.name])
        self._cache[split] = as_split(np.stack(images), np.asarray(labels), str(folder), self.num_classes)
        return self._cache[split]
