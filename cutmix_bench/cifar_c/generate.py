"""Writing a corruption directory in the CIFAR-C release format for a test set: seeded, parallel,
byte-identical for the same seed whatever the number of workers.

Severity block s of `<corruption>.npy` equals `corruptions.corrupt_seeded(corruption, images, s, seed)`:
every chunk of `CHUNK_SIZE` images draws from its own generator `chunk_rng(seed, corruption, s, chunk)`
(a SeedSequence keyed by seed, corruption, severity and chunk), so workers, the order tasks finish in
and which other corruptions were asked for change no byte. Tasks are chunks; each worker writes its
rows straight into a memory-mapped temporary file, renamed onto `<corruption>.npy` only once all its
rows are in, so a crash never leaves a partial file.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import BenchError
from .files import LABELS, SEVERITIES, read_metadata, save_npy, sha256_file, write_metadata

log = logging.getLogger("cutmix_bench")


def corruption_names() -> tuple[str, ...]:
    from ..corruptions import ALL

    return tuple(ALL)


def params_names() -> tuple[str, ...]:
    from ..corruptions import PARAMS

    return tuple(PARAMS)


def code_version() -> str:
    """Package version + hash of the corruption code and of this module (the seeding scheme), so any
    change to the algorithms invalidates caches made by older code."""
    from .. import corruptions

    digest = hashlib.sha256()
    sources = sorted(Path(corruptions.__file__).parent.rglob("*.py")) + [Path(__file__)]
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def dataset_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """Identity of a test split: its shapes, pixels and labels in order."""
    digest = hashlib.sha256(repr((images.shape, labels.shape)).encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels.astype(np.int64)).data)
    return digest.hexdigest()


def check_request(corruptions: Iterable[str], severities: Iterable[int], params: str,
                  prefix: str = "") -> tuple[list[str], list[int]]:
    """Known names in canonical (ALL) order and sorted severities; a BenchError naming
    `<prefix>corruptions`, `<prefix>severities` or `<prefix>params` otherwise."""
    names, known = list(corruptions), corruption_names()
    unknown = [c for c in names if c not in known]
    if unknown:
        raise BenchError(f"{prefix}corruptions: unknown corruption(s) {unknown}; expected names from {list(known)}")
    if not names:
        raise BenchError(f"{prefix}corruptions: expected at least one corruption")
    levels = sorted(set(severities))
    if not levels or any(s not in SEVERITIES for s in levels):
        raise BenchError(f"{prefix}severities: expected values in {list(SEVERITIES)}, got {list(severities)}")
    if params not in params_names():
        raise BenchError(f"{prefix}params: expected one of {list(params_names())}, got {params!r}")
    return [c for c in known if c in names], levels


def default_workers() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def start_context() -> multiprocessing.context.BaseContext:
    """fork (workers start at once, share the images) unless CUDA is initialised in this process,
    e.g. inside a suite run on a GPU, where forking is unsafe and workers are spawned instead."""
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_initialized()
    fork = "fork" in multiprocessing.get_all_start_methods() and not cuda
    return multiprocessing.get_context("fork" if fork else "spawn")


_IMAGES: np.ndarray | None = None  # the clean test images inside a worker process


def _init_worker(images: np.ndarray) -> None:
    global _IMAGES
    _IMAGES = images


def _fill(tmp: str, block: int, chunk: int, corruption: str, severity: int, seed: int, params: str) -> None:
    """Corrupt chunk `chunk` of the worker's images and write it into severity block `block` of `tmp`."""
    from ..corruptions import CHUNK_SIZE, chunk_rng, corrupt

    assert _IMAGES is not None
    part = _IMAGES[chunk * CHUNK_SIZE:(chunk + 1) * CHUNK_SIZE]
    out = corrupt(corruption, part, severity, chunk_rng(seed, corruption, severity, chunk), params=params)
    if out.dtype != np.uint8 or out.shape != part.shape:
        raise RuntimeError(f"corrupt({corruption!r}) returned {out.dtype} {out.shape}, expected uint8 {part.shape}")
    target = np.lib.format.open_memmap(tmp, mode="r+")
    start = block * len(_IMAGES) + chunk * CHUNK_SIZE
    target[start:start + len(out)] = out
    target.flush()
    del target


