"""How many test images an expensive evaluation scores: the whole test set on a GPU, a seeded subset on
CPU unless the suite says otherwise. The subset seed is fixed, so every run scores the same images."""

from __future__ import annotations

import numpy as np

# A CPU run of a GPU suite (e.g. cifar100.yaml with ResNet-18, ~140 images/s inference on 2 cores) would
# otherwise spend about two hours per run on the 96 corrupted copies alone. 1000 images keep the 95% interval
# of an error rate near 50% within +-3.1 points (+-6.4 at the former 250, wider than most differences between
# methods); every row states its count in `n`.
CPU_DEFAULT_IMAGES = 1000
SUBSET_SEED = 0


def default_count(max_images: int | None, device_type: str) -> int | None:
    """`max_images`, or the device default: None (everything) on a GPU, `CPU_DEFAULT_IMAGES` on CPU."""
    return CPU_DEFAULT_IMAGES if max_images is None and device_type == "cpu" else max_images


def check_max_images(max_images: int | None) -> int | None:
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                   or max_images < 1):
        raise ValueError(f"max_images must be a positive integer or null (device default), got {max_images!r}")
    return max_images


def scored_positions(n: int, max_images: int | None, device_type: str) -> np.ndarray | None:
    """Positions of `max_images` seeded random test images out of `n` (rows of the shared files are grouped
    by class), or None for all of them; `max_images` None means all on a GPU, `CPU_DEFAULT_IMAGES` on CPU."""
    max_images = default_count(max_images, device_type)
    if max_images is None or max_images >= n:
        return None
    return np.random.default_rng(SUBSET_SEED).permutation(n)[:max_images]
