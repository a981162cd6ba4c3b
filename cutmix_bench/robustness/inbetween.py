"""In-between class inputs (CutMix paper, Fig. 5b): pairs of images of different classes, mixed
Mixup-style or pasted CutMix-style, and how often the model predicts either class or neither."""

from __future__ import annotations

import numpy as np
import torch

from .occlusion import centred_mask


def different_class_pairs(labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` index pairs (a, b) with labels[a] != labels[b]: a uniform over the images, b uniform over the
    images of another class (rejection sampling), from `np.random.default_rng(seed)`."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("pairs of different classes need at least two classes in the test set")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(labels), count)
    b = rng.integers(0, len(labels), count)
    same = labels[a] == labels[b]
    while same.any():
        b[same] = rng.integers(0, len(labels), int(same.sum()))
        same = labels[a] == labels[b]
    return a, b


def mix(x_a: torch.Tensor, x_b: torch.Tensor, lam: float) -> torch.Tensor:
    """Mixup-style input lam * x_a + (1 - lam) * x_b (lam is the weight of image A)."""
    return lam * x_a + (1 - lam) * x_b


def paste_centre(x_a: torch.Tensor, x_b: torch.Tensor, size: int) -> torch.Tensor:
    """CutMix-style input: x_a with its centred `size` x `size` square (see `occlusion.centred_bounds`)
    replaced by the same square of x_b. size 0 gives x_a, the image side gives x_b."""
    mask = centred_mask(size, x_a.shape[2], x_a.shape[3], x_a.device)
    return torch.where(mask, x_b, x_a)


def prediction_counts(pred: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor) -> dict[str, int]:
    """How many predictions equal class A, class B, and neither."""
    is_a, is_b = pred == y_a, pred == y_b
    return {"p_a": int(is_a.sum()), "p_b": int(is_b.sum()), "p_neither": int((~is_a & ~is_b).sum())}


def prediction_rates(pred: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor) -> dict[str, float]:
    """Percent of predictions equal to class A, to class B, and to neither (they sum to 100 when y_a != y_b)."""
    is_a, is_b = pred == y_a, pred == y_b
    return {"p_a": 100 * float(is_a.float().mean()), "p_b": 100 * float(is_b.float().mean()),
            "p_neither": 100 * float((~is_a & ~is_b).float().mean())}