def write_corruptions(out: Path, images: np.ndarray, corruptions: list[str], severities: list[int],
                      params: str, seed: int, workers: int = 1) -> dict[str, str]:
    """Write `<corruption>.npy` for each name (severity blocks in `severities` order); return the
    sha256 of each file written. `workers` > 1 runs the chunks in that many processes."""
    from ..corruptions import CHUNK_SIZE

    out.mkdir(parents=True, exist_ok=True)
    n = len(images)
    tmps = {}
    for name in corruptions:
        tmps[name] = out / f".{name}.npy.{os.getpid()}.tmp"
        np.lib.format.open_memmap(tmps[name], mode="w+", dtype=np.uint8, shape=(len(severities) * n, *images.shape[1:]))
    chunks = range(-(-n // CHUNK_SIZE))
    tasks = [(name, block, chunk, s) for name in corruptions for block, s in enumerate(severities) for chunk in chunks]
    remaining = {name: len(severities) * len(chunks) for name in corruptions}
    digests: dict[str, str] = {}

    def finish(name: str) -> None:
        remaining[name] -= 1
        if remaining[name] == 0:
            digests[f"{name}.npy"] = sha256_file(tmps[name])
            os.replace(tmps[name], out / f"{name}.npy")

    try:
        if workers <= 1:
            _init_worker(images)
            for name, block, chunk, s in tasks:
                _fill(str(tmps[name]), block, chunk, name, s, seed, params)
                finish(name)
        else:
            with ProcessPoolExecutor(workers, start_context(), initializer=_init_worker, initargs=(images,)) as pool:
                pending = {pool.submit(_fill, str(tmps[name]), block, chunk, name, s, seed, params): name
                           for name, block, chunk, s in tasks}
                try:
                    while pending:
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            future.result()
                            finish(pending.pop(future))
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        for tmp in tmps.values():
            if tmp.exists():
                tmp.unlink()
    return digests


def generate(out: str | Path, images: np.ndarray, labels: np.ndarray, dataset: str, params: str = "cifar",
             seed: int = 0, corruptions: Iterable[str] | None = None, severities: Iterable[int] = SEVERITIES,
             workers: int = 1) -> dict[str, Any]:
    """Write (or add to) a directory in the release format for the test split (`images`, `labels`)
    and its metadata.json; return the metadata. Files of an earlier generation with a different
    identity (data, params, seed, code, severities) are not kept in the metadata."""
    out = Path(out)
    names, levels = check_request(corruption_names() if corruptions is None else corruptions, severities, params)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or not len(images) == len(labels) > 0:
        raise BenchError(f"{dataset}: expected uint8 [N, H, W, 3] images with N > 0 labels, "
                         f"got {images.dtype} {list(images.shape)} and {len(labels)} labels")
    identity = {"dataset_sha256": dataset_sha256(images, labels), "params": params, "seed": seed,
                "code_version": code_version(), "severities": levels}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"{out}: cannot create the output directory ({exc.strerror})") from exc
    previous = read_metadata(out)
    files = dict(previous.get("files", {})) if all(previous.get(k) == v for k, v in identity.items()) else {}
    started = time.perf_counter()
    tiled = np.tile(labels, len(levels))
    files[LABELS] = save_npy(out / LABELS, tiled.astype(np.uint8 if tiled.max(initial=0) < 256 else np.int64))
    files.update(write_corruptions(out, np.ascontiguousarray(images), names, levels, params, seed, workers))
    meta = {**identity, "format": "CIFAR-C release layout: <corruption>.npy uint8 [severities x N, H, W, 3], "
                                  "labels.npy; severity block order as in 'severities'",
            "dataset": dataset, "images": len(images), "image_shape": list(images.shape[1:]),
            "corruptions": [c for c in corruption_names() if f"{c}.npy" in files], "files": files,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "generation_seconds": round(time.perf_counter() - started, 2)}
    write_metadata(out, meta)
    return meta


def generate_test_set(dataset: str, root: Path | None, out: Path, params: str = "cifar", seed: int = 0,
                      corruptions: list[str] | None = None, severities: Iterable[int] = SEVERITIES,
                      workers: int | None = None) -> dict[str, Any]:
    """`cutmix-bench corrupt`: the test split of a registered dataset -> a directory at `out`."""
    from ..data import create_dataset

    check_request(corruption_names() if corruptions is None else corruptions, severities, params, "--")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise BenchError(f"--workers: expected >= 1, got {workers}")
    test = create_dataset(dataset, "--dataset", **({} if root is None else {"root": root})).load("test")
    return generate(out, test.x.numpy(), test.y.numpy(), dataset if root is None else f"{dataset}:{root}", params,
                    seed, corruptions, severities, workers)
