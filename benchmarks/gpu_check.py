"""The GPU proof as one command (run through benchmarks/gpu_check.sh, which prepares the environment).

Steps, each a subprocess with its own time limit taken from one overall budget, so that a slow step
cannot stop the summary from being written:
1. versions: Python, torch, CUDA, cuDNN, the GPU (name, memory, capability, bf16), Lightning, CPU flags;
2. the training-step benchmark (`bench_train_step.py`: project vs bare loop vs classic DataLoader);
3. a shortened `suites/cifar100.yaml` on the CIFAR-100 subset of `make_subset.py`, every evaluation at
   its GPU default (all test images of the subset), the output log timestamped for the per-phase times;
4. the training-step benchmark again with `torch.compile` (last: its compilation time is the least certain).

Mode `gpu` (default when torch sees a GPU): CIFAR ResNet-18, bf16, channels_last, 10 epochs on the shipped
subset. Mode `cpu`: the same steps reduced to minutes (a tiny subset cut into $OUT, one epoch of the tiny
CNN, a few images per evaluation, no compiled benchmark), so that tests/test_gpu_check.py keeps the script
from rotting. Everything is written under --out: gpu_check.log (from the shell wrapper), versions.json,
bench.txt, bench-compile.txt, suite.log, suite/ (results.csv, report.md, figures) and summary.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # this checkout's package, also when it is not installed

import make_subset  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

from cutmix_bench.training.fit import CPU_BF16_FLAGS, cpu_flags  # noqa: E402

SUITE = ROOT / "suites" / "cifar100.yaml"
# Suite overrides per mode; every evaluation keeps its device default on a GPU (all test images).
OVERRIDES = {
    "gpu": ["seeds=[0]", "train.epochs=10", "train.checkpoint_every=10"],
    "cpu": ["seeds=[0]", "train.epochs=1", "model.name=tiny", "train.precision=32", "train.batch_size=64",
            "evaluations.corruptions.max_images=10", "evaluations.occlusion.max_images=10",
            "evaluations.inbetween.pairs=10", "evaluations.adversarial.max_images=10",
            "evaluations.ood.max_images=20"],
}
BENCH = {"gpu": ["--device", "cuda", "--repeats", "3"], "cpu": ["--device", "cpu", "--quick"]}
# A run's phases start with these log lines of `executing.work` / `evaluating.evaluate_run`.
PHASE = re.compile(r"(?:\[\d+/\d+\] (?P<run>\S+): training on)|(?:(?P<erun>\S+): evaluation (?P<evaluation>\w+))")
STAMP = re.compile(r"^\[(?P<seconds>\d+\.\d+) s\] (?P<line>.*)$")


class Clock:
    """Seconds left of the overall budget, for the next step's time limit."""

    def __init__(self, budget: float) -> None:
        self.deadline = time.monotonic() + budget

    def left(self) -> float:
        return self.deadline - time.monotonic()


def run_step(name: str, command: list[str], log: Path, clock: Clock, reserve: float = 0.0) -> tuple[int | None, float]:
    """Run `command`, streaming its output to stdout and to `log` with elapsed-time stamps; kill it when the
    budget (less `reserve` seconds kept for later steps) runs out. Returns (exit code or None, seconds)."""
    limit = clock.left() - reserve
    print(f"-- {name}: {' '.join(command)} (limit {limit:.0f} s)", flush=True)
    if limit < 5:
        print(f"-- {name}: skipped, the time budget is spent", flush=True)
        return None, 0.0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1")
    start, killed = time.monotonic(), threading.Event()
    with log.open("w") as sink, subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                                 stderr=subprocess.STDOUT, text=True,
                                                 start_new_session=True) as process:

        def kill() -> None:  # the whole process group: corruption workers hold the output pipe too
            killed.set()
            with contextlib.suppress(ProcessLookupError):  # already ended
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(limit, kill)
        timer.daemon = True  # a check ended by SIGTERM must not wait for the timer at exit
        timer.start()
        signal.signal(signal.SIGTERM, lambda *_: (kill(), sys.exit(143)))  # a killed check ends its step too
        try:
            for line in process.stdout:
                stamped = f"[{time.monotonic() - start:.1f} s] {line}"
                sys.stdout.write(stamped)
                sink.write(stamped)
            process.wait()
        finally:
            timer.cancel()
    seconds = time.monotonic() - start
    if killed.is_set():
        print(f"-- {name}: killed after {seconds:.0f} s (time budget)", flush=True)
        return None, seconds
    print(f"-- {name}: exit {process.returncode} in {seconds:.0f} s", flush=True)
    return process.returncode, seconds


