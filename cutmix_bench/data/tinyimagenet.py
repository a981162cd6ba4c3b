"""Tiny ImageNet-200 (200 ImageNet classes, 64x64): the npz layout or the official folder tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BenchError
from . import DATASETS
from .base import Dataset, Split, as_split, channel_stats
from .imagedir import image_files, read_images
from .npz import Npz, npz_layout


@DATASETS.register("tinyimagenet")
class TinyImageNet(Dataset):
    """`<root>/{train,test}.npz` (e.g. ../shared/data/tinyimagenet32, already 32x32) or the official tree
    `tiny-imagenet-200/`: `train/<wnid>/**/*.JPEG`, and `val/` as `images/` + `val_annotations.txt` or as
    `<wnid>/` folders, read at `size` (64 = native). The labelled validation split is the test split, as
    usual (the official test images have no labels). Class order: `wnids.txt`, else sorted train folders."""

    num_classes = 200

    def __init__(self, root: str | Path | None = None, size: int = 64) -> None:
        if root is None:
            raise BenchError("data.root (or the OOD set's root): "
                             "tinyimagenet needs a directory with test.npz or the tiny-imagenet-200 tree")
        self.root, self.size = Path(root), size
        self._cache: dict[str, Split] = {}
        if npz_layout(self.root):
            self._npz: Npz | None = Npz(self.root, self.num_classes)
            self.mean, self.std = self._npz.mean, self._npz.std
            return
        self._npz = None
        wnids = self.root / "wnids.txt"
        if wnids.is_file():
            self.classes = wnids.read_text().split()
        elif (self.root / "train").is_dir():
            self.classes = sorted(p.name for p in (self.root / "train").iterdir() if p.is_dir())
        else:
            raise BenchError("data.root (or the OOD set's root): "
                             f"{self.root} holds neither test.npz / train.npz nor wnids.txt or train/")
        self.mean, self.std = channel_stats(self._load("test" if (self.root / "val").is_dir() else "train").x)

    def _load(self, split: str) -> Split:
        if self._npz is not None:
            return self._npz.load(split)
        if split not in self._cache:
            paths, labels = self._train_files() if split == "train" else self._val_files()
            if not paths:
                raise BenchError(f"{self.root}: no {split} images found")
            self._cache[split] = as_split(read_images(paths, self.size), np.asarray(labels), str(self.root),
                                          self.num_classes)
        return self._cache[split]

    def _index(self, wnid: str, where: Path) -> int:
        if wnid not in self.classes:
            raise BenchError(f"{where}: class {wnid!r} is not one of the {len(self.classes)} Tiny ImageNet classes")
        return self.classes.index(wnid)

    def _train_files(self) -> tuple[list[Path], list[int]]:
        paths, labels = [], []
        for wnid in self.classes:
            files = image_files(self.root / "train" / wnid)
            paths += files
            labels += [self._index(wnid, self.root / "train")] * len(files)
        return paths, labels

    def _val_files(self) -> tuple[list[Path], list[int]]:
        val = self.root / "val"
        annotations = val / "val_annotations.txt"
        if annotations.is_file():
            rows = [line.split("\t")[:2] for line in annotations.read_text().splitlines() if line.strip()]
            return [val / "images" / name for name, _ in rows], [self._index(wnid, annotations) for _, wnid in rows]
        paths = image_files(val)
        return paths, [self._index(p.relative_to(val).parts[0], val) for p in paths]
