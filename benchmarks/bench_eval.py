"""Evaluation throughput: clean inference and corrupted sets read from memory-mapped .npy files.

All contenders call `EvalContext.logits` (large batches, inference mode, channels_last) on the same
model (ResNet-8, 100 classes, random weights: the speed does not depend on them):
- clean: the test split as one uint8 tensor in memory, at the evaluation batch size and at 128
  (large batches suit a GPU; on a CPU they fall out of the caches);
- corrupted, memory-mapped: a [5N, 32, 32, 3] uint8 .npy (5 severities of N images, the CIFAR-C
  layout) opened with `np.load(mmap_mode="r")` inside the timed call, batches read on demand;
- corrupted, in memory: the same array loaded fully beforehand (its load time is printed apart).
The file was just written, so the page cache holds it: the ratio shows what memory mapping costs
the evaluation loop, not disk speed. The mapped and in-memory logits must be identical.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import timing
import torch

from cutmix_bench.data import create_dataset
from cutmix_bench.evaluations import EvalContext
from cutmix_bench.models import create_model

CLASSES, SEVERITIES, SMALL_BATCH = 100, 5, 128


def context(images: int, batch: int, run_dir: Path) -> EvalContext:
    dataset = create_dataset("synthetic", num_classes=CLASSES, train_size=8, test_size=images, seed=0)
    torch.manual_seed(0)
    model = create_model("resnet8", CLASSES).to(memory_format=torch.channels_last).eval()
    return EvalContext(model=model, dataset=dataset, test=dataset.load("test"), device=torch.device("cpu"),
                       batch_size=batch, seed=0, run_dir=run_dir, cache_dir=run_dir)


def main(argv: list[str] | None = None) -> list[timing.Result]:
    args = timing.parser(__doc__.splitlines()[0])
    args.add_argument("--images", type=int, default=384, help="clean test images N (corrupted set: 5N)")
    args.add_argument("--batch-size", type=int, default=1024, help="evaluation batch size (suite default 1024)")
    opts = args.parse_args(argv)
    if opts.quick:
        opts.images, opts.batch_size = 64, 32
    repeats = opts.repeats or (1 if opts.quick else 5)
    timing.setup(f"evaluation: resnet8, {opts.images} clean / {SEVERITIES * opts.images} corrupted images, "
                 f"batch {opts.batch_size}", opts.threads, repeats)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = context(opts.images, opts.batch_size, Path(tmp))
        path = Path(tmp) / "corruption.npy"
        np.save(path, np.concatenate([ctx.test.x.numpy()] * SEVERITIES))
        start = time.perf_counter()
        in_memory = np.load(path)
        load_seconds = time.perf_counter() - start
        small = replace(ctx, batch_size=SMALL_BATCH)
        contenders = {
            f"clean, tensor in memory, batch {opts.batch_size}": lambda: len(ctx.logits(ctx.test.x)),
            f"clean, tensor in memory, batch {SMALL_BATCH}": lambda: len(small.logits(ctx.test.x)),
            "corrupted, memory-mapped .npy": lambda: len(ctx.logits(np.load(path, mmap_mode="r"))),
            "corrupted, array in memory": lambda: len(ctx.logits(in_memory)),
        }
        timings = timing.interleaved(contenders, repeats)
        difference = (ctx.logits(np.load(path, mmap_mode="r")) - ctx.logits(in_memory)).abs().max().item()
    clean, clean_small, mapped, loaded = contenders
    timing.print_timings(timings, reference=loaded)
    print(f"   full np.load of the {in_memory.nbytes / 2**20:.1f} MiB array: {load_seconds:.3f} s; "
          f"max |logits(mapped) - logits(in memory)| = {difference:g}")
    results = [timing.Result(f"eval.clean_images_per_second_batch{opts.batch_size}", timings[clean].rate),
               timing.Result(f"eval.clean_images_per_second_batch{SMALL_BATCH}", timings[clean_small].rate),
              timing.Result("eval.corrupted_mmap_images_per_second", timings[mapped].rate),
              timing.Result("eval.mmap_vs_in_memory", timing.paired_ratio(timings, mapped, loaded), at_least=0.9)]
    timing.print_results(results)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
