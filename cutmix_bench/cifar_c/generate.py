"""Writing a corruption directory in the CIFAR-C release format for a test set, with metadata.json.

The images come from `corruptions.corrupt_all`: severity block s of `<corruption>.npy` equals
`corrupt_seeded(corruption, images, s, seed)`, every chunk of CHUNK_SIZE images drawn from its own generator
(a SeedSequence keyed by seed, corruption, severity and chunk), so the same seed gives byte-identical
files whatever the number of workers or the other corruptions requested. Each file is written to a
temporary file and renamed into place, so a crash never leaves a partial file.
"""

from __future__ import annotations

import hashlib
import inspect
import multiprocessing
import os
import time
from collections.abc import Iterable
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .. import corruptions as package
from ..corruptions import CORRUPTIONS, FAMILIES, PARAMS, corrupt_all
from ..errors import BenchError
from .files import LABELS, SEVERITIES, read_metadata, save_npy, write_metadata


def corruption_names() -> tuple[str, ...]:
    return tuple(CORRUPTIONS.names())


def family_names(families: Iterable[str], prefix: str = "") -> list[str]:
    """The registered corruptions of `families` ("c": CIFAR-C, "c-bar": CIFAR-10-C-bar), in the registry's
    order; a BenchError naming `<prefix>families` otherwise."""
    chosen = [families] if isinstance(families, str) else list(families)
    if not chosen or any(f not in FAMILIES for f in chosen):
        raise BenchError(f"{prefix}families: expected one or more of {list(FAMILIES)}, got {families!r}")
    return [name for family in FAMILIES if family in chosen for name in CORRUPTIONS.names(family)]


def params_names() -> tuple[str, ...]:
    return tuple(PARAMS)


def code_version() -> str:
    """Package version + hash of the corruption code, of this module (the seeding scheme) and of the plug-in
    files that registered corruptions, so any change to the algorithms invalidates caches made by older code."""
    digest = hashlib.sha256()
    plugins = {inspect.getsourcefile(CORRUPTIONS[name].fn) for name in corruption_names()}
    own = set(Path(package.__file__).parent.rglob("*.py"))
    sources = sorted(own) + [Path(__file__)] + sorted({Path(p) for p in plugins if p} - own)
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
    cbar = [c for c in names if CORRUPTIONS[c].family == "c-bar"]
    if cbar and params != "cifar":
        raise BenchError(f"{prefix}params: {params!r}, but the C-bar corruptions {cbar} have only CIFAR-10-C-bar "
                         "parameters; expected 'cifar' (or no c-bar corruption)")
    return [c for c in known if c in names], levels


def default_workers() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write_corruptions(out: Path, images: np.ndarray, corruptions: list[str], severities: list[int],
                      params: str, seed: int, workers: int = 1) -> dict[str, str]:
    """Write `<corruption>.npy` for each name, holding the blocks of `severities` in that order, and
    return each file's sha256. All 5 severities are computed (`corrupt_all`); a block's bytes do not
    depend on which others are kept."""
    keep = [SEVERITIES.index(s) for s in severities]
    if workers > 1 and multiprocessing.current_process().daemon:
        workers = 1  # e.g. inside a suite's worker pool (`jobs`): daemonic processes may not start children
    digests = {}
    with closing(corrupt_all(images, seed, params, corruptions, workers)) as arrays:
        for name, array in arrays:
            if len(keep) < len(SEVERITIES):
                blocks = array.reshape(len(SEVERITIES), len(images), *images.shape[1:])[keep]
                array = blocks.reshape(-1, *images.shape[1:])
            digests[f"{name}.npy"] = save_npy(out / f"{name}.npy", array)
    return digests


def generate(out: str | Path, images: np.ndarray, labels: np.ndarray, dataset: str, params: str = "cifar",
             seed: int = 0, corruptions: Iterable[str] | None = None, severities: Iterable[int] = SEVERITIES,
             workers: int = 1) -> dict[str, Any]:
    """Write (or add to) a directory in the release format for the test split (`images`, `labels`)
    and its metadata.json; return the metadata. Files of an earlier generation with a different
    identity (data, params, seed, code, severities) are not kept in the metadata."""
    out = Path(out)
    names, levels = check_request(family_names(("c",)) if corruptions is None else corruptions, severities, params)
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
                      workers: int | None = None, families: Iterable[str] = ("c",)) -> dict[str, Any]:
    """`cutmix-bench corrupt`: the test split of a registered dataset -> a directory at `out`; `corruptions`
    (names) when given, else every corruption of `families`."""
    from ..data import create_dataset

    corruptions = family_names(families, "--") if corruptions is None else corruptions
    check_request(corruptions, severities, params, "--")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise BenchError(f"--workers: expected >= 1, got {workers}")
    test = create_dataset(dataset, "--dataset", **({} if root is None else {"root": root})).load("test")
    return generate(out, test.x.numpy(), test.y.numpy(), dataset if root is None else f"{dataset}:{root}", params,
                    seed, corruptions, severities, workers)
