"""Whole corrupted sets in the release layout, spread over worker processes without changing a byte.

Work is cut into (corruption, severity, chunk) tasks; each uses `chunk_rng(seed, corruption, severity, chunk)`,
so the output is the same for any worker count and equals `corrupt_seeded` (tests check both). Workers write
their chunks straight into a shared-memory array per corruption (no pickling of image data), at most two
corruptions in flight. Segments are named after the parent's pid, so those of a killed generator are
reclaimed by the next one. `corrupt_all` is re-exported by the package. Workers import the plug-in modules that
registered the requested corruptions first (a fresh process knows only the built-in ones).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import cv2
import numpy as np

from ..faults import kill_point
from ..plugins import load_plugins, plugin_spec
from .apply import CHUNK_SIZE, _check, chunk_rng, corrupt
from .registry import CORRUPTIONS, SEVERITIES

_IMAGES: np.ndarray | None = None  # the clean images of this worker process


def _init(images: np.ndarray) -> None:
    global _IMAGES
    _IMAGES = images


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


SEGMENT_PREFIX = "cutmix-bench-"  # shared-memory segments are <prefix><pid of the parent>-<corruption index>
SHM_DIR = Path("/dev/shm")


def reclaim_stale_segments() -> list[str]:
    """Unlink the segments of generators that died without cleaning up (kill -9 of the whole process group
    takes the resource tracker with it); returns their names. A segment's name holds its creator's pid."""
    reclaimed = []
    for path in SHM_DIR.glob(f"{SEGMENT_PREFIX}*") if SHM_DIR.is_dir() else []:
        pid = path.name[len(SEGMENT_PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            reclaimed.append(path.name)
    return reclaimed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker(conn: Connection, images: np.ndarray, plugins: list[str]) -> None:
    """A worker's loop: tasks (or None to stop) arrive on `conn`, None or the exception goes back. The parent's
    death closes the pipe (EOFError), so an orphaned worker exits instead of waiting forever."""
    cv2.setNumThreads(1)
    load_plugins(plugins)
    _init(images)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            _write_chunk(*task)
            conn.send(None)
        except Exception as exc:  # noqa: BLE001 (re-raised in the parent)
            conn.send(exc)


def plugin_specs(names: Sequence[str]) -> list[str]:
    """What a fresh process must import to know `names`: the plug-in modules (or files) outside this package
    that registered them."""
    modules = {CORRUPTIONS[name].fn.__module__ for name in names}
    return sorted(plugin_spec(sys.modules[m]) for m in modules if m.split(".")[0] != "cutmix_bench")


def corrupt_all(images: np.ndarray, seed: int, params: str = "cifar", names: Sequence[str] | None = None,
                workers: int = 1, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, uint8 [5 * N, H, W, 3]) per corruption in order, severities 1..5 stacked as in CIFAR-10-C's
    `<name>.npy` (rows N*(s-1) .. N*s - 1 hold severity s), computed by `workers` processes.

    The workers are plain processes fed through pipes rather than a multiprocessing.Pool: a Pool's queues hold
    named POSIX semaphores in /dev/shm that a kill -9 leaves behind, and its workers outlive a killed parent."""
    names = list(CORRUPTIONS.names() if names is None else names)
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
    reclaim_stale_segments()
    # Never plain fork: a child forked from a parent whose OpenCV / OpenMP thread pools or CUDA are running
    # can deadlock (seen: cv2.setNumThreads hanging in the child). A fork server starts from a clean process.
    context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                          else "spawn")
    tasks = deque((i, s, k) for i in range(len(names)) for s in SEVERITIES for k in chunks)
    segments: dict[int, SharedMemory] = {}
    remaining: dict[int, int] = {}
    conns, processes = [], []
    try:
        for _ in range(workers):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=_worker, args=(child_end, images, plugin_specs(names)), daemon=True)
            process.start()
            child_end.close()
            conns.append(parent_end)
            processes.append(process)
        busy: dict[Connection, deque] = {conn: deque() for conn in conns}
        done = 0
        while done < len(names):
            for conn in conns:  # two tasks per worker in flight, so none idles between two results
                while len(busy[conn]) < 2 and tasks and tasks[0][0] <= done + 1:  # at most two corruptions
                    i, s, k = tasks.popleft()
                    if i not in segments:
                        segments[i] = SharedMemory(name=f"{SEGMENT_PREFIX}{os.getpid()}-{i}", create=True,
                                                   size=int(np.prod(shape)))
                        remaining[i] = len(SEVERITIES) * len(chunks)
                        kill_point("corrupt:segment")
                    conn.send((segments[i].name, names[i], s, k, int(seed), params, chunk_size))
                    busy[conn].append(i)
            if remaining.get(done) == 0:
                segment = segments.pop(done)
                out = np.ndarray(shape, dtype=np.uint8, buffer=segment.buf).copy()
                segment.close()
                segment.unlink()
                yield names[done], out
                done += 1
                continue
            for conn in wait([c for c in conns if busy[c]]):
                try:
                    error = conn.recv()
                except EOFError:
                    raise RuntimeError("a corruption worker process died (out of memory?)") from None
                remaining[busy[conn].popleft()] -= 1
                if error is not None:
                    raise error
    finally:
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        for segment in segments.values():
            segment.close()
            segment.unlink()
