"""Training throughput side by side: the project's full path vs a bare loop vs a classic DataLoader.

Contenders, all training the same ResNet-8 (same initial weights) with SGD and batch CutMix
(alpha 1, applied to every batch) on the same synthetic 100-class images, for the same steps:
- project: `training.train_run` as `cutmix-bench run` calls it: Lightning Trainer, `BatchLoader`
  (the split as one tensor, whole-batch crop/flip), `Classifier` (CutMix + soft-target CE), one
  checkpoint at the end;
- bare loop: a plain for-loop over the same tensors with the same crop/flip/normalise/CutMix
  functions and `optimizer.step()`: what the framework costs;
- classic: the official CutMix repo's pipeline, a torchvision DataLoader (num_workers=0) with
  per-sample PIL transforms RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize,
  and its per-batch CutMix in the loop; once with the model in channels_last (as the project:
  isolates the data pipeline) and once as the official code runs it (NCHW model, fp32).

`--device auto` (default) picks a GPU when there is one; there the defaults become the GPU setting of
`suites/cifar100.yaml` (CIFAR ResNet-18, bf16 autocast, channels_last) and ten times the images, so
that `nox -s bench` reports GPU figures on a GPU machine. `--compile` compiles the model in the project
(`train.compile: true`) and in the bare loop and leaves out the classic contenders (their cost is the
per-sample data pipeline, which compiling the model does not touch).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import timing
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms

from cutmix_bench.data import Split, create_dataset
from cutmix_bench.methods import create_method
from cutmix_bench.models import create_model
from cutmix_bench.models.memory_format import to_channels_last
from cutmix_bench.rundir import Run
from cutmix_bench.suite_file import validate
from cutmix_bench.training import train_run
from cutmix_bench.training.loader import crop_flip, normalise
from cutmix_bench.training.module import soft_cross_entropy

CLASSES, LR, MOMENTUM, DECAY = 100, 0.05, 0.9, 5e-4
# (model, precision, images) when not given: the CPU figures of docs/performance.md, the GPU suite's setting.
DEFAULTS = {"cpu": ("resnet8", "32", 1024), "cuda": ("resnet18", "bf16", 10240)}


@dataclass(frozen=True)
class Setting:
    """What every contender trains with."""

    model: str
    precision: str  # "32" or "bf16" (autocast), as train.precision
    device: torch.device
    compile: bool = False

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast around forward and loss, as Lightning's `bf16-mixed`."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def sync(self) -> None:
        """Wait for queued GPU work, so that a contender's time includes it."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def fresh_model(seed: int, channels_last: bool, setting: Setting) -> nn.Module:
    """The same initial weights in every contender (train_run seeds the same way)."""
    torch.manual_seed(seed)
    model = create_model(setting.model, CLASSES).to(setting.device)
    return to_channels_last(model) if channels_last else model


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=DECAY)


