"""Training throughput side by side: the project's full path vs a bare loop vs a classic DataLoader.

Contenders, all training the same ResNet-8 (same initial weights) with SGD and batch CutMix
(alpha 1, applied to every batch) on the same synthetic 100-class images, for the same steps:
- project: `runner.train_run` as `cutmix-bench run` calls it: Lightning Trainer, `BatchLoader`
  (the split as one tensor, whole-batch crop/flip), `Classifier` (CutMix + soft-target CE), one
  checkpoint at the end;
- bare loop: a plain for-loop over the same tensors with the same crop/flip/normalise/CutMix
  functions and `optimizer.step()`: what the framework costs;
- classic: the official CutMix repo's pipeline, a torchvision DataLoader (num_workers=0) with
  per-sample PIL transforms RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize,
  and its per-batch CutMix in the loop; once with the model in channels_last (as the project:
  isolates the data pipeline) and once as the official code runs it (NCHW model).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import timing
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms

from cutmix_bench.config import validate
from cutmix_bench.data import Split, create_dataset
from cutmix_bench.loader import crop_flip, normalise
from cutmix_bench.methods import create_method
from cutmix_bench.models import create_model
from cutmix_bench.runner import Run, train_run
from cutmix_bench.train import soft_cross_entropy

MODEL, CLASSES, LR, MOMENTUM, DECAY = "resnet8", 100, 0.05, 0.9, 5e-4


def fresh_model(seed: int, channels_last: bool) -> nn.Module:
    """The same initial weights in every contender (train_run seeds the same way)."""
    torch.manual_seed(seed)
    model = create_model(MODEL, CLASSES)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=DECAY)


def project(data: tuple, epochs: int, batch: int, seed: int) -> int:
    """`train_run` on a fresh run folder; constant LR so that the bare loop does the same arithmetic."""
    suite = validate({
        "name": "bench", "device": "cpu", "seeds": [seed], "methods": {"cutmix": {"alpha": 1.0, "prob": 1.0}},
        "data": {"name": "synthetic"}, "model": {"name": MODEL},
        "train": {"epochs": epochs, "batch_size": batch, "precision": "32", "eval_every": 0, "checkpoint_every": epochs,
                  "schedule": {"name": "constant"},
                  "optimizer": {"name": "sgd", "lr": LR, "momentum": MOMENTUM, "nesterov": True,
                                "weight_decay": DECAY}},
    })
    with tempfile.TemporaryDirectory() as run_dir:
        train_run(suite, Run("cutmix", seed), data, torch.device("cpu"), Path(run_dir))
    return epochs * (len(data[1]) // batch) * batch


def bare_loop(data: tuple, epochs: int, batch: int, seed: int) -> int:
    """The same tensors and ops as the project, in a plain loop."""
    dataset, train, _ = data
    model, method = fresh_model(seed, channels_last=True), create_method("cutmix", alpha=1.0, prob=1.0)
    optimizer = sgd(model)
    mean, std = torch.tensor(dataset.mean), torch.tensor(dataset.std)
    steps = len(train) // batch
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        order = torch.as_tensor(rng.permutation(len(train)))
        for step in range(steps):
            index = order[step * batch:(step + 1) * batch]
            x = normalise(crop_flip(train.x[index], rng), mean, std)
            x, target = method(x, F.one_hot(train.y[index], CLASSES).float(), rng)
            loss = soft_cross_entropy(model(x), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return epochs * steps * batch


class PerSampleDataset(torch.utils.data.Dataset):
    """As torchvision's CIFAR datasets: one PIL image per item, then the transform."""

    def __init__(self, split: Split, transform: transforms.Compose) -> None:
        self.x, self.y, self.transform = split.x.numpy(), split.y.numpy(), transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def official_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """The official repo's rand_bbox: side sqrt(1 - lam), centre uniform, clipped."""
    cut_h, cut_w = int(height * np.sqrt(1.0 - lam)), int(width * np.sqrt(1.0 - lam))
    cy, cx = rng.integers(height), rng.integers(width)
    return (int(np.clip(cy - cut_h // 2, 0, height)), int(np.clip(cy + cut_h // 2, 0, height)),
            int(np.clip(cx - cut_w // 2, 0, width)), int(np.clip(cx + cut_w // 2, 0, width)))


def classic(data: tuple, epochs: int, batch: int, seed: int, channels_last: bool) -> int:
    """The official CutMix training loop over a per-sample-transform DataLoader."""
    dataset, train, _ = data
    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(dataset.mean, dataset.std)])
    loader = torch.utils.data.DataLoader(PerSampleDataset(train, transform), batch_size=batch, shuffle=True,
                                         num_workers=0, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    model = fresh_model(seed, channels_last)
    optimizer, criterion, rng = sgd(model), nn.CrossEntropyLoss(), np.random.default_rng(seed)
    steps = 0
    for _ in range(epochs):
        for x, y in loader:
            lam = rng.beta(1.0, 1.0)
            partner = torch.randperm(len(x))
            y0, y1, x0, x1 = official_box(x.shape[2], x.shape[3], lam, rng)
            x[:, :, y0:y1, x0:x1] = x[partner, :, y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (x.shape[2] * x.shape[3])
            out = model(x)
            loss = criterion(out, y) * lam + criterion(out, y[partner]) * (1.0 - lam)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
    return steps * batch


def synthetic(images: int, seed: int) -> tuple:
    """(dataset, train, test) as `runner.load_data` returns them."""
    dataset = create_dataset("synthetic", num_classes=CLASSES, train_size=images, test_size=64, seed=seed)
    return dataset, dataset.load("train"), dataset.load("test")


def main(argv: list[str] | None = None) -> list[timing.Result]:
    args = timing.parser(__doc__.splitlines()[0])
    args.add_argument("--images", type=int, default=1024, help="training images (synthetic, 100 classes)")
    args.add_argument("--epochs", type=int, default=2)
    args.add_argument("--batch-size", type=int, default=128)
    opts = args.parse_args(argv)
    if opts.quick:
        opts.images, opts.epochs, opts.batch_size = 96, 1, 32
    repeats = opts.repeats or (1 if opts.quick else 5)
    timing.setup(f"training: {MODEL}, {opts.images} images x {opts.epochs} epochs, batch {opts.batch_size}, "
                 "CutMix every batch", opts.threads, repeats)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(val_dataloader|LeafSpec).*")
    data, warm = synthetic(opts.images, seed=0), synthetic(2 * opts.batch_size, seed=1)
    contenders = {
        "project (Lightning + BatchLoader)": lambda d: project(d, opts.epochs, opts.batch_size, 0),
        "bare loop (same tensors and ops)": lambda d: bare_loop(d, opts.epochs, opts.batch_size, 0),
        "classic DataLoader, channels_last": lambda d: classic(d, opts.epochs, opts.batch_size, 0, True),
        "classic DataLoader, as official": lambda d: classic(d, opts.epochs, opts.batch_size, 0, False),
    }
    for run in contenders.values():  # warm-up on a small set: allocator, kernels, Lightning imports
        run(warm)
    timings = timing.interleaved({name: (lambda run=run: run(data)) for name, run in contenders.items()},
                                 repeats, warmup=0)
    project_name, bare_name, classic_name, official_name = contenders
    timing.print_timings(timings, reference=bare_name)
    results = [
        timing.Result(f"train_step.{key}", timing.paired_ratio(timings, project_name, other), at_least=goal)
        for key, other, goal in [("project_vs_bare_loop", bare_name, 0.9),
                                 ("project_vs_classic_dataloader", classic_name, 1.2),
                                 ("project_vs_classic_as_official", official_name, None)]
    ] + [timing.Result("train_step.project_images_per_second", timings[project_name].rate)]
    timing.print_results(results)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
