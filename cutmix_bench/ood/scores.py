"""OOD scores (OpenOOD's "postprocessors"): higher = more in-distribution.

Each score is a small function; the registry wraps it as a `Score` that maps a batch of uint8 NHWC images
(and their logits, computed once per set and shared by all logit scores) to one score per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
import torch

from ..data import Split
from ..registry import Registry


class ScoringContext(Protocol):
    """What a score may use of the evaluation context (`evaluations.base.EvalContext` is one): declared here so
    that scores, below the evaluations, do not import them."""

    def forward(self, x01: torch.Tensor) -> torch.Tensor: ...
    def to_float(self, images: torch.Tensor | np.ndarray) -> torch.Tensor: ...
    def batches(self, n: int) -> Iterator[slice]: ...
    def logits(self, images: torch.Tensor | np.ndarray) -> torch.Tensor: ...
    def logits_features(self, images: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]: ...
    def split_features(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]: ...
    def head(self) -> tuple[torch.Tensor, torch.Tensor]: ...


def msp(logits: torch.Tensor) -> torch.Tensor:
    """Maximum softmax probability (Hendrycks & Gimpel 2017; the CutMix paper's detector)."""
    return logits.float().softmax(1).max(1).values


def max_logit(logits: torch.Tensor) -> torch.Tensor:
    """Maximum logit (Hendrycks et al. 2022)."""
    return logits.float().max(1).values


def energy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Negative free energy T * logsumexp(logits / T) (Liu et al. 2020)."""
    return temperature * torch.logsumexp(logits.float() / temperature, 1)


def odin(forward: Callable[[torch.Tensor], torch.Tensor], x01: torch.Tensor, temperature: float = 1000.0,
         epsilon: float = 0.0014) -> torch.Tensor:
    """ODIN (Liang et al. 2018): MSP of logits / T after one step that raises the max softmax of logits / T.

    As the original code (facebookresearch/odin calData.py) and OpenOOD's ODINPostprocessor: g = gradient of
    the cross entropy of logits / T against the predicted class (= -log max softmax), sign s = +1 where
    g >= 0 else -1 (`torch.ge(grad, 0)` mapped to {-1, +1}), x' = x - epsilon * s, no clipping. So a pixel
    with zero gradient moves by -epsilon, as there (pytorch-ood's `sign` would leave it in place). The step
    is taken in [0, 1] pixel space; the reference code steps on normalised inputs by epsilon / std per
    channel, which is the same step. `forward` maps [0, 1] NCHW images to logits (normalisation inside)."""
    with torch.enable_grad():
        x = x01.detach().clone().requires_grad_(True)
        cross_entropy = -(forward(x) / temperature).log_softmax(1).max(1).values.sum()
        (grad,) = torch.autograd.grad(cross_entropy, x)
    sign = torch.where(grad >= 0, 1.0, -1.0)
    with torch.no_grad():
        return msp(forward(x01 - epsilon * sign) / temperature)


class Score:
    """Base: `__call__(ctx, images, logits)` -> float64 scores [N]; `images` uint8 NHWC CPU, `logits` theirs.

    `setup` is the fit stage (OpenOOD's postprocessor `setup`): called once per model before scoring, with the
    training split, so that scores such as Mahalanobis, KNN or ViM can fit their statistics."""

    def setup(self, ctx: ScoringContext, train: Split) -> None:
        """Nothing to fit by default."""

    def __call__(self, ctx: ScoringContext, images: torch.Tensor, logits: torch.Tensor) -> np.ndarray:
        raise NotImplementedError


class LogitScore(Score):
    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.function = function

    def __call__(self, ctx: ScoringContext, images: torch.Tensor, logits: torch.Tensor) -> np.ndarray:
        return self.function(logits).double().numpy()


SCORES: Registry[Score] = Registry("OOD score")


@SCORES.register("msp")
def _msp() -> Score:
    """Maximum softmax probability (Hendrycks & Gimpel, ICLR 2017), the CutMix paper's detector."""
    return LogitScore(msp)


@SCORES.register("maxlogit")
def _max_logit() -> Score:
    """Maximum logit (Hendrycks et al., ICML 2022)."""
    return LogitScore(max_logit)


@SCORES.register("energy")
def _energy(temperature: float = 1.0) -> Score:
    """Negative free energy T * logsumexp(logits / T) (Liu et al., NeurIPS 2020)."""
    if not temperature > 0:  # NaN too
        raise ValueError(f"energy temperature must be > 0, got {temperature}")
    return LogitScore(lambda logits: energy(logits, temperature))


@SCORES.register("odin")
class Odin(Score):
    """ODIN (Liang et al., ICLR 2018): MSP at temperature T after one input-perturbation step. Needs the model
    and the images (one gradient per image), so it is slower than the logit scores."""

    def __init__(self, temperature: float = 1000.0, epsilon: float = 0.0014) -> None:
        if not (temperature > 0 and epsilon >= 0) or math.isinf(temperature) or math.isinf(epsilon):  # NaN too
            raise ValueError(f"odin needs temperature > 0 and epsilon >= 0, got {temperature}, {epsilon}")
        self.temperature, self.epsilon = temperature, epsilon

    def __call__(self, ctx: ScoringContext, images: torch.Tensor, logits: torch.Tensor) -> np.ndarray:
        out = [odin(ctx.forward, ctx.to_float(images[index]), self.temperature, self.epsilon).cpu()
               for index in ctx.batches(len(images))]
        return torch.cat(out).double().numpy()