def project(data: tuple, epochs: int, batch: int, seed: int, setting: Setting) -> int:
    """`train_run` on a fresh run folder; constant LR so that the bare loop does the same arithmetic."""
    suite = validate({
        "name": "bench", "device": setting.device.type, "seeds": [seed],
        "methods": {"cutmix": {"alpha": 1.0, "prob": 1.0}}, "data": {"name": "synthetic"},
        "model": {"name": setting.model},
        "train": {"epochs": epochs, "batch_size": batch, "precision": setting.precision, "compile": setting.compile,
                  "eval_every": 0, "checkpoint_every": epochs, "schedule": {"name": "constant"},
                  "optimizer": {"name": "sgd", "lr": LR, "momentum": MOMENTUM, "nesterov": True,
                                "weight_decay": DECAY}},
    })
    with tempfile.TemporaryDirectory() as run_dir:
        train_run(suite, Run("cutmix", seed), data, setting.device, Path(run_dir))
    setting.sync()
    return epochs * (len(data[1]) // batch) * batch


def bare_loop(data: tuple, epochs: int, batch: int, seed: int, setting: Setting) -> int:
    """The same tensors and ops as the project, in a plain loop (the split copied to the device once, as
    `BatchLoader` does)."""
    dataset, train, _ = data
    model, method = fresh_model(seed, True, setting), create_method("cutmix", alpha=1.0, prob=1.0)
    if setting.compile:
        model.compile()
    optimizer, device = sgd(model), setting.device
    images, labels = train.x.to(device), train.y.to(device)
    mean, std = torch.tensor(dataset.mean, device=device), torch.tensor(dataset.std, device=device)
    steps = len(train) // batch
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        order = torch.as_tensor(rng.permutation(len(train)), device=device)
        for step in range(steps):
            index = order[step * batch:(step + 1) * batch]
            x = normalise(crop_flip(images[index], rng), mean, std)
            x, target = method(x, F.one_hot(labels[index], CLASSES).float(), rng)
            with setting.autocast():
                loss = soft_cross_entropy(model(x), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    setting.sync()
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


def classic(data: tuple, epochs: int, batch: int, seed: int, setting: Setting, official: bool) -> int:
    """The official CutMix training loop over a per-sample-transform DataLoader; `official`: as the official
    code runs it (NCHW, fp32), else with the model in channels_last and the setting's precision."""
    dataset, train, _ = data
    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(dataset.mean, dataset.std)])
    loader = torch.utils.data.DataLoader(PerSampleDataset(train, transform), batch_size=batch, shuffle=True,
                                         num_workers=0, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    model = fresh_model(seed, not official, setting)
    optimizer, criterion, rng = sgd(model), nn.CrossEntropyLoss(), np.random.default_rng(seed)
    autocast = contextlib.nullcontext() if official else setting.autocast()
    steps = 0
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(setting.device, non_blocking=True), y.to(setting.device, non_blocking=True)
            lam = rng.beta(1.0, 1.0)
            partner = torch.randperm(len(x)).to(setting.device)  # as the official code
            y0, y1, x0, x1 = official_box(x.shape[2], x.shape[3], lam, rng)
            x[:, :, y0:y1, x0:x1] = x[partner, :, y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (x.shape[2] * x.shape[3])
            with autocast:
                out = model(x)
                loss = criterion(out, y) * lam + criterion(out, y[partner]) * (1.0 - lam)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
    setting.sync()
    return steps * batch


def synthetic(images: int, seed: int) -> tuple:
    """(dataset, train, test) as `runner.load_data` returns them."""
    dataset = create_dataset("synthetic", num_classes=CLASSES, train_size=images, test_size=64, seed=seed)
    return dataset, dataset.load("train"), dataset.load("test")


def main(argv: list[str] | None = None) -> list[timing.Result]:
    args = timing.parser(__doc__.splitlines()[0])
    args.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args.add_argument("--model", help="default: resnet8 on CPU, resnet18 on a GPU")
    args.add_argument("--precision", choices=("32", "bf16"), help="default: 32 on CPU, bf16 on a GPU")
    args.add_argument("--compile", action="store_true", help="torch.compile the model (project and bare loop only)")
    args.add_argument("--images", type=int, help="training images (synthetic, 100 classes); default 1024 on CPU, "
                                                 "10240 on a GPU")
    args.add_argument("--epochs", type=int, default=2)
    args.add_argument("--batch-size", type=int, default=128)
    opts = args.parse_args(argv)
    device = torch.device("cuda" if opts.device == "cuda" or opts.device == "auto" and torch.cuda.is_available()
                          else "cpu")
    model, precision, images = DEFAULTS[device.type]
    setting = Setting(opts.model or model, opts.precision or precision, device, opts.compile)
    opts.images = opts.images or images
    if opts.quick:
        opts.images, opts.epochs, opts.batch_size = 96, 1, 32
    repeats = opts.repeats or (1 if opts.quick else 5)
    timing.setup(f"training: {setting.model}, {opts.images} images x {opts.epochs} epochs, batch {opts.batch_size}, "
                 f"CutMix every batch, precision {setting.precision}, channels_last"
                 f"{', torch.compile' if setting.compile else ''}", opts.threads, repeats, device)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(val_dataloader|LeafSpec|GPU available|does not have many workers).*")
    data, warm = synthetic(opts.images, seed=0), synthetic(2 * opts.batch_size, seed=1)
    project_name, bare_name = "project (Lightning + BatchLoader)", "bare loop (same tensors and ops)"
    classic_name, official_name = "classic DataLoader, channels_last", "classic DataLoader, as official"
    contenders = {project_name: lambda d: project(d, opts.epochs, opts.batch_size, 0, setting),
                  bare_name: lambda d: bare_loop(d, opts.epochs, opts.batch_size, 0, setting)}
    if not setting.compile:
        contenders[classic_name] = lambda d: classic(d, opts.epochs, opts.batch_size, 0, setting, official=False)
        contenders[official_name] = lambda d: classic(d, opts.epochs, opts.batch_size, 0, setting, official=True)
    for run in contenders.values():  # warm-up on a small set: allocator, kernels, Lightning imports, compilation
        run(warm)
    timings = timing.interleaved({name: (lambda run=run: run(data)) for name, run in contenders.items()},
                                 repeats, warmup=0)
    timing.print_timings(timings, reference=bare_name)
    suffix = "_compiled" if setting.compile else ""
    goals = [("project_vs_bare_loop", bare_name, 0.9)]
    if not setting.compile:
        goals += [("project_vs_classic_dataloader", classic_name, 1.2),
                  ("project_vs_classic_as_official", official_name, None)]
    results = [timing.Result(f"train_step.{key}{suffix}", timing.paired_ratio(timings, project_name, other),
                             at_least=goal) for key, other, goal in goals]
    results += [timing.Result(f"train_step.project_images_per_second{suffix}", timings[project_name].rate),
                timing.Result(f"train_step.bare_loop_images_per_second{suffix}", timings[bare_name].rate)]
    timing.print_results(results)
    return results

if __name__ == "__main__":
    main(sys.argv[1:])
