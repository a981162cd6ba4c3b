"""Runs every benchmarks/bench_*.py, each in its own process (its own thread setting and memory), with
this checkout first on the import path, then repeats their `result` lines as one summary.

    python benchmarks/run_all.py [--quick] [--threads 2] [--only bench_mixing] [--markdown results.md]

Exits non-zero when a script fails; goals that are not met are reported, not failures. Every summary line
and markdown row names the machine its figure comes from (the `device` of the script's header line: a
GPU's name when the script ran on one; `bench_train_step.py` does whenever torch sees a GPU).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Scripts not built on timing.parser take neither --quick nor --threads (OMP_NUM_THREADS still applies):
# the options that stand for --quick.
OWN_OPTIONS = {"bench_corruptions": ["--images", "2"]}
# timing.setup's header: "   torch 2.x, device cuda (NVIDIA H200), torch threads 1, 16 CPUs (x86_64), ..."
DEVICE = re.compile(r"^\s+torch \S+, device (?P<device>cpu|cuda \(.*?\)), .*?, (?P<cpus>\d+ CPUs \(.*?\))")


def scripts(only: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    unknown = set(only) - {path.stem for path in found}
    if unknown:
        raise SystemExit(f"--only: no benchmark named {sorted(unknown)}; found {[path.stem for path in found]}")
    return [path for path in found if not only or path.stem in only]


def run(script: Path, quick: bool, threads: int) -> tuple[int, list[str], float, str]:
    """Exit code, `result` lines, seconds and machine of one script; its output is streamed as it comes."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    if script.stem in OWN_OPTIONS:
        options = OWN_OPTIONS[script.stem] if quick else []
    else:
        options = ["--threads", str(threads)] + (["--quick"] if quick else [])
    command = [sys.executable, str(script), *options]
    start, results, machine = time.perf_counter(), [], f"cpu, {os.cpu_count()} CPUs"
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith("result "):
                results.append(line.removeprefix("result ").rstrip())
            elif header := DEVICE.match(line):
                machine = f"{header['device']}, {header['cpus']}"
    return process.returncode, results, time.perf_counter() - start, machine


def markdown(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| benchmark | result | machine |", "|---|---|---|"]
    return "\n".join(lines + [f"| {name} | {result} | {machine} |" for name, result, machine in rows]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run all side-by-side benchmarks.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test; numbers are noise)")
    parser.add_argument("--threads", type=int, default=1, choices=(1, 2))
    parser.add_argument("--only", action="append", default=[], help="a script name without .py (repeatable)")
    parser.add_argument("--markdown", type=Path, help="also write the summary as a markdown table here")
    opts = parser.parse_args(argv)
    rows, failed, started = [], [], time.perf_counter()
    for script in scripts(opts.only):
        code, results, seconds, machine = run(script, opts.quick, opts.threads)
        print(f"-- {script.name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s\n", flush=True)
        rows += [(script.stem, result, machine) for result in results]
        if code:
            failed.append(script.name)
    print(f"== summary ({time.perf_counter() - started:.0f} s, torch threads {opts.threads})")
    for name, result, machine in rows:
        print(f"{name}: {result}  [{machine}]")
    if opts.markdown:
        opts.markdown.write_text(markdown(rows))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
