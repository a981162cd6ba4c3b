"""The evaluation engine's clean-logit cache: each clean test image is forwarded once per model, and every
evaluation that scores clean images (the clean pass, OOD in-distribution scores, corruptions' clean error,
occlusion's empty and full holes, in-between endpoints, adversarial clean accuracy) takes its logits from here.

The runner gathers, before the first evaluation, the positions each evaluation of the suite will ask for
(`Evaluation.clean_positions`) and the cache forwards their union once, in sorted order and batches of
`eval_batch_size`, on first use. The union is that of every evaluation of the suite, finished or not, so a
resumed run forwards the same batches as an uninterrupted one. A position outside it (an evaluation that
declared nothing) is forwarded on request, the missing ones together, and kept.

Batch composition: when the union is the whole split (any suite with `clean` or default OOD), the batches are
exactly those of a plain pass over the test set. A subset evaluation's images come from the union's batches
instead of its own. On the development CPU a row's float32 logits do not depend on the rest of its batch at 64
images and more (checked bit for bit in tests/test_eval_engine.py); oneDNN takes other kernels for tiny
batches (1 image; 7 at 2 threads), where a logit can move by ~3e-8. One computation per image also means that
every evaluation sees the same clean prediction for it.

Features: the same pass also keeps each image's penultimate features, the input of the model's last
`nn.Linear` (its classifier head; caught by a forward pre-hook, which changes no number), for the OOD scores
fitted on features (ood/fitted.py). `split_features` does the same once per model for another split (the
training split those scores fit on), so a feature score never forwards an image a second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

Positions = np.ndarray | None  # positions in the test split; None = all of them
# uint8 NHWC images -> (float32 CPU logits [N, K], float32 CPU penultimate features [N, D]; D = 0 without a head)
Forward = Callable[[torch.Tensor | np.ndarray], tuple[torch.Tensor, torch.Tensor]]


def classifier_head(model: nn.Module) -> nn.Linear | None:
    """The model's last `nn.Linear` in module order: the classifier of every built-in model (whose input is the
    pooled penultimate feature, OpenOOD's `return_feature=True`); None when it has none."""
    return next((m for m in reversed(list(model.modules())) if isinstance(m, nn.Linear)), None)


class FeatureCatcher:
    """While entered, collects the input of `head` (float32, CPU) at every forward; `take()` returns them
    concatenated [N, D] and starts again ([N, 0] for a model without a head)."""

    def __init__(self, head: nn.Linear | None) -> None:
        self.head, self.caught = head, []

    def __enter__(self) -> FeatureCatcher:
        self.caught = []
        self.handle = self.head.register_forward_pre_hook(self._catch) if self.head is not None else None
        return self

    def _catch(self, _: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.caught.append(inputs[0].detach().float().flatten(1).cpu())

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.remove()

    def take(self, n: int) -> torch.Tensor:
        features = torch.cat(self.caught) if self.caught else torch.empty(n, 0)
        self.caught = []
        return features


def union(requests: Iterable[Positions], n: int) -> np.ndarray:
    """Sorted unique positions of all `requests` (None = all `n`)."""
    parts = [np.arange(n) if r is None else np.asarray(r, dtype=np.int64).reshape(-1) for r in requests]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


class CleanLogits:
    """Float32 CPU logits (and penultimate features) of the test images at given positions, each forwarded at
    most once.

    `images` are the test split's uint8 NHWC images; `forward` forwards a batch-indexable array of them in
    batches, returning logits and features (`EvalContext.logits_features`)."""

    def __init__(self, images: torch.Tensor | np.ndarray, forward: Forward) -> None:
        self.images, self.forward = images, forward
        self.planned = np.empty(0, dtype=np.int64)
        self.rows: torch.Tensor | None = None  # [N, K] once anything is computed
        self.feature_rows: torch.Tensor | None = None  # [N, D]
        self.known = np.zeros(len(images), dtype=bool)

    def plan(self, positions: np.ndarray) -> None:
        """The positions to forward together on first use (in addition to any already planned)."""
        self.planned = np.union1d(self.planned, positions).astype(np.int64)

    def __call__(self, positions: Positions = None) -> torch.Tensor:
        """Logits [len(positions), K] in the order of `positions` (None: the whole split, in order)."""
        return self._rows(positions)[0]

    def features(self, positions: Positions = None) -> torch.Tensor:
        """Penultimate features [len(positions), D] of the same pass (D = 0 for a model without a head)."""
        return self._rows(positions)[1]

    def _rows(self, positions: Positions) -> tuple[torch.Tensor, torch.Tensor]:
        wanted = np.arange(len(self.images)) if positions is None else np.asarray(positions, dtype=np.int64)
        if self.rows is None and len(self.planned):
            self._compute(self.planned)
        missing = np.unique(wanted[~self.known[wanted]])
        if len(missing):
            self._compute(missing)
        if self.rows is None or self.feature_rows is None:  # nothing wanted, nothing planned
            return torch.empty(0, 0), torch.empty(0, 0)
        index = torch.from_numpy(wanted)
        return self.rows[index], self.feature_rows[index]

    def _compute(self, positions: np.ndarray) -> None:
        index = torch.from_numpy(positions)
        full = len(positions) == len(self.images)
        out, features = self.forward(self.images if full else self.images[index])  # full split: no gather copy
        if self.rows is None:
            self.rows = torch.empty(len(self.images), out.shape[1], dtype=out.dtype)
            self.feature_rows = torch.empty(len(self.images), features.shape[1], dtype=features.dtype)
        self.rows[index] = out
        self.feature_rows[index] = features
        self.known[positions] = True
