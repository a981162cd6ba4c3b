"""How many test images an expensive evaluation scores: the whole test set on a GPU, a seeded subset on
CPU unless the suite says otherwise. The subset seed is fixed, so every run scores the same images."""

from __future__ import annotations

from ..data import Split

CPU_DEFAULT_IMAGES = 1000
SUBSET_SEED = 0


def check_max_images(max_images: int | None) -> int | None:
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                   or max_images < 1):
        raise ValueError(f"max_images must be a positive integer or null (device default), got {max_images!r}")
    return max_images


def scored_split(test: Split, max_images: int | None, device_type: str) -> Split:
    """`max_images` seeded random test images (rows of the shared files are grouped by class); None means
    all of them on a GPU and `CPU_DEFAULT_IMAGES` on CPU. The full set keeps its order."""
    if max_images is None and device_type == "cpu":
        max_images = CPU_DEFAULT_IMAGES
    return test.subset(max_images, SUBSET_SEED)
