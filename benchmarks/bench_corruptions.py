"""Corruption generation speed: this project's batched implementation vs `imagecorruptions`, side by side.

Generates all 19 corruptions x 5 severities for the same N test images (default 100, cifar100/test.npz under
$CUTMIX_BENCH_DATA or ../shared/data; random smooth images if absent) with
  ours/cifar     this project, CIFAR-10-C parameters (what `cutmix-bench corrupt --params cifar` runs),
  ours/imagenet  this project, ImageNet-C parameters (`--params imagenet-fast`; the same work as imagecorruptions;
                 no elastic_transform, which imagecorruptions does differently and imagenet-fast hands to it),
  imagecorruptions  1.1.2 through the compat layer, ImageNet-C parameters, one image per call,
and prints per-corruption CPU milliseconds per image-pair, image-pairs per second and the ratios, plus the full
19 x 5 x 10,000 set extrapolated from the measured CPU time. CPU time (process_time) is reported next to wall
time because on a shared machine the wall clock mostly measures the other processes.

    python benchmarks/bench_corruptions.py --images 100
    python benchmarks/bench_corruptions.py --images 0 --pipeline 1000 --workers 2   # corrupt_all end to end
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings
from pathlib import Path

import numpy as np

from cutmix_bench import corruptions as C
from cutmix_bench.corruptions import imagecorruptions_compat
from cutmix_bench.corruptions.params import IMAGENET

FULL_SET = 10_000  # images per severity in CIFAR-10-C


def load_images(n: int) -> tuple[np.ndarray, str]:
    root = Path(os.environ.get("CUTMIX_BENCH_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
    path = root / "cifar100" / "test.npz"
    if path.is_file():
        with np.load(path) as data:
            return np.ascontiguousarray(data["x"][:n]), str(path)
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(0).uniform(0, 255, size=(n, 32, 32, 3))
    return np.clip(gaussian_filter(noise, (0, 1.5, 1.5, 0)) * 3 - 255, 0, 255).astype(np.uint8), "synthetic"


def time_it(fn, *args) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of fn(*args)."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def run_ours(name: str, images: np.ndarray, params: str) -> None:
    for severity in C.SEVERITIES:
        C.corrupt(name, images, severity, np.random.default_rng(severity), params)


def run_imagecorruptions(name: str, images: np.ndarray) -> None:
    package = imagecorruptions_compat.load()
    for severity in C.SEVERITIES:
        for i, image in enumerate(images):
            np.random.seed(i)
            package.corrupt(image, severity=severity, corruption_name=name)


def pipeline(n: int, workers: int) -> None:
    """`corrupt_all` (all 95 pairs, CIFAR parameters) on n images with a worker pool: wall and total CPU."""
    images, source = load_images(n)
    before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    for _ in C.corrupt_all(images, seed=0, workers=workers):
        pass
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before))
    print(f"corrupt_all on {len(images)} images ({source}), {workers} workers: wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"(parent + workers) = {1e3 * cpu / (95 * len(images)):.3f} ms per image-pair; extrapolated to "
          f"19 x 5 x {FULL_SET:,}: {cpu * FULL_SET / len(images):.0f} CPU s, "
          f"{cpu * FULL_SET / len(images) / workers:.0f} s wall if {workers} cores are free "
          f"(measured wall x {FULL_SET / len(images):.0f}: {wall * FULL_SET / len(images):.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100, help="images per corruption x severity (default 100)")
    parser.add_argument("--pipeline", type=int, default=0, help="also time corrupt_all on this many images")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for --pipeline (default 2)")
    args = parser.parse_args()
    if args.pipeline:
        pipeline(args.pipeline, args.workers)
    if args.images <= 0:
        return
    images, source = load_images(args.images)
    n = len(images)
    print(f"{n} images from {source}; 19 corruptions x 5 severities; times are CPU ms per image-pair "
          f"(one image, one corruption, one severity), single process")
    imagecorruptions_compat.load()
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # imagecorruptions' spatter divides 0 by 0
    C.corrupt("frost", images[:2], 1, np.random.default_rng(0))  # warm caches (textures, imports)
    totals = {"ours/cifar": [0.0, 0.0], "ours/imagenet": [0.0, 0.0], "imagecorruptions": [0.0, 0.0]}
    print(f"{'corruption':18s} {'ours/cifar':>10s} {'ours/imagenet':>13s} {'imagecorruptions':>16s} {'speed-up':>8s}")
    for name in C.ALL:
        row = {"ours/cifar": time_it(run_ours, name, images, "cifar")}
        if name in IMAGENET:
            row["ours/imagenet"] = time_it(run_ours, name, images, "imagenet-fast")
            row["imagecorruptions"] = time_it(run_imagecorruptions, name, images)
        for key, (cpu, wall) in row.items():
            totals[key][0] += cpu
            totals[key][1] += wall
        ms = {key: 1e3 * cpu / (5 * n) for key, (cpu, _) in row.items()}
        same = f"{ms['imagecorruptions'] / ms['ours/imagenet']:7.1f}x" if name in IMAGENET else "       -"
        print(f"{name:18s} {ms['ours/cifar']:10.3f} {ms.get('ours/imagenet', float('nan')):13.3f} "
              f"{ms.get('imagecorruptions', float('nan')):16.3f} {same}")
    pairs = {key: 95 * n if key == "ours/cifar" else 90 * n for key in totals}
    print("\ntotals (all pairs; the imagenet columns exclude elastic_transform, which imagecorruptions does "
          "differently):")
    for key, (cpu, wall) in totals.items():
        print(f"  {key:18s} {pairs[key] / cpu:9.0f} image-pairs/s CPU ({1e3 * cpu / n:7.2f} CPU ms per image for "
              f"all its pairs), wall {wall:6.1f} s")
    ours, theirs = totals["ours/imagenet"][0], totals["imagecorruptions"][0]
    print(f"  speed-up at the same (ImageNet-C) parameters, CPU: {theirs / ours:.1f}x")
    print(f"  ours/cifar vs imagecorruptions, image-pairs/s CPU: "
          f"{(pairs['ours/cifar'] / totals['ours/cifar'][0]) / (pairs['imagecorruptions'] / theirs):.1f}x")
    full = totals["ours/cifar"][0] * FULL_SET / n
    print(f"extrapolated full CIFAR-parameter set (19 x 5 x {FULL_SET:,} images): {full:.0f} CPU s, "
          f"{full / 2:.0f} s wall on 2 free cores; imagecorruptions: "
          f"{totals['imagecorruptions'][0] * FULL_SET / n * 95 / 90 / 60:.1f} CPU minutes")


if __name__ == "__main__":
    main()
