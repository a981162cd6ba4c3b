"""Common corruptions of CIFAR-10-C / CIFAR-100-C (Hendrycks & Dietterich, ICLR 2019) and of CIFAR-10-C-bar
(Mintun et al., NeurIPS 2021) as batched functions.

Each corruption is one function registered with `register_corruption` (`registry.py`) in its category's file
(`noise.py`, `blur.py`, `weather.py`, `digital.py`; the C-bar family in `cbar.py`) or in a user's plug-in file;
`apply.py` applies one (`corrupt`, `corrupt_seeded`), `parallel.py` generates whole sets over worker processes
(`corrupt_all`).

`ALL`, `BENCHMARK`, `EXTRA`, `CATEGORY` (name -> noise | blur | weather | digital | extra) and `OPS`
(name -> function) are views of the "c" family (CIFAR-C), `CBAR` the names of the "c-bar" family; all are
computed when read, so they include plug-ins loaded later.
"""

from __future__ import annotations

from typing import Any

try:  # pyproject names no OpenCV build (see there): either opencv-python or opencv-python-headless serves
    import cv2  # noqa: F401
except ImportError as error:
    raise ImportError("cutmix_bench needs OpenCV (the cv2 module): pip install opencv-python-headless (servers) "
                      "or opencv-python") from error

from . import blur, cbar, digital, noise, weather  # noqa: F401  (each module registers its corruptions)
from .apply import CHUNK_SIZE, PARAMS, chunk_rng, corrupt, corrupt_seeded
from .parallel import corrupt_all
from .registry import CATEGORIES, CORRUPTIONS, FAMILIES, SEVERITIES, Corruption, register_corruption


def __getattr__(name: str) -> Any:
    names = CORRUPTIONS.names("c")
    views = {
        "CBAR": lambda: CORRUPTIONS.names("c-bar"),
        "ALL": lambda: names,
        "BENCHMARK": lambda: [n for n in names if not CORRUPTIONS[n].extra],
        "EXTRA": lambda: [n for n in names if CORRUPTIONS[n].extra],
        "CATEGORY": lambda: {n: "extra" if CORRUPTIONS[n].extra else CORRUPTIONS[n].category for n in names},
        "OPS": lambda: {n: CORRUPTIONS[n].fn for n in names},
    }
    if name not in views:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return views[name]()


__all__ = ["ALL", "BENCHMARK", "CATEGORIES", "CATEGORY", "CBAR", "CHUNK_SIZE", "CORRUPTIONS", "Corruption", "EXTRA",
           "FAMILIES", "OPS", "PARAMS", "SEVERITIES", "chunk_rng", "corrupt", "corrupt_all", "corrupt_seeded",
           "register_corruption"]
