"""A suite's components, built and checked once per process: the methods and the evaluations by label, and
the model factory with checked parameters.

`suite_file.validate` builds them (building is the check: a bad name or parameter is one BenchError naming
its key); the run's fit, the evaluation loop, `--dry-run` and the training-inputs figure take them from
`components(suite)` instead of building again. Spawned workers validate the suite dump again, so they build
once per process. A method or evaluation object serves every run of its process, so it keeps no state across
runs beyond what each run sets again (`attach(model)`, an OOD score's `setup`). The model is not shared:
every run needs fresh weights, so `model(num_classes)` is one factory call per use (training, then loading
the checkpoint), with the parameters checked here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from torch import nn

from .config import Suite, check_name
from .data import DATASETS
from .errors import BenchError
from .evaluations import EVALUATIONS, Evaluation
from .methods import Method, create_method
from .models import MODELS, create_model
from .registry import check_kwargs
from .rundir import RESERVED_LABELS


@dataclass(frozen=True)
class Components:
    methods: dict[str, Method]
    evaluations: dict[str, Evaluation]
    model_name: str
    model_params: dict[str, Any]

    def model(self, num_classes: int) -> nn.Module:
        """A new model with fresh weights."""
        return create_model(self.model_name, num_classes, "model", **self.model_params)


_BUILT: dict[str, Components] = {}  # repr of a suite's dump -> its components (the last few suites)


def components(suite: Suite) -> Components:
    """The components of `suite`, built on first use (and so checked). Kept per suite content, so the copy that
    an in-process worker validates from the suite dump finds what validation built."""
    key = repr(suite.model_dump())
    if key not in _BUILT:
        while len(_BUILT) >= 16:
            del _BUILT[next(iter(_BUILT))]
        _BUILT[key] = build(suite)
    return _BUILT[key]


def check_evaluation_label(label: str) -> None:
    """An evaluation label names its file in the run folder (eval/<label>.csv), so it follows the rule of method
    labels and is none of the names the run folder keeps for itself (any case: some file systems ignore it)."""
    check_name(label, "evaluations")
    if label.lower() in RESERVED_LABELS:
        raise BenchError(f"evaluations.{label}: the label {label!r} is reserved (the training rows use it); choose "
                         f"another label, e.g. `{label}_eval: {{evaluation: ...}}`")


def build(suite: Suite) -> Components:
    """Check the dataset's name and parameters (data is not loaded) and the model's (none is built), build the
    methods and evaluations."""
    dataset = DATASETS.get(suite.data.name, "data.name")
    check_kwargs(dataset, suite.data.params, "data.params")
    given = {"root": suite.data.root, "download": suite.data.download or None}  # what the runner passes
    check_kwargs(dataset, {k: v for k, v in given.items() if v is not None}, "data")

    if not suite.methods:
        raise BenchError("methods: expected at least one method")
    methods = {}
    for label in suite.methods:
        check_name(label, "methods")
        name, params = suite.method_spec(label)
        methods[label] = create_method(name, f"methods.{label}", **params)
    evaluations = {}
    for label in suite.evaluations:
        check_evaluation_label(label)
        name, params = suite.evaluation_spec(label)
        evaluations[label] = EVALUATIONS.create(name, f"evaluations.{label}", **params)
    if not suite.model.name.startswith(("timm:", "torchvision:")):
        check_kwargs(MODELS.get(suite.model.name, "model.name"), suite.model.params, "model.params")
    elif suite.model.name.startswith("timm:") and importlib.util.find_spec("timm") is None:
        raise BenchError(f"model.name: {suite.model.name} needs timm, which is not installed (pip install timm)")
    return Components(methods, evaluations, suite.model.name, dict(suite.model.params))
