"""`cutmix-bench run --dry-run`: the runs and their state, the evaluations with their image counts, and a
time estimate with its range from a measured probe (training steps and inference batches of the suite's
model on random images of the dataset's shape, the fastest step taken: host load only slows steps).
Nothing is trained or written. The checks `run` makes before training run first (preflight.py), so the dry run
refuses what `run` refuses, with the same line."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .components import components
from .config import Suite
from .models.memory_format import to_channels_last
from .rundir import RunDir, output_dir, suite_runs


def run_state(suite: Suite, folder: RunDir) -> str:
    if folder.finished(suite.evaluations):
        return "finished"
    if folder.is_done():
        return f"trained; to evaluate: {', '.join(folder.missing(suite.evaluations))}"
    if folder.failed.exists():
        return "failed earlier; will retry"
    if folder.checkpoint.exists():
        return "to resume from last.ckpt"
    return "to train"


PROBE_BATCH = 32  # per-image CPU throughput of the CIFAR models at 32 is within ~15% of batch 128
PROBE_SECONDS = 2.0  # measured steps stop after this long (at least 3, at most 12)


@dataclass(frozen=True)
class Probe:
    """Seconds per image: the fastest measured step (`*_fast`, what a quiet host gives) and the median one."""

    train_fast: float
    train_median: float
    infer_fast: float
    infer_median: float
    batch: int


def probe_seconds(suite: Suite, num_classes: int, shape: tuple[int, ...], device: torch.device) -> Probe:
    """Time training steps and inference batches of the suite's model (channels_last as trained) on random images
    of the dataset's shape, after one warm-up step. The fastest step is the estimate, the median the range's
    other end (+25% for data loading and the per-epoch work the probe leaves out)."""
    torch.manual_seed(0)
    model = components(suite).model(num_classes).to(device)
    if suite.train.channels_last:
        model = to_channels_last(model)
    batch = min(PROBE_BATCH, suite.train.batch_size)
    height, width, channels = shape
    x = torch.rand(batch, channels, height, width, device=device)
    if suite.train.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch,), device=device)
    params = [p for p in model.parameters() if p.requires_grad]

    def train_step() -> None:
        grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), params)
        with torch.no_grad():  # plain SGD by hand: torch.optim's constructor imports torch._dynamo (2 s)
            torch._foreach_add_(params, grads, alpha=-1e-3)

    def infer_step() -> None:
        with torch.inference_mode():
            model(x)

    model.train()
    train = step_seconds(train_step, device) / batch
    model.eval()
    infer = step_seconds(infer_step, device) / batch
    return Probe(float(train.min()), float(np.median(train)), float(infer.min()), float(np.median(infer)), batch)


def step_seconds(step: Callable[[], None], device: torch.device) -> np.ndarray:
    """Seconds per step. On a CPU the process's CPU time over its threads, not the wall clock: other processes
    on a busy host stretch the wall clock tenfold but not the CPU time the model needs (measured: ResNet-8 at a
    load of 14 on 2 CPUs, 42 ms vs 3.7 ms per training image)."""
    step()  # warm-up
    cuda = device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    threads = 1 if cuda else torch.get_num_threads()
    times: list[float] = []
    while len(times) < 3 or (sum(times) < PROBE_SECONDS and len(times) < 12):
        started = clock()
        step()
        if cuda:
            torch.cuda.synchronize(device)
        times.append((clock() - started) / threads)
    return np.array(times)


def duration(seconds: float) -> str:
    """Seconds in the unit a reader takes in at once: s, min, h or days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 3 * 86400 else f"{seconds / 86400:.1f} days"


def host_load() -> str:
    """The 1-minute load average against the CPUs, or '' where the OS has none (the probe's slow end)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return ""
    cpus = os.cpu_count() or 1
    busy = ("; busy host: the estimate counts CPU time, runs started now take longer" if load > cpus else "")
    return f"host load {load:.1f} on {cpus} CPUs{busy}"


def dry_run(suite: Suite, jobs: int) -> str:
    """What `run` would do, after the checks `run` makes before training (the same functions: a folder or suite
    that `run` refuses is refused here with the same error); writes nothing."""
    from .preflight import check_data, check_methods, check_writable, preflight
    from .suite_data import load_data, select_device

    out = output_dir(suite)
    check_writable(out, create=False)
    device = select_device(suite.device)
    runs = suite_runs(suite)
    preflight(suite, out, runs)
    _, train, test = data = load_data(suite)
    dataset = data[0]
    states = {r.name: run_state(suite, RunDir.of(out, r)) for r in runs}
    if any(state != "finished" for state in states.values()):  # as `run`: the data is checked when runs are to do
        check_data(suite, data)
        check_methods(suite, data)
    lines = [f"suite {suite.name}: {len(runs)} runs ({len(suite.methods)} methods x {len(suite.seeds)} seeds) into "
             f"{out}; {len(train):,} train / {len(test):,} test images; device {suite.training_devices(device)}"]
    lines += [f"  {r.name:<24} {states[r.name]}" for r in runs]
    shape = tuple(test.x.shape[1:])
    plans = {label: evaluation.plan(len(test), max(shape[:2]), device.type)
             for label, evaluation in components(suite).evaluations.items()}
    lines.append("evaluations (per run):")
    lines += [f"  {name:<12} {plan.text}" for name, plan in plans.items()]
    if device.type == "cpu":  # as the runner: one thread per worker process
        torch.set_num_threads(1 if jobs > 1 else suite.train.threads or torch.get_num_threads())
    probe = probe_seconds(suite, dataset.num_classes, shape, device)
    per_epoch_eval = len(test) if suite.train.eval_every else 0
    to_train = sum(states[r.name] in ("to train", "failed earlier; will retry", "to resume from last.ckpt")
                   for r in runs)
    to_eval = sum(states[r.name] != "finished" for r in runs)
    workers = max(1, min(jobs, to_eval or 1))

    def total(train_s: float, infer_s: float) -> float:
        train_time = to_train * suite.train.epochs * (len(train) * train_s + per_epoch_eval * infer_s)
        return (train_time + to_eval * sum(p.passes for p in plans.values()) * infer_s) / workers

    fast, slow = total(probe.train_fast, probe.infer_fast), total(probe.train_median, probe.infer_median)
    lines.append(f"estimate: {duration(fast)} (range {duration(fast)} to {duration(max(fast, slow) * 1.25)}) with "
                 f"{workers} worker(s) ({to_train} run(s) to train, {to_eval} to evaluate; probe: "
                 f"{1e3 * probe.train_fast:.2f} ms per training image, {1e3 * probe.infer_fast:.2f} ms per inference "
                 f"image, batch {probe.batch}; corruption-set generation and data loading not included)")
    lines += [f"  {note}" for note in (host_load(), gpu_hint(suite, device, fast)) if note]
    return "\n".join(lines)


def gpu_hint(suite: Suite, device: torch.device, seconds: float) -> str:
    """A suite that would run for more than a day on this CPU is meant for a GPU: say so, and what to override."""
    if device.type != "cpu" or suite.device == "cpu" or seconds < 86400:
        return ""
    return (f"this suite is meant for a GPU (device: {suite.device}, none here); on a CPU override e.g. "
            f"--set model.name=resnet8 --set data.train_subset=10000 --set train.epochs=40, or use "
            f"suites/cifar100-cpu.yaml")
