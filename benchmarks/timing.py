"""Shared timing for the side-by-side benchmarks.

On a shared, noisy host a single timing says little, so every benchmark runs its contenders in one
process, interleaved (A B C, then C B A, ...: alternating the order cancels slow drifts of the host
load), and reports the median over repeats; ratios are medians of per-round ratios. A contender is
a function that does its work once and returns how many items (images) it processed; its rate is
items / median seconds.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

Contender = Callable[[], int]


@dataclass
class Timing:
    """Seconds of every timed call of one contender, and the items each call processed."""

    name: str
    items: int
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Items per second of the median call."""
        return self.items / self.median


@dataclass
class Result:
    """A named figure (a ratio, a rate or a share) with an optional goal (`at_least` or `at_most`)."""

    label: str
    value: float
    at_least: float | None = None
    at_most: float | None = None

    @property
    def goal(self) -> str:
        if self.at_least is not None:
            return f">= {self.at_least:g}"
        return f"<= {self.at_most:g}" if self.at_most is not None else ""

    @property
    def met(self) -> bool | None:
        if self.at_least is not None:
            return self.value >= self.at_least
        return self.value <= self.at_most if self.at_most is not None else None


def interleaved(contenders: dict[str, Contender], repeats: int, warmup: int = 1,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, Timing]:
    """Run every contender `warmup` times untimed, then `repeats` timed rounds in alternating order."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        for run in contenders.values():
            run()
    names = list(contenders)
    timings: dict[str, Timing] = {}
    for round_index in range(repeats):
        for name in names if round_index % 2 == 0 else names[::-1]:
            start = clock()
            items = contenders[name]()
            elapsed = clock() - start
            if name not in timings:
                timings[name] = Timing(name, items, [])
            elif items != timings[name].items:
                raise ValueError(f"contender {name!r} processed {items} items, earlier {timings[name].items}")
            timings[name].seconds.append(elapsed)
    return timings


def paired_ratio(timings: dict[str, Timing], numerator: str, denominator: str) -> float:
    """Median over rounds of rate(numerator) / rate(denominator) in the same round: neighbours in time
    see the same host load, so the pairing cancels most of it."""
    a, b = timings[numerator], timings[denominator]
    return statistics.median((a.items / sa) / (b.items / sb) for sa, sb in zip(a.seconds, b.seconds))


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark shares; scripts add their own sizes."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--quick", action="store_true", help="tiny sizes: proves the script runs, numbers are noise")
    args.add_argument("--threads", type=int, default=1, choices=(1, 2), help="torch.set_num_threads (default 1)")
    args.add_argument("--repeats", type=int, default=None, help="timed rounds per contender (median reported)")
    return args


def setup(title: str, threads: int, repeats: int, device: torch.device | None = None) -> None:
    """Fix the thread count and print what the numbers depend on (on a GPU: its name)."""
    torch.set_num_threads(threads)
    device = device or torch.device("cpu")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = f"device cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "device cpu"
    print(f"== {title}")
    print(f"   torch {torch.__version__}, {where}, torch threads {threads}, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), median of {repeats} interleaved repeats, {now}")


def print_timings(timings: dict[str, Timing], reference: str, unit: str = "images/s") -> None:
    """One line per contender: median seconds per call, spread, rate and the rate relative to `reference`."""
    width = max(len(name) for name in timings)
    print(f"   {'contender':<{width}}  {'median s':>9}  {'min-max s':>15}  {unit:>11}  {'x ' + reference}")
    for name, timing in timings.items():
        spread = f"{min(timing.seconds):.4f}-{max(timing.seconds):.4f}"
        relative = timing.rate / timings[reference].rate
        print(f"   {name:<{width}}  {timing.median:9.4f}  {spread:>15}  {timing.rate:11.1f}  {relative:.3f}")


def print_results(results: list[Result]) -> None:
    """`result <label> = <value> (goal ...: met)` lines, the lines docs/performance.md is built from."""
    for result in results:
        verdict = "" if result.met is None else f"  (goal {result.goal}: {'met' if result.met else 'NOT met'})"
        print(f"result {result.label} = {result.value:.4g}{verdict}")
