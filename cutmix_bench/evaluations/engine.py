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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

Positions = np.ndarray | None  # positions in the test split; None = all of them
Forward = Callable[[torch.Tensor | np.ndarray], torch.Tensor]  # uint8 NHWC images -> float32 CPU logits


def union(requests: Iterable[Positions], n: int) -> np.ndarray:
    """Sorted unique positions of all `requests` (None = all `n`)."""
    parts = [np.arange(n) if r is None else np.asarray(r, dtype=np.int64).reshape(-1) for r in requests]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


class CleanLogits:
    """Float32 CPU logits of the test images at given positions, each forwarded at most once.

    `images` are the test split's uint8 NHWC images; `logits` forwards a batch-indexable array of them in
    batches (`EvalContext.logits`)."""

    def __init__(self, images: torch.Tensor | np.ndarray, logits: Forward) -> None:
        self.images, self.forward = images, logits
        self.planned = np.empty(0, dtype=np.int64)
        self.rows: torch.Tensor | None = None  # [N, K] once anything is computed
        self.known = np.zeros(len(images), dtype=bool)

    def plan(self, positions: np.ndarray) -> None:
        """The positions to forward together on first use (in addition to any already planned)."""
        self.planned = np.union1d(self.planned, positions).astype(np.int64)

    def __call__(self, positions: Positions = None) -> torch.Tensor:
        """Logits [len(positions), K] in the order of `positions` (None: the whole split, in order)."""
        wanted = np.arange(len(self.images)) if positions is None else np.asarray(positions, dtype=np.int64)
        if self.rows is None and len(self.planned):
            self._compute(self.planned)
        missing = np.unique(wanted[~self.known[wanted]])
        if len(missing):
            self._compute(missing)
        if self.rows is None:  # nothing wanted, nothing planned
            return torch.empty(0, 0)
        return self.rows[torch.from_numpy(wanted)]

    def _compute(self, positions: np.ndarray) -> None:
        index = torch.from_numpy(positions)
        full = len(positions) == len(self.images)
        out = self.forward(self.images if full else self.images[index])  # the full split without a gather copy
        if self.rows is None:
            self.rows = torch.empty(len(self.images), out.shape[1], dtype=out.dtype)
        self.rows[index] = out
        self.known[positions] = True
