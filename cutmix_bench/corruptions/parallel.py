"""Whole corrupted sets in the release layout, spread over worker processes without changing a byte.

Work is cut into (corruption, severity, chunk) tasks; each uses `chunk_rng(seed, corruption, severity, chunk)`,
so the output is the same for any worker count and equals `corrupt_seeded` (tests check both).
`corrupt_all` is re-exported by the package.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence

import numpy as np

from . import CHUNK_SIZE, SEVERITIES, _check, chunk_rng, corrupt

_IMAGES: np.ndarray | None = None  # the clean images, inherited by forked workers


def _init(images: np.ndarray) -> None:
    global _IMAGES
    _IMAGES = images


def _task(task: tuple[str, int, int, int, str, int]) -> np.ndarray:
    name, severity, chunk, seed, params, chunk_size = task
    part = _IMAGES[chunk * chunk_size:(chunk + 1) * chunk_size]
    return corrupt(name, part, severity, chunk_rng(seed, name, severity, chunk), params)


def corrupt_all(images: np.ndarray, seed: int, params: str = "cifar", names: Sequence[str] | None = None,
                workers: int = 1, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, uint8 [5 * N, H, W, 3]) per corruption, severities 1..5 stacked as in CIFAR-10-C's
    `<name>.npy` (rows N*(s-1) .. N*s - 1 hold severity s), computed by `workers` processes."""
    from . import ALL

    names = list(ALL if names is None else names)
    for name in names:
        _check(name, images, 1, params)
    n = len(images)
    chunks = range((n + chunk_size - 1) // chunk_size)
    tasks = [(name, s, k, int(seed), params, chunk_size) for name in names for s in SEVERITIES for k in chunks]
    per_name = len(SEVERITIES) * len(chunks)
    if workers <= 1:
        _init(images)
        results = map(_task, tasks)
        pool = None
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        pool = context.Pool(workers, initializer=_init, initargs=(images,))
        results = pool.imap(_task, tasks)
    try:
        for name in names:
            out = np.empty((len(SEVERITIES) * n,) + images.shape[1:], dtype=np.uint8)
            for i in range(per_name):
                severity, chunk = divmod(i, len(chunks))
                start = severity * n + chunk * chunk_size
                part = next(results)
                out[start:start + len(part)] = part
            yield name, out
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
