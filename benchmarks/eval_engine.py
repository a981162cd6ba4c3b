"""Evaluation engine vs pure inference: every default evaluation of one trained ResNet-8, side by side in one run.

Contenders, interleaved (timing.interleaved), each over the same trained run folder (its eval/ files removed
before every call) and the same corruption set (generated into the cache by an untimed first call):
- engine: `evaluating.evaluate_run`, what `cutmix-bench run` executes, with the shared clean logits;
- before: the same with `share=False`, the engine before sharing (every evaluation forwards its clean images
  itself, FGSM computes one gradient per epsilon): the numbers are identical, only the work differs;
- pure inference: a bare loop of `model(x)` under inference mode over as many images as the engine forwarded
  (counted by a hook on the model), plus the engine's gradient passes as bare input gradients (forward and
  backward), at the same batch size, on one ready normalised batch.
Then, per evaluation, the engine's seconds next to the pure seconds of its own forward passes: the rest is
what it spends outside the model (corruption files, metrics and bootstrap intervals, mixing, OOD sets).

Data: the built-in synthetic CIFAR-like set (100 classes, 32x32), `--images` test images; the budgeted
evaluations (corruptions, occlusion, adversarial: `max_images`; in-between: `pairs`) at `--budget`; OOD with a
second synthetic set as near set, written beforehand as an npz file as the real sets are (`near_set`), and the
noise sets as far sets. Weights: one epoch
of training on 1,000 images (speed does not depend on them).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import timing
import torch
import yaml

from cutmix_bench import components as components_module
from cutmix_bench import evaluating, executing
from cutmix_bench.data.synthetic import Synthetic
from cutmix_bench.provenance import INFO
from cutmix_bench.rundir import RunDir, output_dir, suite_runs
from cutmix_bench.suite_data import load_data
from cutmix_bench.suite_file import load_suite


def suite_file(folder: Path, images: int, budget: int | None, quick: bool) -> Path:
    corruptions = {"corruptions": ["contrast"], "severities": [1, 5]} if quick else {}
    evaluations = {
        "clean": {},
        "corruptions": {**corruptions, "max_images": budget},
        "occlusion": {"max_images": budget},
        "inbetween": {"pairs": budget},
        "adversarial": {"max_images": budget},
        "ood": {"near": [{"name": "npz", "label": "other-synthetic", "root": str(near_set(folder, images))}],
                "far": ["gaussian", "uniform"]},
    }
    suite = {"name": "eval-engine", "data": {"name": "synthetic", "params": {
                 "num_classes": 100, "train_size": 1000, "test_size": images}},
             "model": {"name": "resnet8"}, "seeds": [0], "methods": {"baseline": {}},
             "train": {"epochs": 1, "batch_size": 128, "threads": 1, "precision": "32"},
             "evaluations": evaluations, "device": "cpu", "output_dir": str(folder / "out")}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def near_set(folder: Path, images: int) -> Path:
    """A second synthetic set (seed 7) written as `near/test.npz`, compressed like the shared data files: the
    real near sets are files, and generating the set at every call would add 0.3 s that no real run pays."""
    split = Synthetic(num_classes=100, train_size=10, test_size=images, seed=7).load("test")
    (folder / "near").mkdir()
    np.savez_compressed(folder / "near" / "test.npz", x=split.x.numpy(), y=split.y.numpy())
    return folder / "near"


class Counted:
    """Rows forwarded per (evaluation, gradient or not): a hook on the model, the evaluation set by `run`."""

    def __init__(self) -> None:
        self.rows: Counter[tuple[str, bool]] = Counter()
        self.label = ""

    def hook(self, _: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.rows[self.label, torch.is_grad_enabled()] += len(inputs[0])


def labelled(label: str, run: Callable[[object], object], counted: Counted) -> Callable[[object], object]:
    """`run`, which first tells the forward counter which evaluation is running."""
    def wrapped(ctx: object) -> object:
        counted.label = label
        return run(ctx)
    return wrapped


def main(argv: list[str] | None = None) -> list[timing.Result]:
    args = timing.parser(__doc__.splitlines()[0])
    args.add_argument("--images", type=int, default=2000, help="test images (default 2000)")
    args.add_argument("--budget", type=int, default=500,
                      help="max_images / pairs of the budgeted evaluations (default 500; the CPU default is 1000)")
    args.add_argument("--cache", type=Path, default=None,
                      help="corruption cache folder, reused across calls (default: a temporary one)")
    opts = args.parse_args(argv)
    if opts.quick:
        opts.images, opts.budget = 64, 16
    repeats = opts.repeats or (1 if opts.quick else 3)
    timing.setup(f"evaluation engine: resnet8, {opts.images} test images, budget {opts.budget}, eval batch 128",
                 opts.threads, repeats)
    counted = Counted()
    original_model = components_module.create_model

    def model(*args: object, **kwargs: object) -> torch.nn.Module:
        built = original_model(*args, **kwargs)
        built.register_forward_pre_hook(counted.hook)
        return built

    with tempfile.TemporaryDirectory() as tmp:
        suite = load_suite(suite_file(Path(tmp), opts.images, opts.budget, opts.quick))
        for label, evaluation in components_module.components(suite).evaluations.items():  # built once, by validation
            evaluation.run = labelled(label, evaluation.run, counted)
        data, cache = load_data(suite), opts.cache or output_dir(suite) / "cache"
        start = time.perf_counter()
        executing.work(suite.model_copy(update={"evaluations": {"clean": {}}}).model_dump(), data=data)  # trains
        print(f"   trained in {time.perf_counter() - start:.1f} s", flush=True)
        torch.set_num_threads(opts.threads)  # the runner set the suite's
        run = suite_runs(suite)[0]
        folder = RunDir.of(output_dir(suite), run)
        seconds: dict[str, list[dict[str, float]]] = {"engine": [], "before": []}
        rows: dict[str, Counter] = {}
        components_module.create_model = model  # the factory evaluate_run calls
        try:
            def evaluate(share: bool) -> int:
                for stale in [*folder.path.glob("eval/*"), folder.path / "ood_scores.npz", folder.path / INFO]:
                    stale.unlink(missing_ok=True)
                counted.rows.clear()
                evaluating.evaluate_run(suite, run, data, torch.device("cpu"), folder, cache, share)
                seconds["engine" if share else "before"].append(json.loads((folder.path / INFO).read_text())["seconds"])
                rows["engine" if share else "before"] = Counter(counted.rows)
                return opts.images

            start = time.perf_counter()
            evaluate(True)  # generates the corruption set into the cache; counts the engine's passes
            first = time.perf_counter() - start
            print(f"   first call (generates the corruption set into the cache unless it is there, untimed): "
                  f"{first:.1f} s", flush=True)
            seconds["engine"].clear()
            net = load_bare(folder)
            inference = sum(n for (_, grad), n in rows["engine"].items() if not grad)
            gradient = sum(n for (_, grad), n in rows["engine"].items() if grad)
            bare_split: list[dict[str, float]] = []
            contenders = {"engine (evaluate_run)": lambda: evaluate(True),
                          "before sharing (share=False)": lambda: evaluate(False),
                          "pure inference (bare loop)": lambda: bare(net, inference, gradient, 128, bare_split,
                                                                     opts.images)}
            timings = timing.interleaved(contenders, repeats, warmup=0)
        finally:
            components_module.create_model = original_model
    engine, before, pure = contenders
    timing.print_timings(timings, reference=pure, unit="test img/s")
    profile(seconds, rows, bare_split, inference, gradient)
    before_rows = sum(rows["before"].values())
    results = [
        timing.Result("eval_engine.engine_vs_pure_inference", 1 / timing.paired_ratio(timings, engine, pure),
                      at_most=1.15),
        timing.Result("eval_engine.before_vs_pure_inference", 1 / timing.paired_ratio(timings, before, pure)),
        timing.Result("eval_engine.speedup_vs_before", timing.paired_ratio(timings, engine, before)),
        timing.Result("eval_engine.forward_rows_saved_share", 1 - (inference + gradient) / before_rows),
        timing.Result("eval_engine.engine_seconds", timings[engine].median),
    ]
    timing.print_results(results)
    return results


def load_bare(folder: RunDir) -> torch.nn.Module:
    """A fresh ResNet-8 with the run's weights, channels_last, eval mode, no hook."""
    from cutmix_bench.models import create_model

    model = create_model("resnet8", 100, "model")
    state = torch.load(folder.checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    return model.eval().to(memory_format=torch.channels_last)


def bare(model: torch.nn.Module, inference: int, gradient: int, batch: int, split: list[dict[str, float]],
         items: int) -> int:
    """`inference` rows of model(x) under inference mode and `gradient` rows of input gradients, in batches;
    appends the seconds of both parts to `split`."""
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (batch,))
    start = time.perf_counter()
    with torch.inference_mode():
        for done in range(0, inference, batch):
            model(x[:min(batch, inference - done)])
    middle = time.perf_counter()
    for done in range(0, gradient, batch):
        xb = x[:min(batch, gradient - done)].clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xb).float(), y[:len(xb)], reduction="sum")
        torch.autograd.grad(loss, xb)
    split.append({"inference": middle - start, "gradient": time.perf_counter() - middle})
    return items


