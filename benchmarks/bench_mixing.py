"""Batch mixing side by side: this project's CutMix / Mixup / Cutout vs timm and torchvision.

Every contender gets the same normalised float batch (channels_last, as `BatchLoader` yields it) and
integer labels, and returns mixed images plus soft targets (the project's one-hot encoding is timed
with it, as timm and torchvision encode inside). timm mixes in place; mixing an already mixed batch
costs the same, so no copy is timed. Groups:
- batch mode (one lambda / box per batch, the official recipe): project vs `timm.data.Mixup`
  (mixup-only / cutmix-only) vs `torchvision.transforms.v2.CutMix` / `MixUp`;
- per-sample mode: project `mode="elem"` vs timm `mode="elem"` (a Python loop over the batch);
- Cutout: project (one 16x16 hole per image) vs timm `RandomErasing` with a fixed 16x16 square
  (a per-image loop; not identical: timm keeps the box inside the image).
Each cost is also given as a share of one ResNet-18 training step (forward, backward, SGD) at the
same batch size.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import timing
import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.data.random_erasing import RandomErasing
from torchvision.transforms import v2

from cutmix_bench.methods import Method, create_method
from cutmix_bench.models import create_model

CLASSES = 100


def ours(method: Method, x: torch.Tensor, y: torch.Tensor, calls: int) -> timing.Contender:
    rng = np.random.default_rng(0)

    def run() -> int:
        for _ in range(calls):
            method(x, F.one_hot(y, CLASSES).to(x.dtype), rng)
        return calls * len(x)
    return run


def theirs(transform: Callable, x: torch.Tensor, y: torch.Tensor, calls: int, labels: bool = True) -> timing.Contender:
    def run() -> int:
        for _ in range(calls):
            if labels:
                transform(x, y)
            else:
                transform(x)
        return calls * len(x)
    return run


def timm_mixup(mode: str, mixup: float, cutmix: float) -> Mixup:
    return Mixup(mixup_alpha=mixup, cutmix_alpha=cutmix, prob=1.0, mode=mode, label_smoothing=0.0,
                 num_classes=CLASSES)


def groups(x: torch.Tensor, y: torch.Tensor, calls: int) -> dict[str, dict[str, timing.Contender]]:
    """Per group: the project's contender first, then the libraries'."""
    x_timm = x.clone()  # mixed in place by timm
    return {
        "cutmix (batch)": {
            "project": ours(create_method("cutmix", alpha=1.0), x, y, calls),
            "timm Mixup cutmix-only": theirs(timm_mixup("batch", 0.0, 1.0), x_timm, y, calls),
            "torchvision v2.CutMix": theirs(v2.CutMix(alpha=1.0, num_classes=CLASSES), x, y, calls),
        },
        "mixup (batch)": {
            "project": ours(create_method("mixup", alpha=1.0), x, y, calls),
            "timm Mixup mixup-only": theirs(timm_mixup("batch", 1.0, 0.0), x_timm, y, calls),
            "torchvision v2.MixUp": theirs(v2.MixUp(alpha=1.0, num_classes=CLASSES), x, y, calls),
        },
        "cutout": {
            "project": ours(create_method("cutout", size=16), x, y, calls),
            "timm RandomErasing 16x16": theirs(
                RandomErasing(probability=1.0, min_area=0.25, max_area=0.25, min_aspect=1.0, mode="const",
                              device="cpu"), x_timm, y, calls, labels=False),
        },
        "cutmix (per sample)": {
            "project": ours(create_method("cutmix", alpha=1.0, mode="elem"), x, y, calls),
            "timm Mixup cutmix-only elem": theirs(timm_mixup("elem", 0.0, 1.0), x_timm, y, calls),
        },
        "mixup (per sample)": {
            "project": ours(create_method("mixup", alpha=1.0, mode="elem"), x, y, calls),
            "timm Mixup mixup-only elem": theirs(timm_mixup("elem", 1.0, 0.0), x_timm, y, calls),
        },
    }


def train_step_seconds(batch: int, steps: int) -> float:
    """Median seconds of a ResNet-18 (CIFAR variant) forward + backward + SGD step, after one warm-up."""
    torch.manual_seed(0)
    model = create_model("resnet18", CLASSES).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (batch,))
    seconds = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds[1:]))


def main(argv: list[str] | None = None) -> list[timing.Result]:
    args = timing.parser(__doc__.splitlines()[0])
    args.add_argument("--batch-size", type=int, default=128)
    args.add_argument("--calls", type=int, default=20, help="calls per timed measurement")
    args.add_argument("--steps", type=int, default=2, help="timed ResNet-18 steps (median)")
    opts = args.parse_args(argv)
    if opts.quick:
        opts.batch_size, opts.calls, opts.steps = 8, 2, 1
    repeats = opts.repeats or (1 if opts.quick else 5)
    timing.setup(f"mixing: batch {opts.batch_size}x3x32x32 float, {CLASSES} classes, {opts.calls} calls per "
                 "measurement", opts.threads, repeats)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(opts.batch_size, 32, 32, 3, generator=generator).permute(0, 3, 1, 2)  # channels_last
    y = torch.randint(0, CLASSES, (opts.batch_size,), generator=generator)
    step = train_step_seconds(opts.batch_size, opts.steps)
    print(f"   ResNet-18 train step at batch {opts.batch_size}: {step:.3f} s (median of {opts.steps})")
    results = []
    for group, contenders in groups(x, y, opts.calls).items():
        print(f"-- {group}")
        timings = timing.interleaved(contenders, repeats)
        timing.print_timings(timings, reference="project")
        per_batch = {name: t.median / opts.calls for name, t in timings.items()}
        key = group.replace(" (", "_").replace(")", "").replace(" ", "_")
        print(f"   project: {1e6 * per_batch['project']:.0f} us per batch")
        for name in list(timings)[1:]:
            goal = 5.0 if "per sample" in group else None
            results.append(timing.Result(f"mixing.{key}.speedup_vs_{name.split()[0].lower()}",
                                         timing.paired_ratio(timings, "project", name), at_least=goal))
        results.append(timing.Result(f"mixing.{key}.share_of_resnet18_step", per_batch["project"] / step,
                                   at_most=0.01))
    timing.print_results(results)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
