"""Every image under a folder, with or without class subfolders: OOD sets such as LSUN, iSUN, Places365 or
Textures (DTD), which ship as flat folders or as <class>/<image> trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BenchError
from . import DATASETS
from .base import Dataset, Split, as_split, channel_stats

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp"}


def image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive), sorted, so the order is the same on every machine."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_images(paths: list[Path], size: int) -> np.ndarray:
    """uint8 [N, size, size, 3]: shorter side resized to `size` (antialiased), then centre-cropped,
    as torchvision's Resize + CenterCrop (OpenOOD's test preprocessing)."""
    from PIL import Image
    from torchvision import transforms

    resize = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size)])
    images = np.empty((len(paths), size, size, 3), np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                images[i] = np.asarray(resize(image.convert("RGB")), dtype=np.uint8)
        except OSError as exc:
            raise BenchError(f"{path}: not a readable image ({exc})") from exc
    return images


@DATASETS.register("imagedir")
class ImageDir(Dataset):
    """The test split is every image under `root/test_folder` (default: `root` itself); the train split is
    `root/train_folder` when given. Labels: index of the first-level subfolder holding the image, in sorted
    order, top-level images forming class 0 of their own. `max_images` keeps a seeded subset of the files
    before decoding (Places365 has 36,500 validation images)."""

    def __init__(self, root: str | Path | None = None, size: int = 32, test_folder: str = ".",
                 train_folder: str | None = None, max_images: int | None = None, seed: int = 0) -> None:
        if root is None:
            raise BenchError("data.root (or the OOD set's root): imagedir needs a folder of images")
        if size < 1 or (max_images is not None and max_images < 1):
            raise BenchError(f"imagedir: size and max_images must be >= 1, got {size}, {max_images}")
        self.root, self.size, self.max_images, self.seed = Path(root), size, max_images, seed
        self.dirs = {"test": test_folder, "train": train_folder}
        self._cache: dict[str, Split] = {}
        first = "test" if (self.root / test_folder).is_dir() else "train"
        self.mean, self.std = channel_stats(self._load(first).x)

    def _load(self, split: str) -> Split:
        if split in self._cache:
            return self._cache[split]
        if self.dirs[split] is None or not (self.root / self.dirs[split]).is_dir():
            raise BenchError(f"{self.root}: no {split} folder ({split}_folder={self.dirs[split]!r})")
        folder = self.root / self.dirs[split]
        paths = image_files(folder)
        if not paths:
            raise BenchError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        if self.max_images is not None and self.max_images < len(paths):
            keep = np.sort(np.random.default_rng(self.seed).permutation(len(paths))[: self.max_images])
            paths = [paths[i] for i in keep]
        groups = [p.relative_to(folder).parts[0] if len(p.relative_to(folder).parts) > 1 else "" for p in paths]
        classes = sorted(set(groups))
        self.num_classes = len(classes)
        labels = np.searchsorted(classes, groups)
        self._cache[split] = as_split(read_images(paths, self.size), labels, str(folder), self.num_classes)
        return self._cache[split]
