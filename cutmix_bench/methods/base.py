"""The contract of a mixing method: sample parameters in one place, apply them in another.

Methods work on whole batches already on the device: `x` is a normalised float batch [B, C, H, W],
`y` soft targets [B, K]. Random parameters come from a NumPy generator so that the same seed gives
the same batch on CPU and GPU; only the application touches the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..checks import check_number


class Method:
    """Base class: `__call__` = `apply(x, y, sample(batch_size, height, width, rng))`.

    `reference` names the paper, year and official code; `cutmix-bench list` shows it with the first
    docstring line. The hooks the runner calls, each a no-op here: `attach(model)` once with the model being
    trained (hidden-feature methods hook into it), `loss(model, x, y, rng)` for a method with its own objective,
    `set_normalisation(mean, std)` with the loader's normalisation (for methods that work on raw pixels); and
    `criterion(logits, target)`, looked up by name, replaces the soft cross-entropy on the mixed batch (a method
    whose official code trains with another loss, as an option; None = the default)."""

    reference = ""
    # False: needs the runner (hidden-feature hooks via `attach(model)`, or its own loss), not a collate_fn
    input_space = True

    def attach(self, model: torch.nn.Module) -> None:
        """Give the method the model it trains (no-op for input-space methods)."""

    def check_model(self, model: torch.nn.Module) -> None:
        """Raise BenchError if the method cannot train `model` (hidden-feature methods need its stages); called
        before any run starts, so a misfit stops the command instead of failing every run."""

    def check_image(self, height: int, width: int) -> None:
        """Raise ValueError if the method's sizes do not fit images of height x width; called with the data's
        size before any run starts."""

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(loss, logits) of a training step that replaces the step's mix-then-soft-cross-entropy (AugMix's
        Jensen-Shannon loss over extra views); None, the default: the step mixes with `__call__`."""
        return None

    def set_normalisation(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """The loader's per-channel mean and std (a method that works on raw pixels undoes it); default: unused."""

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        return {}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y

    def __call__(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, height, width = x.shape
        return self.apply(x, y, self.sample(batch, height, width, rng))


def has_own_loss(method: object) -> bool:
    """The method overrides `Method.loss` (a duck-typed method counts when it defines `loss`)."""
    return getattr(type(method), "loss", Method.loss) is not Method.loss


def check_positive(name: str, value: float) -> float:
    if not check_number(name, value) > 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def check_probability(name: str, value: float) -> float:
    if not 0.0 <= check_number(name, value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def check_mode(mode: str) -> str:
    if mode not in ("batch", "elem"):
        raise ValueError(f"mode must be 'batch' (one draw per batch, as the official code) or 'elem', got {mode!r}")
    return mode


LOSSES = ("soft_ce", "bce")


def softmax_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The objective of the official Manifold Mixup and PuzzleMix code, `bce_loss(softmax(output),
    reweighted_target)` with bce_loss = nn.BCELoss(): binary cross-entropy of each class probability against its
    target weight, mean over the batch and the classes (so 1/K of the scale of the soft cross-entropy)."""
    return torch.nn.functional.binary_cross_entropy(torch.softmax(logits.float(), dim=1), target.float())


def criterion_for(loss: str) -> Any:
    """None for the runner's soft cross-entropy ('soft_ce'), `softmax_bce` for 'bce' (the `criterion` hook)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be 'soft_ce' (the soft cross-entropy every method trains with) or 'bce' (the "
                         f"official code's BCE on the softmax), got {loss!r}")
    return softmax_bce if loss == "bce" else None


def output_problem(x: torch.Tensor, y: torch.Tensor, mixed_x: object, mixed_y: object) -> str | None:
    """What is wrong with a method's output (`mixed_x`, `mixed_y`) for the batch (`x`, `y` one-hot), or None:
    the images keep the batch's shape and dtype, the targets are [B, K] floating point, every value is finite,
    targets are >= 0 and each row sums to 1 (the soft cross-entropy assumes a distribution). Checked by the
    trainer on a run's first batch: a plug-in's mistake then stops that run with this line instead of training
    on garbage (or diverging with advice about the learning rate)."""
    if not isinstance(mixed_x, torch.Tensor) or not isinstance(mixed_y, torch.Tensor):
        return f"expected two tensors (images, targets), got {type(mixed_x).__name__}, {type(mixed_y).__name__}"
    if mixed_x.shape != x.shape or mixed_x.dtype != x.dtype:
        return (f"images of shape {list(mixed_x.shape)} and dtype {mixed_x.dtype}; expected the batch's "
                f"{list(x.shape)} and {x.dtype}")
    if mixed_y.shape != y.shape or not mixed_y.is_floating_point():
        return (f"targets of shape {list(mixed_y.shape)} and dtype {mixed_y.dtype}; expected floating point "
                f"{list(y.shape)} (batch, classes)")
    if not bool(torch.isfinite(mixed_x).all()):
        return "non-finite values (NaN or inf) in the images"
    if not bool(torch.isfinite(mixed_y).all()):
        return "non-finite values (NaN or inf) in the targets"
    if bool((mixed_y < 0).any()):
        return f"negative targets (minimum {float(mixed_y.min()):.4g}); expected label weights >= 0"
    sums = mixed_y.double().sum(dim=1)
    tolerance = 1e-2 if mixed_y.dtype in (torch.float16, torch.bfloat16) else 1e-4
    worst = int((sums - 1).abs().argmax())
    if abs(float(sums[worst]) - 1) > tolerance:
        return f"target rows that do not sum to 1 (row {worst} sums to {float(sums[worst]):.6g})"
    return None


def box_bounds(centre: np.ndarray, side: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """[centre - side//2, centre + side//2), clipped to [0, size]: the arithmetic of the official CutMix
    `rand_bbox` (clovaai/CutMix-PyTorch train.py) and of the official Cutout (uoguelph-mlrg/Cutout
    util/cutout.py). An odd `side` gives a box of side - 1 before clipping, as there."""
    half = side // 2
    return np.clip(centre - half, 0, size), np.clip(centre + half, 0, size)


def to_device(array: np.ndarray, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A host array on the device without a stream synchronisation: a blocking host-to-GPU copy waits
    for every queued kernel, which would stall the GPU once per batch and per parameter."""
    return torch.from_numpy(np.ascontiguousarray(array)).to(device, dtype, non_blocking=True)


def partners(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """`x[perm]` in x's memory format. `index_select` on the dense (NHWC for channels_last) layout is
    several times faster on CPU than advanced indexing of a channels_last batch."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).index_select(0, perm).permute(0, 3, 1, 2)
    return x.index_select(0, perm)


def box_mask(
    y0: np.ndarray, y1: np.ndarray, x0: np.ndarray, x1: np.ndarray, height: int, width: int, device: torch.device
) -> torch.Tensor:
    """Boolean masks [B, 1, H, W], true inside each box [y0, y1) x [x0, x1)."""
    bounds = to_device(np.stack([y0, y1, x0, x1], axis=1), device)
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    inside_rows = (rows >= bounds[:, 0:1]) & (rows < bounds[:, 1:2])
    inside_cols = (cols >= bounds[:, 2:3]) & (cols < bounds[:, 3:4])
    return (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]


def paste_boxes(x: torch.Tensor, source: torch.Tensor, y0: np.ndarray, y1: np.ndarray, x0: np.ndarray,
                x1: np.ndarray) -> torch.Tensor:
    """`x` with the box [y0, y1) x [x0, x1) of each image taken from `source` (same shape and layout).

    For a channels_last batch the mask is built over the NHWC storage at [B, H, W*C] resolution: a mask
    broadcast over the innermost (channel) dimension makes `torch.where` about twice as slow on a CPU."""
    batch, channels, height, width = x.shape
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.where(box_mask(y0, y1, x0, x1, height, width, x.device), source, x)
    mask = box_mask(y0, y1, x0 * channels, x1 * channels, height, width * channels, x.device)[:, 0]
    rows = [t.permute(0, 2, 3, 1).reshape(batch, height, width * channels) for t in (source, x)]
    return torch.where(mask, *rows).view(batch, height, width, channels).permute(0, 3, 1, 2)


def blend(x: torch.Tensor, y: torch.Tensor, lam: np.ndarray, perm: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup's convex combination with per-sample weights `lam` [B] of each sample and its partner."""
    perm_t = to_device(perm, x.device)
    lam_t = to_device(lam, x.device, x.dtype)
    # In place on fresh temporaries: the same arithmetic as x*lam + x[perm]*(1-lam), half the allocations.
    mixed_x = (x * lam_t[:, None, None, None]).add_(partners(x, perm_t).mul_(1 - lam_t[:, None, None, None]))
    lam_y = lam_t.to(y.dtype)[:, None]
    return mixed_x, y * lam_y + y[perm_t] * (1 - lam_y)


def paste(x: torch.Tensor, y: torch.Tensor, box: list[np.ndarray],
          perm: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix's paste: box [y0, y1) x [x0, x1) of each sample from its partner; the label weights are the
    exact pixel shares."""
    height, width = x.shape[2], x.shape[3]
    y0, y1, x0, x1 = box
    perm_t = to_device(perm, x.device)
    if all((b == b[0]).all() for b in box):  # one box for the batch: copy only the box
        mixed_x = x.clone()
        mixed_x[:, :, y0[0]:y1[0], x0[0]:x1[0]] = x[perm_t, :, y0[0]:y1[0], x0[0]:x1[0]]
    else:
        mixed_x = paste_boxes(x, partners(x, perm_t), y0, y1, x0, x1)
    pasted = to_device((y1 - y0) * (x1 - x0), x.device, y.dtype) / (height * width)
    keep = (1 - pasted)[:, None]
    return mixed_x, y * keep + y[perm_t] * (1 - keep)


def cutmix_boxes(lam: np.ndarray, cy: np.ndarray, cx: np.ndarray, active: np.ndarray, batch_size: int, height: int,
                 width: int) -> list[np.ndarray]:
    """The official rand_bbox: side int(size * sqrt(1 - lam)) (0 where not `active`) around (cy, cx), clipped;
    broadcast to one box per sample."""
    cut = np.sqrt(1.0 - lam)
    y0, y1 = box_bounds(cy, (height * cut).astype(np.int64) * active, height)
    x0, x1 = box_bounds(cx, (width * cut).astype(np.int64) * active, width)
    return [np.broadcast_to(b, batch_size).copy() for b in (y0, y1, x0, x1)]


def mask_mix(x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor,
             perm: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """x*keep + x[perm]*(1-keep) for a per-pixel weight map `keep` [B, 1, H, W] in [0, 1]; each label weight is
    the mean of its map, i.e. the exact pixel share where the map is binary. A 0/1 weight copies a pixel
    exactly (x*1 + p*0 == x for finite values)."""
    perm_t = to_device(perm, x.device)
    keep = keep.to(x.dtype)
    mixed_x = (x * keep).add_(partners(x, perm_t).mul_(1 - keep))
    share = keep.double().mean(dim=(1, 2, 3)).to(y.dtype)[:, None]
    return mixed_x, y * share + y[perm_t] * (1 - share)


class BetaMixing(Method):
    """Shared by the two-image methods with lam ~ Beta(alpha, alpha) (as torchvision v2's _BaseMixUpCutMix):
    checked alpha / prob / mode and the number of draws per batch."""

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, mode: str = "batch") -> None:
        self.alpha = check_positive("alpha", alpha)
        self.prob = check_probability("prob", prob)
        self.mode = check_mode(mode)

    def draws(self, batch_size: int) -> int:
        """1 draw per batch ('batch', the official codes) or one per sample ('elem')."""
        return 1 if self.mode == "batch" else batch_size
