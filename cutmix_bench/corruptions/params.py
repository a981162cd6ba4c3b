"""The per-severity parameter tables by set, read from the registry (each corruption's decorator holds its own):
`CIFAR` (the CIFAR-10-C reference script, hendrycks/robustness `ImageNet-C/create_c/make_cifar_c.py`, also used
for CIFAR-100-C) and `IMAGENET` (the values hard-coded by `imagecorruptions` 1.1.2, Michaelis et al. 2019; no
elastic_transform, whose ImageNet-C algorithm differs), of the "c" family (CIFAR-C). Name -> list of 5, computed
when read (plug-ins included); used by the fidelity tests and the speed benchmark.
"""

from __future__ import annotations

from typing import Any

from .registry import CORRUPTIONS

_TABLES = {"CIFAR": "cifar", "IMAGENET": "imagenet"}


def __getattr__(name: str) -> Any:
    if name not in _TABLES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    table = _TABLES[name]
    return {n: list(CORRUPTIONS[n].tables[table]) for n in CORRUPTIONS.names("c") if table in CORRUPTIONS[n].tables}
