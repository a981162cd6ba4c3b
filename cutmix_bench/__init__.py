"""cutmix-bench: train and compare mixing-based augmentations, then score robustness.

The public face, imported lazily (PEP 562) so that `import cutmix_bench.corruptions` does not pay for torch
and Lightning:

    import cutmix_bench as cb
    suite = cb.load_suite("suites/smoke.yaml", ["train.epochs=2"])
    out, failures = cb.run_suite(suite)
    table = cb.evaluate(model, data="cifar100", normalisation="dataset")  # a model trained elsewhere

and the registries a plug-in adds its components to: `METHODS`, `MODELS`, `DATASETS`, `EVALUATIONS`, `SCORES`,
`CORRUPTIONS` (`register_corruption`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_suite": "suite_file", "Suite": "config", "run_suite": "runner", "load_plugins": "plugins",
    "evaluate": "scoring",
    "METHODS": "methods", "MODELS": "models", "DATASETS": "data", "EVALUATIONS": "evaluations",
    "SCORES": "ood.scores", "CORRUPTIONS": "corruptions", "register_corruption": "corruptions", "BenchError": "errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cutmix_bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
