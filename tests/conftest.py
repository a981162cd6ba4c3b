"""Shared fixtures: the location of the real data (skipped when absent) and one CPU thread per test
session, so that the suite behaves the same on a busy 2-core CI machine as on a laptop. The session gets its own
cache folder: `list` caches its text there, and a test process's registries hold the tests' plug-ins."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

from helpers import data_root

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(1)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="cutmix-bench-test-cache-")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """$CUTMIX_BENCH_DATA, else `<repo root>/../shared/data`; tests using it skip when it is missing."""
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set CUTMIX_BENCH_DATA)")
    return root