def versions() -> dict:
    """What the figures depend on; CPU flags tell whether CPU bf16 (avx512_bf16 / AMX) is native."""
    import torch

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cuda_available": torch.cuda.is_available()}
    for module in ("pytorch_lightning", "torchvision", "numpy"):
        info[module] = __import__(module).__version__
    info["cpu_bf16_flags"] = sorted(cpu_flags() & {*CPU_BF16_FLAGS, "amx_tile"})
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_count=torch.cuda.device_count(),
                    gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    gpu_capability=f"{props.major}.{props.minor}", gpu_bf16=torch.cuda.is_bf16_supported())
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, check=False) \
            if shutil.which("nvidia-smi") else None
        info["nvidia_smi"] = smi.stdout.strip() if smi and smi.returncode == 0 else "not available"
    return info


def results_of(log: Path) -> dict[str, str]:
    """`result <label> = <value> ...` lines of a benchmark log -> {label: the rest of the line}."""
    found = {}
    for raw in log.read_text().splitlines() if log.exists() else []:
        match = STAMP.match(raw)
        line = match["line"] if match else raw
        if line.startswith("result "):
            label, _, value = line.removeprefix("result ").partition(" = ")
            found[label] = value
    return found


def phases(log: Path) -> pd.DataFrame:
    """Seconds per (run, phase) from the timestamped suite log: a phase lasts until the next one starts;
    the last one until the last line (so it includes writing the report)."""
    marks, last = [], 0.0
    for raw in log.read_text().splitlines():
        match = STAMP.match(raw)
        if not match:
            continue
        last = float(match["seconds"])
        phase = PHASE.search(match["line"])
        if phase:
            marks.append((last, phase["run"] or phase["erun"], "training" if phase["run"] else phase["evaluation"]))
    rows = [{"run": run, "phase": name, "seconds": end - start}
            for (start, run, name), (end, _, _) in zip(marks, marks[1:] + [(last, "", "")])]
    return pd.DataFrame(rows, columns=["run", "phase", "seconds"])


def data_folder(mode: str, out: Path, data: Path | None) -> Path:
    """The subset to train on: given, or the shipped one (cut from ../shared/data when absent); in cpu mode
    a tiny one cut into `out` from the shared data, or from the shipped subset on a machine without it."""
    if mode == "gpu":
        folder = data or make_subset.DEFAULT_OUT
        if not (folder / "cifar100" / "train.npz").is_file():
            if not (make_subset.DEFAULT_SOURCE / "cifar100" / "train.npz").is_file():
                raise SystemExit(f"gpu_check: error: --data: {folder}/cifar100/train.npz not found and no "
                                 f"{make_subset.DEFAULT_SOURCE} to cut it from; run benchmarks/make_subset.py "
                                 "where the shared data is and carry gpu-check-data")
            make_subset.make_subset(make_subset.DEFAULT_SOURCE, folder, 80, 30, 0)
        return folder
    source = data or make_subset.DEFAULT_SOURCE
    if not (source / "cifar100" / "train.npz").is_file():
        source = make_subset.DEFAULT_OUT
    make_subset.make_subset(source, out / "data", train_per_class=2, test_per_class=2, seed=0)
    return out / "data"


