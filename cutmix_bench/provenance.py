"""What a report needs besides the scores, recorded at run time: the environment (versions, device,
commit, start time), per-run facts (images used, parameter count, wall time per phase) and per-epoch
curves. The runner copies them into the results directory, so `cutmix-bench report RESULTS_DIR`
rebuilds the report from that directory alone.

Files of a results directory (named in rundir.ResultsDir): suite.json (the validated suite), environment.json,
runs.json (run -> info), curves.csv (every run's log.csv with run / method / seed), failures.json."""

from __future__ import annotations

import datetime
import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from . import __version__
from .io import write_csv, write_text
from .rundir import ResultsDir, Run, RunDir

INFO = "info.json"  # per run folder


def device_name(device: torch.device) -> str:
    """The GPU's marketing name, or the CPU model with its core count."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {torch.get_num_threads()} threads (CPU)"


def git_commit() -> str:
    """The project's commit (with "+ local changes" when the tree differs), or "not a git checkout"."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"{commit}{' + local changes' if dirty else ''}"


def environment(device: torch.device, plugins: dict[str, str] | None = None) -> dict[str, Any]:
    """The machine, versions and command of this run; `plugins`: each plug-in module -> its source
    (plugins.plugin_source), recorded only when there are any."""
    import pytorch_lightning

    recorded = {"plugins": plugins} if plugins else {}
    return {**recorded, "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "device": device_name(device), "torch": torch.__version__, "lightning": pytorch_lightning.__version__,
            "cuda": torch.version.cuda or "none (CPU build)", "python": platform.python_version(),
            "cutmix_bench": __version__, "commit": git_commit(), "host": platform.node(), "command": command()}


def command() -> str:
    """The command line that ran the suite, as typed (`python -m cutmix_bench` shown as `cutmix-bench`)."""
    program = Path(sys.argv[0]).name
    return shlex.join(["cutmix-bench" if program in ("cutmix-bench", "__main__.py") else program, *sys.argv[1:]])


def record(run_dir: Path, **items: Any) -> None:
    """Merge `items` into the run's info.json; a dict value is merged key by key (e.g. seconds)."""
    path = run_dir / INFO
    info = json.loads(path.read_text()) if path.is_file() else {}
    for key, value in items.items():
        info[key] = {**info.get(key, {}), **value} if isinstance(value, dict) else value
    write_text(path, json.dumps(info, indent=1, sort_keys=True) + "\n")


def copy_to_results(out: Path, runs: list[Run], suite_dump: dict, failures: dict[str, str]) -> None:
    """Write suite.json, runs.json, curves.csv and failures.json into `out` from the finished runs."""
    folders = {r.name: RunDir.of(out, r) for r in runs}
    finished = [r for r in runs if folders[r.name].is_done()]
    infos = {r.name: json.loads((folders[r.name].path / INFO).read_text()) for r in finished
             if (folders[r.name].path / INFO).is_file()}
    files = ResultsDir(out)
    write_text(files.suite, json.dumps(suite_dump, indent=1) + "\n")  # unsorted: methods keep their order
    write_text(files.runs_info, json.dumps(infos, indent=1, sort_keys=True) + "\n")
    write_text(files.failures, json.dumps(failures, indent=1, sort_keys=True) + "\n")
    curves = [pd.read_csv(folders[r.name].log).assign(run=r.name, method=r.method, seed=r.seed)
              for r in finished if folders[r.name].log.is_file()]
    if curves:
        frame = pd.concat(curves, ignore_index=True)
        write_csv(files.curves, frame[["run", "method", "seed", *[c for c in frame if c not in
                                                                         ("run", "method", "seed")]]])


def read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default
