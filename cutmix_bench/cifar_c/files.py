"""The CIFAR-10-C / CIFAR-100-C directory format: reading, validating and writing its files.

Release format (Hendrycks & Dietterich, ICLR 2019): one `<corruption>.npy` per corruption, uint8
[5N, H, W, 3] for a test set of N images; severity s is rows N(s-1) .. Ns-1, each block the test
images in test-set order; `labels.npy` [5N] holds the test labels tiled five times. A directory this
project generates may hold fewer severities; it then lists them in `metadata.json` ("severities").
Arrays are opened memory-mapped, so evaluating never loads a whole file into memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..corruptions.registry import SEVERITIES
from ..errors import BenchError
from ..io import atomic_write, sha256_file, write_text

LABELS = "labels.npy"
METADATA = "metadata.json"


def read_metadata(root: Path) -> dict[str, Any]:
    """`metadata.json` of a directory, {} when absent (the official release has none)."""
    path = root / METADATA
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(meta, dict):
        raise BenchError(f"{path}: expected a JSON object")
    return meta


def write_metadata(root: Path, meta: dict[str, Any]) -> None:
    write_text(root / METADATA, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def save_npy(path: Path, array: np.ndarray) -> str:
    """Write `array` atomically as .npy and return the file's sha256."""
    digest: list[str] = []

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)
        digest.append(sha256_file(tmp))

    atomic_write(path, write)
    return digest[0]


def open_npy(path: Path) -> np.ndarray:
    """Memory-map a .npy file; a missing, truncated or pickled file is a BenchError naming it."""
    if not path.is_file():
        raise BenchError(f"{path}: file not found")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # truncated data, bad header and object arrays all mean an unusable file
        raise BenchError(f"{path}: not a readable .npy file, truncated or corrupt ({exc})") from exc


def verify(root: Path, meta: dict[str, Any], names: Iterable[str]) -> list[str]:
    """Files among `names` and labels.npy that are missing or whose sha256 differs from the metadata."""
    bad = []
    for file in [LABELS, *names]:
        expected = meta.get("files", {}).get(file)
        if expected is None or not (root / file).is_file() or sha256_file(root / file) != expected:
            bad.append(file)
    return bad


@dataclass
class CorruptionDir:
    """A validated directory: `images(c, s)` gives the corrupted test images of one cell."""

    root: Path
    severities: tuple[int, ...]
    size: int  # N, images per severity block in the files
    arrays: dict[str, np.ndarray]
    index: np.ndarray | None = None  # rows of each block that form the run's test split

    def images(self, corruption: str, severity: int) -> np.ndarray:
        """uint8 [n, H, W, 3] in test-split order (an in-memory copy of the rows)."""
        start = self.severities.index(severity) * self.size
        block = self.arrays[corruption][start:start + self.size]
        return np.array(block if self.index is None else block[self.index])


def open_labels(root: Path) -> tuple[np.ndarray, tuple[int, ...], int]:
    """labels.npy, the severities the directory holds and N, the images per severity block."""
    available = tuple(read_metadata(root).get("severities", SEVERITIES))
    labels = open_npy(root / LABELS)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) % len(available):
        raise BenchError(f"{root / LABELS}: expected integer labels of shape [{len(available)} x N], "
                         f"got {labels.dtype} {list(labels.shape)}")
    return labels, available, len(labels) // len(available)


def open_corruption_dir(root: str | Path, corruptions: list[str], severities: list[int],
                        test_labels: np.ndarray, image_shape: tuple[int, ...] | None = None,
                        index: np.ndarray | None = None) -> CorruptionDir:
    """Open `root` and check it against the test split: every requested file present, uint8
    [blocks*N, H, W, 3], labels equal to the test labels in every severity block.

    `index` selects rows of each block when the test split is a subset of the N images the
    directory was made from; `test_labels` are then the labels of that subset."""
    root = Path(root)
    if not root.is_dir():
        raise BenchError(f"{root}: corruption directory not found")
    labels, available, size = open_labels(root)
    missing = sorted(set(severities) - set(available))
    if missing:
        raise BenchError(f"{root / METADATA}: severities {missing} were not generated "
                         f"(the directory holds {list(available)})")
    expected_n = len(test_labels) if index is None else None
    if expected_n is not None and size != expected_n:
        raise BenchError(f"{root / LABELS}: {len(labels)} labels = {len(available)} severities x {size} images, "
                         f"but the test set has {expected_n} images")
    test_labels = np.asarray(test_labels)
    for block in range(len(available)):
        got = np.asarray(labels[block * size:(block + 1) * size])
        got = got if index is None else got[index]
        if not np.array_equal(got.astype(np.int64), test_labels.astype(np.int64)):
            first = int(np.flatnonzero(got != test_labels)[0]) if len(got) == len(test_labels) else 0
            raise BenchError(f"{root / LABELS}: labels of severity {available[block]} differ from the test set's "
                             f"(first difference at test image {first}); the directory was made from another "
                             f"test set or another order")
    arrays = {}
    for name in corruptions:
        path = root / f"{name}.npy"
        array = open_npy(path)
        shape = [len(labels), *(image_shape or array.shape[1:3]), 3]
        if array.dtype != np.uint8 or list(array.shape) != shape:
            raise BenchError(f"{path}: expected uint8 {shape} ({len(available)} severities x {size} images), "
                             f"got {array.dtype} {list(array.shape)}")
        arrays[name] = array
    return CorruptionDir(root, available, size, arrays, index)
