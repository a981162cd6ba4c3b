"""`cutmix-bench run --dry-run`: the runs and their state, the evaluations with their image counts, and a
rough time estimate from a measured probe (a few training steps and one inference batch of the suite's
model on random images of the dataset's shape). Nothing is trained or written. The checks `run` makes before
training run first (preflight.py), so the dry run refuses what `run` refuses, with the same line."""

from __future__ import annotations

import time

import torch

from .components import components
from .config import Suite
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


def probe_seconds(suite: Suite, num_classes: int, shape: tuple[int, ...], device: torch.device,
                  steps: int = 2) -> tuple[float, float]:
    """(training seconds per image, inference seconds per image) of the suite's model: the mean of `steps`
    steps on a batch of up to 16 random images after one warm-up step."""
    torch.manual_seed(0)
    model = components(suite).model(num_classes).to(device)
    batch = min(16, suite.train.batch_size)
    height, width, channels = shape
    x = torch.rand(batch, channels, height, width, device=device)
    y = torch.randint(0, num_classes, (batch,), device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    for step in range(steps + 1):
        if step == 1:
            started = time.perf_counter()
        grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), params)
        with torch.no_grad():  # plain SGD by hand: torch.optim's constructor imports torch._dynamo (2 s)
            torch._foreach_add_(params, grads, alpha=-1e-3)
    train = (time.perf_counter() - started) / steps / batch
    model.eval()
    with torch.inference_mode():
        started = time.perf_counter()
        model(x)
        infer = (time.perf_counter() - started) / batch
    return train, infer


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def dry_run(suite: Suite, jobs: int) -> str:
    """What `run` would do, after the checks `run` makes before training (the same functions: a folder or suite
    that `run` refuses is refused here with the same error); writes nothing."""
    from .preflight import check_data, check_writable, preflight
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
    lines = [f"suite {suite.name}: {len(runs)} runs ({len(suite.methods)} methods x {len(suite.seeds)} seeds) into "
             f"{out}; {len(train):,} train / {len(test):,} test images; device {device}"]
    lines += [f"  {r.name:<24} {states[r.name]}" for r in runs]
    shape = tuple(test.x.shape[1:])
    plans = {label: evaluation.plan(len(test), max(shape[:2]), device.type)
             for label, evaluation in components(suite).evaluations.items()}
    lines.append("evaluations (per run):")
    lines += [f"  {name:<12} {plan.text}" for name, plan in plans.items()]
    if device.type == "cpu":  # as the runner: one thread per worker process
        torch.set_num_threads(1 if jobs > 1 else suite.train.threads or torch.get_num_threads())
    train_s, infer_s = probe_seconds(suite, dataset.num_classes, shape, device)
    per_epoch_eval = len(test) if suite.train.eval_every else 0
    to_train = sum(states[r.name] in ("to train", "failed earlier; will retry", "to resume from last.ckpt")
                   for r in runs)
    to_eval = sum(states[r.name] != "finished" for r in runs)
    train_time = to_train * suite.train.epochs * (len(train) * train_s + per_epoch_eval * infer_s)
    eval_time = to_eval * sum(p.passes for p in plans.values()) * infer_s
    workers = max(1, min(jobs, to_eval or 1))
    lines.append(f"estimate: {_duration((train_time + eval_time) / workers)} with {workers} worker(s) "
                 f"({to_train} run(s) to train, {to_eval} to evaluate; probe: {1e3 * train_s:.2f} ms per training "
                 f"image, {1e3 * infer_s:.2f} ms per inference image, batch {min(16, suite.train.batch_size)}; "
                 f"corruption-set generation and data loading not included)")
    return "\n".join(lines)

