"""The benchmarks run and report; their timing helper orders and aggregates correctly. Speed is never
asserted: the numbers depend on the host."""

from __future__ import annotations

import importlib.util
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import timing  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


def load(name: str):  # noqa: ANN201 (a module object)
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass looks up its module while the module runs
    spec.loader.exec_module(module)
    return module


def test_interleaved_alternates_order_warms_up_and_takes_medians() -> None:
    calls, now = [], [0.0]
    durations = {"a": iter([1.0, 3.0, 2.0]), "b": iter([5.0, 4.0, 9.0])}

    def contender(name: str, items: int):  # noqa: ANN202
        def run() -> int:
            calls.append(name)
            if len(calls) > 2:  # the first two calls are the untimed warm-up
                now[0] += next(durations[name])
            return items
        return run

    timings = timing.interleaved({"a": contender("a", 10), "b": contender("b", 20)}, repeats=3,
                                 clock=lambda: now[0])
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert timings["a"].seconds == [1.0, 3.0, 2.0] and timings["b"].seconds == [5.0, 4.0, 9.0]
    assert timings["a"].median == 2.0 and timings["a"].rate == 5.0
    assert timings["b"].median == 5.0 and timings["b"].rate == 4.0


def test_interleaved_rejects_a_contender_whose_work_changes() -> None:
    sizes = iter([1, 1, 2])
    with pytest.raises(ValueError, match="processed 2 items, earlier 1"):
        timing.interleaved({"a": lambda: next(sizes)}, repeats=2)


def test_paired_ratio_is_the_median_of_per_round_ratios() -> None:
    fast = timing.Timing("fast", 10, [1.0, 4.0, 2.0])  # rates 10, 2.5, 5
    slow = timing.Timing("slow", 10, [3.0, 4.0, 5.0])  # per-round ratios 3, 1, 2.5
    assert timing.paired_ratio({"fast": fast, "slow": slow}, "fast", "slow") == pytest.approx(2.5)
    assert fast.rate / slow.rate == 2.0  # the ratio of medians differs: pairing is what the scripts report


def test_result_goals() -> None:
    assert timing.Result("r", 0.95, at_least=0.9).met is True
    assert timing.Result("r", 0.85, at_least=0.9).met is False
    assert timing.Result("r", 0.02, at_most=0.01).met is False
    assert timing.Result("r", 3.0).met is None and timing.Result("r", 3.0).goal == ""


EXPECTED = {
    "bench_train_step": {"train_step.project_vs_bare_loop", "train_step.project_vs_classic_dataloader",
                         "train_step.project_vs_classic_as_official", "train_step.project_images_per_second",
                         "train_step.bare_loop_images_per_second"},
    "bench_mixing": {f"mixing.{group}.{what}" for group, others in
                     [("cutmix_batch", ["timm", "torchvision"]), ("mixup_batch", ["timm", "torchvision"]),
                      ("cutout", ["timm"]), ("cutmix_per_sample", ["timm"]), ("mixup_per_sample", ["timm"])]
                     for what in [f"speedup_vs_{other}" for other in others] + ["share_of_resnet18_step"]},
    "bench_eval": {"eval.clean_images_per_second_batch32", "eval.clean_images_per_second_batch128",
                   "eval.corrupted_mmap_images_per_second", "eval.mmap_vs_in_memory"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_benchmark_runs_quick_and_prints_its_results(name: str, capsys: pytest.CaptureFixture) -> None:
    threads = torch.get_num_threads()
    try:
        results = load(name).main(["--quick"])
    finally:
        torch.set_num_threads(threads)
    assert {r.label for r in results} == EXPECTED[name]
    assert all(math.isfinite(r.value) and r.value > 0 for r in results)
    out = capsys.readouterr().out
    printed = [line for line in out.splitlines() if line.startswith("result ")]
    assert [line.split()[1] for line in printed] == [r.label for r in results]
    if name == "bench_eval":  # reading through a memory map must not change a single logit
        assert "max |logits(mapped) - logits(in memory)| = 0\n" in out


def test_run_all_runs_a_selected_script_and_summarises(tmp_path: Path) -> None:
    table = tmp_path / "results.md"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--only", "bench_eval",
                           "--markdown", str(table)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "bench_eval: eval.mmap_vs_in_memory = " in done.stdout
    rows = table.read_text().splitlines()
    assert rows[:2] == ["| benchmark | result | machine |", "|---|---|---|"] and len(rows) == 2 + 4
    machines = {row.split(" | ")[-1] for row in rows[2:]}  # bench_eval measures on the CPU
    assert machines == {f"cpu, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}) |"}, machines
    assert f"  [cpu, {os.cpu_count()} CPUs" in done.stdout


def test_run_all_rejects_an_unknown_script() -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "run_all.py"), "--only", "bench_nothing"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "no benchmark named ['bench_nothing']" in done.stderr


# The fast-path changes the benchmarks led to must not change a single output value.

@pytest.mark.parametrize("name, params", [("cutmix", {"mode": "batch"}), ("cutmix", {"mode": "elem", "prob": 0.5}),
                                          ("cutmix", {"prob": 0.0}), ("mixup", {"mode": "elem"}), ("mixup", {}),
                                          ("cutout", {"prob": 0.5})])
@pytest.mark.parametrize("channels_last", [True, False])
def test_methods_match_the_plain_formulas_and_keep_the_memory_format(name: str, params: dict,
                                                                     channels_last: bool) -> None:
    from cutmix_bench.methods import create_method
    from cutmix_bench.methods.base import box_mask

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, 8, 3, generator=generator).permute(0, 3, 1, 2)  # channels_last, as BatchLoader gives
    x = x if channels_last else x.contiguous()
    y = torch.nn.functional.one_hot(torch.randint(0, 5, (16,), generator=generator), 5).float()
    method = create_method(name, **params)
    p = method.sample(16, 8, 8, np.random.default_rng(1))
    mixed_x, mixed_y = method.apply(x, y, p)
    perm = torch.as_tensor(p.get("perm", np.arange(16)))
    if name == "cutmix":  # the general mask formula, for one shared box as well as per-sample boxes
        mask = box_mask(*p["box"], 8, 8, x.device)
        keep = 1 - mask.sum(dim=(1, 2, 3)).float()[:, None] / 64
        expected = torch.where(mask, x[perm], x), y * keep + y[perm] * (1 - keep)
    elif name == "mixup":
        lam = torch.as_tensor(p["lam"], dtype=x.dtype)
        expected = (x * lam[:, None, None, None] + x[perm] * (1 - lam[:, None, None, None]),
                    y * lam[:, None] + y[perm] * (1 - lam[:, None]))
    else:
        mask = box_mask(*p["box"], 8, 8, x.device) & torch.as_tensor(p["active"])[:, None, None, None]
        expected = x.masked_fill(mask, 0.0), y
    assert torch.equal(mixed_x, expected[0]) and torch.equal(mixed_y, expected[1])
    assert mixed_x.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_run_all_passes_its_options_only_to_scripts_built_on_timing(tmp_path: Path) -> None:
    run_all = load("run_all")
    for name in ("bench_corruptions", "bench_new"):
        script = tmp_path / f"{name}.py"
        script.write_text("import sys\nprint('result args =', *sys.argv[1:])\n")
        code, results, _, _ = run_all.run(script, quick=True, threads=2)
        expected = "--images 2" if name == "bench_corruptions" else "--threads 2 --quick"
        assert code == 0 and results == [f"args = {expected}"]
