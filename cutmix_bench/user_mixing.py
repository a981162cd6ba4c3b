"""Mixing in the user's own training code: a Lightning callback and a torchvision-v2-style batch transform
(usable as a DataLoader collate_fn). Both run any registered input-space method with the runner's seeding:
one generator per epoch, `training.module.mixing_rng(seed, epoch)`, drawn batch after batch."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, MutableSequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate, get_worker_info

from .methods import Method, create_method
from .methods.base import has_own_loss
from .training.module import mixing_rng


def build(method: str | Method, params: dict[str, Any]) -> Method:
    method = create_method(method, "method", **params) if isinstance(method, str) else method
    if not method.input_space:
        why = "has its own loss" if has_own_loss(method) else \
            "needs the model (it mixes hidden features or uses its saliency)"
        raise ValueError(f"{type(method).__name__} {why}: use it through cutmix-bench's runner (Classifier), "
                         f"not a callback or collate_fn")
    return method


def soft_targets(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices [B] -> one-hot [B, K] in the images' dtype; soft targets [B, K] pass through."""
    if not images.is_floating_point():
        raise TypeError(f"images must be a float tensor (after ToTensor / ToDtype(float32, scale=True)), "
                        f"got {images.dtype}")
    if labels.dim() == 2:
        return labels.to(images.dtype)
    return F.one_hot(labels.long(), num_classes).to(images.dtype)


class _Mixing:
    """What the callback and the collate transform share: a built method, the class count and the seed."""

    def __init__(self, method: str | Method = "cutmix", num_classes: int = 0, seed: int = 0,
                 image_key: str = "image", label_key: str = "label", **params: Any) -> None:
        if num_classes <= 0:
            raise ValueError(f"num_classes must be > 0, got {num_classes}")
        self.method, self.num_classes, self.seed = build(method, params), num_classes, seed
        self.keys = (image_key, label_key)


class MixingCallback(_Mixing, pl.Callback):
    """Mixes each training batch in `on_train_batch_start`, in place of the batch's images and labels.

    The batch must be mutable: `[images, labels]` (what DataLoader's default collate yields for
    `(image, label)` samples) or a dict with `image_key` / `label_key`. Labels become soft targets [B, K],
    which `torch.nn.functional.cross_entropy(logits, target)` accepts as class probabilities, so the module's
    loss stays as written. The generator is reset every epoch to `mixing_rng(seed, epoch)`, as in the runner:
    the same batches in the same order give the runner's mixed batches."""

    def __init__(self, method: str | Method = "cutmix", num_classes: int = 0, seed: int = 0,
                 image_key: str = "image", label_key: str = "label", **params: Any) -> None:
        super().__init__(method, num_classes, seed, image_key, label_key, **params)
        self.rng = mixing_rng(seed, 0)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.rng = mixing_rng(self.seed, trainer.current_epoch)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if isinstance(batch, MutableMapping):
            where: tuple[Any, Any] = self.keys
        elif isinstance(batch, MutableSequence) and len(batch) >= 2:
            where = (0, 1)
        else:
            raise TypeError(f"MixingCallback needs a list [images, labels] or a dict batch to replace its entries, "
                            f"got {type(batch).__name__}; return lists from your collate_fn or use MixCollate")
        images, labels = batch[where[0]], batch[where[1]]
        batch[where[0]], batch[where[1]] = self.method(images, soft_targets(images, labels, self.num_classes),
                                                       self.rng)


class MixCollate(_Mixing):
    """A torchvision-v2-style batch transform: `mix(images, labels) -> (images, soft targets)`, and as a
    DataLoader `collate_fn` (`mix(samples)`): default_collate, then mixing. Dict samples keep their keys.

    Seeding: call `set_epoch(epoch)` at each epoch start, before iterating the loader (as for a
    DistributedSampler). Without workers the draws are the runner's (`mixing_rng(seed, epoch)`). In a worker
    process w the generator is `default_rng([seed, epoch, 1, w])`, started afresh at each epoch: deterministic
    for a seed, and an epoch's draws are those of a fresh run of that epoch (a resume), but not the runner's
    stream, since the batches of an epoch are then collated in several processes. The epoch is held in shared
    memory, so it reaches workers that outlive an epoch (`persistent_workers=True`), which keep the copy of this
    object they were started with."""

    def __init__(self, method: str | Method = "cutmix", num_classes: int = 0, seed: int = 0,
                 image_key: str = "image", label_key: str = "label", **params: Any) -> None:
        super().__init__(method, num_classes, seed, image_key, label_key, **params)
        # shared with the DataLoader's worker processes, forked or spawned (torch pickles it as shared memory)
        self._epoch = torch.zeros(2, dtype=torch.int64).share_memory_()  # [epoch, times set]
        self._rng: np.random.Generator | None = None
        self._stream: tuple[int, int, int | None] | None = None

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Start the draws of `epoch` afresh (also when it is the current epoch again)."""
        self._epoch += torch.tensor([epoch - self.epoch, 1])

    def generator(self) -> np.random.Generator:
        worker = get_worker_info()
        epoch, times_set = self._epoch.tolist()
        stream = (epoch, times_set, None if worker is None else worker.id)
        if self._rng is None or stream != self._stream:
            self._stream = stream
            self._rng = mixing_rng(self.seed, epoch) if worker is None else \
                np.random.default_rng([self.seed, epoch, 1, worker.id])
        return self._rng

    def __call__(self, *args: Any) -> Any:
        if len(args) == 2:
            images, labels = args
            return self.method(images, soft_targets(images, labels, self.num_classes), self.generator())
        if len(args) != 1:
            raise TypeError("MixCollate takes (images, labels) or one list of samples")
        batch = default_collate(args[0])
        if isinstance(batch, Mapping):
            image_key, label_key = self.keys
            images, target = self(batch[image_key], batch[label_key])
            return {**batch, image_key: images, label_key: target}
        images, target = self(batch[0], batch[1])
        return [images, target, *batch[2:]]