def profile(seconds: dict[str, list[dict[str, float]]], rows: dict[str, Counter], splits: list[dict[str, float]],
            inference: int, gradient: int) -> None:
    """Per evaluation: median seconds, rows forwarded (inference / gradient) and their pure seconds."""
    split = sorted(splits, key=lambda s: s["inference"] + s["gradient"])[len(splits) // 2]  # the median call
    per_inference = split["inference"] / max(inference, 1)
    per_gradient = split["gradient"] / max(gradient, 1)
    print(f"   per evaluation (median seconds; pure = its passes at the rates of the median bare loop, "
          f"{1e3 * per_inference:.3f} ms per inference row, {1e3 * per_gradient:.3f} ms per gradient row):")
    print(f"   {'evaluation':<12} {'engine s':>9} {'pure s':>8} {'x pure':>7} {'rows inf/grad':>15} "
          f"{'before s':>9} {'rows inf/grad':>15}")
    for label in seconds["engine"][0]:
        engine = sorted(s[label] for s in seconds["engine"])[len(seconds["engine"]) // 2]
        before = sorted(s[label] for s in seconds["before"])[len(seconds["before"]) // 2]
        inf, grad = rows["engine"][label, False], rows["engine"][label, True]
        pure = inf * per_inference + grad * per_gradient
        ratio = f"{engine / pure:.2f}" if pure else "-"
        counts = f"{inf}/{grad}", f"{rows['before'][label, False]}/{rows['before'][label, True]}"
        print(f"   {label:<12} {engine:9.2f} {pure:8.2f} {ratio:>7} {counts[0]:>15} {before:9.2f} {counts[1]:>15}")


if __name__ == "__main__":
    main(sys.argv[1:])
