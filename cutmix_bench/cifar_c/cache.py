"""The suite-shared cache of generated corruption sets: generated once per test split, params, seed
and code version, then reused after checking every file's sha256 against metadata.json.

Runs of a suite may be parallel processes sharing `cache_dir`: an exclusive lock file serialises
checking and generating; files are only ever replaced by atomic renames, so readers that already
memory-mapped a file keep a consistent copy. A file that fails its checksum is regenerated, with a
warning, never used.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from ..io import locked
from .files import SEVERITIES, read_metadata, verify
from .generate import code_version, dataset_sha256, generate

log = logging.getLogger("cutmix_bench")


def cache_path(cache_dir: Path, dataset: str, images: np.ndarray, labels: np.ndarray, params: str, seed: int) -> Path:
    """`<cache_dir>/corruptions/<dataset>-<data hash>-<params>-seed<seed>-<code version>`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset)[:40] or "data"
    version = code_version().replace("+", "-")
    identity = dataset_sha256(images, labels)[:16]
    return Path(cache_dir) / "corruptions" / f"{slug}-{identity}-{params}-seed{seed}-{version}"


def cached_corruptions(cache_dir: Path, dataset: str, images: np.ndarray, labels: np.ndarray, corruptions: list[str],
                       params: str = "cifar", seed: int = 0, workers: int = 1) -> Path:
    """The cache directory holding verified files of `corruptions` (all 5 severities each) for
    this test split; missing or corrupt files are generated first."""
    root = cache_path(cache_dir, dataset, images, labels, params, seed)
    root.parent.mkdir(parents=True, exist_ok=True)
    with locked(root.parent / f"{root.name}.lock"):
        meta = read_metadata(root)
        files = [f"{c}.npy" for c in corruptions]
        bad = verify(root, meta, files)
        corrupt = [f for f in bad if f in meta.get("files", {})]
        if corrupt:
            log.warning("corruption cache %s: %s fail their sha256 check; regenerating them", root, corrupt)
        # labels.npy alone failing is rare and cheap to fix together with the requested files
        need = [c for c in corruptions if f"{c}.npy" in bad] or corruptions
        if bad:
            log.info("corruption cache %s: generating %d corruption(s) x %d severities for %d images", root.name,
                     len(need), len(SEVERITIES), len(images))
            generate(root, images, labels, dataset, params, seed, need, SEVERITIES, workers)
    return root