def summary(mode: str, info: dict, out: Path, steps: dict[str, tuple[int | None, float]], total: float) -> str:
    """summary.md: the machine, the benchmark figures, the suite's time per phase and its clean accuracy."""
    machine = (f"{info.get('gpu')} ({info.get('gpu_memory_gib')} GiB, capability {info.get('gpu_capability')}), "
               f"{info.get('nvidia_smi')}" if mode == "gpu" else f"CPU only ({info['cpus']} CPUs), reduced mode")
    lines = [f"# GPU check ({mode} mode)", "",
             f"Machine: {machine}; torch {info['torch']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, "
             f"Lightning {info['pytorch_lightning']}, Python {info['python']}. Total {total:.0f} s wall.", "",
             "| step | exit | seconds |", "|---|---|---|"]
    lines += [f"| {name} | {'killed / skipped' if code is None else code} | {seconds:.0f} |"
              for name, (code, seconds) in steps.items()]
    lines += ["", "## Training step", "", "| figure | value |", "|---|---|"]
    for log in ("bench.txt", "bench-compile.txt"):
        lines += [f"| `{label}` | {value} |" for label, value in results_of(out / log).items()]
    if (out / "suite.log").exists():
        table = phases(out / "suite.log")
        lines += ["", "## Shortened suite: seconds per phase", "",
                  f"Overrides: {' '.join(OVERRIDES[mode])}; data: see data.txt.", ""]
        if len(table):
            wide = table.pivot_table(index="run", columns="phase", values="seconds", aggfunc="sum", sort=False)
            wide["total"] = wide.sum(axis=1)
            lines.append(wide.round(1).to_markdown())
    results = out / "suite" / "results.csv"
    if results.exists():
        frame = pd.read_csv(results)
        picked = frame[(frame["evaluation"] == "clean") & (frame["metric"] == "top1_err")]
        speed = frame[(frame["evaluation"] == "train") & (frame["metric"] == "images_per_second")]
        lines += ["", "## Suite results", "", "| run | clean top-1 error % | train images/s |", "|---|---|---|"]
        for run in frame["run"].unique():
            acc = picked.loc[picked["run"] == run, "value"]
            ips = speed.loc[speed["run"] == run, "value"]
            lines.append(f"| {run} | {acc.iloc[0]:.2f} | {ips.iloc[0]:.0f} |" if len(acc) and len(ips)
                         else f"| {run} | - | - |")
        lines += ["", f"Report: {out / 'suite' / 'report.md'}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("auto", "gpu", "cpu"), default="auto",
                        help="auto: gpu when torch sees a GPU, else cpu (the reduced mode)")
    parser.add_argument("--out", type=Path, required=True, help="folder for every output")
    parser.add_argument("--data", type=Path, help="gpu mode: the subset folder (default gpu-check-data/); "
                                                  "cpu mode: the shared data folder to cut the tiny subset from")
    parser.add_argument("--budget", type=float, default=None, help="seconds for all steps (default: 460 on a GPU "
                                                                   "less --spent, to end within 8 minutes; 600 on CPU)")
    parser.add_argument("--spent", type=float, default=0.0, help="seconds the wrapper already used (its install)")
    opts = parser.parse_args(argv)
    import torch

    mode = opts.mode if opts.mode != "auto" else "gpu" if torch.cuda.is_available() else "cpu"
    if mode == "gpu" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: error: --mode gpu: torch sees no CUDA device")
    out = opts.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    budget = opts.budget or (460 - opts.spent if mode == "gpu" else 600)
    started, clock = time.monotonic(), Clock(budget)
    info = versions()
    (out / "versions.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2), flush=True)
    data = data_folder(mode, out, opts.data)
    (out / "data.txt").write_text((data / "subset.json").read_text())
    python, bench = sys.executable, str(HERE / "bench_train_step.py")
    steps: dict[str, tuple[int | None, float]] = {}
    # Reserves keep time for the suite (and, on a GPU, the compiled benchmark) when an earlier step hangs; on a GPU
    # shares of the budget (300 s and 120 s of 460 s), so that a shorter rerun (--budget) still runs every step.
    reserve = {"bench": 0.65 * budget, "suite": 0.26 * budget} if mode == "gpu" else {"bench": 60, "suite": 0}
    steps["train-step benchmark"] = run_step("train-step benchmark", [python, bench, *BENCH[mode]],
                                             out / "bench.txt", clock, reserve["bench"])
    suite_command = [python, "-m", "cutmix_bench", "run", str(SUITE), "--set", f"data.root={data / 'cifar100'}",
                     "--set", f"output_dir={out / 'suite'}", *[arg for o in OVERRIDES[mode] for arg in ("--set", o)]]
    steps["shortened cifar100 suite"] = run_step("shortened cifar100 suite", suite_command, out / "suite.log", clock,
                                                 reserve["suite"])
    if mode == "gpu":
        steps["train-step benchmark, torch.compile"] = run_step(
            "train-step benchmark, torch.compile", [python, bench, *BENCH[mode], "--compile"],
            out / "bench-compile.txt", clock)
    text = summary(mode, info, out, steps, time.monotonic() - started)
    (out / "summary.md").write_text(text)
    print(text, flush=True)
    return 0 if all(code == 0 for code, _ in steps.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
