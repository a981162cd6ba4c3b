"""The contract of an evaluation: `run` scores one trained model and returns rows; `report` turns
the rows of all runs into a markdown section. Scoring, metrics and data live in separate modules.

A row is a dict with at least `metric` and `value`; `subset` (e.g. a corruption or an OOD set) and
`level` (e.g. a severity, an epsilon, an occlusion size) are the usual extra keys. The runner adds
run, method, seed, model, dataset, evaluation and `unit` (from the evaluation's `units`; every metric
and unit is described in docs/results-schema.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import Dataset, Split
from ..errors import BenchError
from ..rundir import RunDir
from .engine import CleanLogits, FeatureCatcher, Positions, classifier_head, union

Row = dict[str, Any]


@dataclass
class EvalContext:
    """A trained model in eval mode on `device`, its in-distribution data and where to put files.

    Evaluation runs in float32 even when training used bf16: bf16 logits (steps of 0.06 near 10) turn
    close calls into ties and shift NLL / ECE, so GPU and CPU numbers would differ. The model must not change
    while the context lives: `clean_logits` keeps what it computed."""

    model: nn.Module
    dataset: Dataset
    test: Split
    device: torch.device
    batch_size: int
    seed: int
    run_dir: Path
    cache_dir: Path
    train: Split | None = None  # the training split (un-augmented), for fit stages such as OOD scores' `setup`
    channels_last: bool = True
    share: bool = True  # False: each evaluation forwards its clean images itself, as before the engine (benchmarks)
    mean: torch.Tensor = field(init=False)
    std: torch.Tensor = field(init=False)
    # (data.test_subset, data.subset_seed) when `test` is that seeded subset of the dataset's test set, else None
    test_draw: tuple[int, int] | None = None
    # (data.train_subset, data.subset_seed) when `train` is that seeded subset of the training set, else None: the
    # other training images were held out from training (temperature scaling fits on them)
    train_draw: tuple[int, int] | None = None
    clean: CleanLogits = field(init=False)
    fitted: dict[int, tuple[Split, torch.Tensor, torch.Tensor]] = field(init=False)  # id(split) -> its pass
    # The model's own (mean, std) when it was trained with another normalisation than the dataset's statistics
    # (a model trained elsewhere, `cutmix-bench evaluate`); None: the dataset's, as this tool trains
    normalisation: tuple[Sequence[float], Sequence[float]] | None = None

    def __post_init__(self) -> None:
        mean, std = self.normalisation or (self.dataset.mean, self.dataset.std)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1)
        self.clean = CleanLogits(self.test.x, self.logits_features)
        self.fitted = {}

    def test_at(self, positions: Positions) -> Split:
        """The test split at `positions` (None: the whole split, in order)."""
        return self.test if positions is None else Split(self.test.x[positions], self.test.y[positions])

    def plan_clean(self, requests: list[Positions]) -> None:
        """Positions (None = all) whose clean logits the evaluations will ask for: forwarded together on first use."""
        self.clean.plan(union(requests, len(self.test)))

    def clean_logits(self, positions: Positions = None) -> torch.Tensor:
        """Logits (float32, CPU) of the clean test images at `positions` (None: all, in order), each image
        forwarded once per model (`engine.CleanLogits`)."""
        if not self.share:
            return self.logits(self.test.x if positions is None else self.test.x[torch.as_tensor(positions)])
        return self.clean(positions)

    def clean_features(self, positions: Positions = None) -> torch.Tensor:
        """Penultimate features (float32, CPU) of the clean test images at `positions`, from the same single pass
        as `clean_logits` (`engine.CleanLogits`)."""
        if not self.share:
            images = self.test.x if positions is None else self.test.x[torch.as_tensor(positions)]
            return self.logits_features(images)[1]
        return self.clean.features(positions)

    def split_features(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and penultimate features of another split (the training split, for fitted OOD scores), forwarded
        once per model however many scores ask."""
        if id(split) not in self.fitted:
            self.fitted[id(split)] = (split, *self.logits_features(split.x))  # the split is kept: its id stays its own
        return self.fitted[id(split)][1:]

    def head(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight [K, D] and bias [K] (float64, CPU) of the model's classifier head (`engine.classifier_head`)."""
        head = classifier_head(self.model)
        if head is None:
            raise BenchError(f"model {type(self.model).__name__}: a feature-based OOD score needs a final nn.Linear "
                             f"classifier (its input is the penultimate feature); the model has none")
        bias = head.bias if head.bias is not None else torch.zeros(head.out_features)
        return head.weight.detach().double().cpu(), bias.detach().double().cpu()

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        """Differentiable logits of float images in [0, 1], NCHW on the device; normalisation inside."""
        x = (x01 - self.mean).div_(self.std)  # in place: one temporary less per batch, the same bits as `/`
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x).float()

    def to_float(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """uint8 NHWC (CPU or device) -> float [0, 1] NCHW on the device."""
        images = torch.as_tensor(images).to(self.device, non_blocking=True)
        return images.permute(0, 3, 1, 2).float().div_(255)

    def batches(self, n: int) -> Iterator[slice]:
        for start in range(0, n, self.batch_size):
            yield slice(start, min(start + self.batch_size, n))

    @torch.inference_mode()
    def logits(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Logits [N, K] (float32, CPU) of uint8 NHWC images, in batches under inference mode."""
        out = [self.forward(self.to_float(images[index])).cpu() for index in self.batches(len(images))]
        return torch.cat(out) if out else torch.empty(0, 0)

    @torch.inference_mode()
    def logits_features(self, images: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """`logits` of the images and, from the same forward, their penultimate features [N, D] (float32, CPU;
        the input of the classifier head, D = 0 for a model without one)."""
        with FeatureCatcher(classifier_head(self.model)) as catcher:
            logits = self.logits(images)
        return logits, catcher.take(len(images))


@dataclass
class ReportContext:
    """What a report section needs besides the rows: where figures go and the method order."""

    out_dir: Path
    figures_dir: Path
    methods: list[str]

    def run_dir(self, run: str) -> RunDir:
        """The folder of the run named `run` (the `run` column of the rows) in this results directory."""
        return RunDir.named(self.out_dir, run)


@dataclass(frozen=True)
class Headline:
    """A row of the report's summary that an evaluation declares: `select` picks, from the rows of one evaluation
    label, the rows averaged per run. `evaluation` is the label it reads (set by `summary.suite_headlines`; empty
    for a headline of an evaluation the suite does not run)."""

    key: str
    label: str
    lower_is_better: bool
    select: Callable[[pd.DataFrame], pd.DataFrame]
    evaluation: str = ""
    optional: bool = False  # left out of the summary when no run has its rows (OOD far: only with real far sets)

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


def metric_rows(metric: str, **equal: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A `Headline.select`: the rows of `metric` whose columns equal `equal` (`level` compared as a number)."""

    def select(rows: pd.DataFrame) -> pd.DataFrame:
        keep = rows["metric"] == metric
        for column, value in equal.items():
            if column not in rows:
                return rows.iloc[0:0]
            keep &= rows[column].astype(str) == str(value) if column != "level" else \
                pd.to_numeric(rows[column], errors="coerce") == value
        return rows[keep]

    return select


@dataclass(frozen=True)
class Plan:
    """What `run` will score, for `cutmix-bench run --dry-run`: distinct images, forward passes (a
    backward pass counts as two) and a one-line description."""

    images: int
    passes: int
    text: str


class Evaluation:
    """Base class. Subclasses take their suite parameters as keyword arguments in `__init__`
    (validated there), and set `title`."""

    title = "Evaluation"
    units: dict[str, str] = {}  # metric -> unit of its `value` (percent, nats, count, ...): results.csv `unit`

    @classmethod
    def unit(cls, metric: str) -> str:
        """The unit of `metric`'s values; "" when the evaluation does not state it (a plug-in may not)."""
        return cls.units.get(metric, "")
    headlines: ClassVar[tuple[Headline, ...]] = ()  # its rows in the report's summary, for every label it runs under
    # metric -> column heading: its rows form the report's main table (beside training time) instead of a section
    main_columns: ClassVar[dict[str, str]] = {}

    def plan(self, test_size: int, side: int, device_type: str) -> Plan:
        """The work of `run` on a test split of `test_size` images of `side` pixels (default: one pass each)."""
        return Plan(test_size, test_size, f"{test_size:,} test images")

    def check_image_side(self, side: int) -> None:
        """Checked before training: raise ValueError("<parameter>: ...") when a parameter does not fit images of
        `side` pixels (the runner names the key evaluations.<label>.<parameter>). Default: nothing to check."""

    def clean_positions(self, test: Split, device_type: str) -> Positions:
        """Positions in `test` (None: all) whose clean logits `run` takes from `EvalContext.clean_logits`, so that
        the runner can have them forwarded once for every evaluation. Default: none."""
        return np.empty(0, dtype=np.int64)

    def run(self, ctx: EvalContext) -> list[Row]:
        raise NotImplementedError

    @classmethod
    def report(cls, rows: pd.DataFrame, ctx: ReportContext) -> str:
        """Markdown for this evaluation's rows of every run (columns as in results.csv); may save
        figures into `ctx.figures_dir`. An empty string adds no section."""
        return ""
