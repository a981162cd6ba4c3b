"""Whole corrupted sets in the release layout, spread over worker processes without changing a byte.

Work is cut into (corruption, severity, chunk) tasks; each uses `chunk_rng(seed, corruption, severity, chunk)`,
so the output is the same for any worker count and equals `corrupt_seeded` (tests check both). Workers write
their chunks straight into a shared-memory array per corruption (no pickling of image data), at most two
corruptions in flight. `corrupt_all` is re-exported by the package.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory

import cv2
import numpy as np

from . import CHUNK_SIZE, SEVERITIES, _check, chunk_rng, corrupt

_IMAGES: np.ndarray | None = None  # the clean images of this worker process


def _init(images: np.ndarray) -> None:
    global _IMAGES
    _IMAGES = images


def _init_worker(images: np.ndarray) -> None:
    """Pool initializer: one OpenCV thread (its calls here are per image and tiny)."""
    cv2.setNumThreads(1)
    _init(images)


def _chunk(name: str, severity: int, chunk: int, seed: int, params: str, chunk_size: int) -> np.ndarray:
    part = _IMAGES[chunk * chunk_size:(chunk + 1) * chunk_size]
    return corrupt(name, part, severity, chunk_rng(seed, name, severity, chunk), params)


def _attach(segment: str) -> SharedMemory:
    """Open the parent's segment without registering it with the resource tracker: workers share the
    parent's tracker, and a worker's register/unregister pair would strip the parent's own registration
    (a KeyError traceback from the tracker when the parent unlinks the segment)."""
    try:
        return SharedMemory(name=segment, track=False)  # Python >= 3.13
    except TypeError:
        register = resource_tracker.register
        resource_tracker.register = lambda *args, **kwargs: None
        try:
            return SharedMemory(name=segment)
        finally:
            resource_tracker.register = register


def _write_chunk(segment: str, name: str, severity: int, chunk: int, seed: int, params: str,
                 chunk_size: int) -> None:
    """Corrupt one chunk into rows n*(severity-1) + chunk*chunk_size... of the shared array `segment`."""
    shared = _attach(segment)
    try:
        n = len(_IMAGES)
        out = np.ndarray((len(SEVERITIES) * n,) + _IMAGES.shape[1:], dtype=np.uint8, buffer=shared.buf)
        part = _chunk(name, severity, chunk, seed, params, chunk_size)
        start = (severity - 1) * n + chunk * chunk_size
        out[start:start + len(part)] = part
        del out
    finally:
        shared.close()


def corrupt_all(images: np.ndarray, seed: int, params: str = "cifar", names: Sequence[str] | None = None,
                workers: int = 1, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, uint8 [5 * N, H, W, 3]) per corruption in order, severities 1..5 stacked as in CIFAR-10-C's
    `<name>.npy` (rows N*(s-1) .. N*s - 1 hold severity s), computed by `workers` processes."""
    from . import ALL

    names = list(ALL if names is None else names)
    for name in names:
        _check(name, images, 1, params)
    n = len(images)
    chunks = range((n + chunk_size - 1) // chunk_size)
    shape = (len(SEVERITIES) * n,) + images.shape[1:]
    if workers <= 1:
        _init(images)
        for name in names:
            yield name, np.concatenate([_chunk(name, s, k, int(seed), params, chunk_size)
                                        for s in SEVERITIES for k in chunks])
        return
    # Never plain fork: a child forked from a parent whose OpenCV / OpenMP thread pools or CUDA are running
    # can deadlock (seen: cv2.setNumThreads hanging in the child). A fork server starts from a clean process.
    context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                          else "spawn")
    in_flight: deque = deque()
    with context.Pool(workers, initializer=_init_worker, initargs=(images,)) as pool:
        try:
            for i, name in enumerate(names):
                segment = SharedMemory(create=True, size=int(np.prod(shape)))
                jobs = [pool.apply_async(_write_chunk, (segment.name, name, s, k, int(seed), params, chunk_size))
                        for s in SEVERITIES for k in chunks]
                in_flight.append((name, segment, jobs))
                while in_flight and (len(in_flight) > 1 or i == len(names) - 1):
                    done_name, done_segment, done_jobs = in_flight.popleft()
                    for job in done_jobs:
                        job.get()
                    out = np.ndarray(shape, dtype=np.uint8, buffer=done_segment.buf).copy()
                    done_segment.close()
                    done_segment.unlink()
                    yield done_name, out
        finally:
            for _, segment, _ in in_flight:
                segment.close()
                segment.unlink()
