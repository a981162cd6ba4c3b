"""nox sessions: tests, lint, smoke (the smoke suite end to end), bench (side-by-side benchmarks), gpu (the
GPU check, benchmarks/gpu_check.sh), gpu_bundle (what the GPU machine lacks, made here) and gpu_rehearsal (the
GPU check on that machine's torch with the bundle alone and no network). CI runs tests and lint."""

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


@nox.session
def tests(session: nox.Session) -> None:
    session.install(*TORCH)
    session.install("-e", ".[test,bench]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "cutmix_bench", "tests", "benchmarks", "noxfile.py")


@nox.session
def smoke(session: nox.Session) -> None:
    session.install(*TORCH)
    session.install("-e", ".")
    session.run("cutmix-bench", "run", "suites/smoke.yaml", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """All benchmarks/bench_*.py, then benchmarks/eval_engine.py (minutes: every evaluation of a run; skipped under
    --only); pass options after --, e.g. `nox -s bench -- --threads 2` or `-- --quick`."""
    session.install(*TORCH)
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
    if "--only" not in session.posargs:
        session.run("python", "benchmarks/eval_engine.py", *engine_options(session.posargs))


def engine_options(posargs: list[str]) -> list[str]:
    """The options of run_all.py that eval_engine.py takes too: --quick and --threads N."""
    options, args = [], iter(posargs)
    for arg in args:
        if arg == "--quick":
            options.append(arg)
        elif arg == "--threads":
            options += [arg, next(args, "1")]
    return options


@nox.session(venv_backend="none")
def gpu(session: nox.Session) -> None:
    """benchmarks/gpu_check.sh in the current Python (it uses the installed torch and installs what else is missing
    from gpu-check-data/, offline); outputs under $OUT. Options after --, e.g. `nox -s gpu -- --mode cpu`."""
    session.run("bash", "benchmarks/gpu_check.sh", *session.posargs, external=True)


@nox.session
def gpu_bundle(session: nox.Session) -> None:
    """gpu-check-data/ for the GPU machine (benchmarks/gpu_bundle.py make: the wheels its image lacks and the
    real-data subset; needs PyPI and ../shared/data); prints the device call to run there."""
    session.install("packaging", "numpy")
    session.run("python", "benchmarks/gpu_bundle.py", "make", *session.posargs)


# The GPU image's packages that the project uses, at its versions where known (benchmarks/gpu_bundle.py IMAGE,
# IMAGE_VERSIONS). typing-extensions 4.15.0 (torch 2.11 takes >= 4.10) is older than the bundle's pydantic needs,
# so the rehearsal also takes the bundle's fallback path.
IMAGE_STAND_IN = ["torch==2.11.0", "torchvision==0.26.0", "pytorch-lightning==2.6.6", "numpy==2.5.2",
                  "typing-extensions==4.15.0", "pandas", "scikit-learn", "scipy", "scikit-image", "matplotlib",
                  "rich", "tabulate", "pyyaml", "opencv-python-headless", "pillow", "packaging"]


@nox.session(python=os.environ.get("GPU_REHEARSAL_PYTHON", "3.12"))
def gpu_rehearsal(session: nox.Session) -> None:
    """The GPU check as the GPU machine will run it, on the CPU: Python 3.12 with that image's torch 2.11.0 /
    torchvision 0.26.0 and other packages (from PyPI: the CUDA build, about 2.6 GB of wheels; PyPI has no CPU
    build for Linux), then `gpu_check.sh --mode cpu` with the network cut off (`unshare -n`; without it, pip
    --no-index and an unreachable proxy), installing the rest from gpu-check-data/ alone (`nox -s gpu_bundle`
    first). Not in CI. Outputs under $OUT (default .nox/gpu_rehearsal-out)."""
    bundle = Path("gpu-check-data")
    if not (bundle / "bundle.json").is_file():
        session.error(f"{bundle}/bundle.json not found; run `nox -s gpu_bundle` first")
    session.install(*IMAGE_STAND_IN)
    lacking = session.run("python", "-c", "import importlib.util as u; print([m for m in ('pydantic', "
                          "'imagecorruptions', 'annotated_types') if u.find_spec(m)])", silent=True).strip()
    if lacking != "[]":
        session.error(f"the stand-in for the image already has {lacking}: the rehearsal would prove nothing")
    out = Path(os.environ.get("OUT", ".nox/gpu_rehearsal-out")).resolve()
    shutil.rmtree(out, ignore_errors=True)
    env = {"PYTHON": str(Path(session.bin) / "python"), "OUT": str(out), "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], check=False).returncode == 0:
        offline = ["unshare", "-n"]
    else:  # no network namespace (not root): pip may not use an index, and every proxied request fails
        offline = []
        env.update(PIP_NO_INDEX="1", http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
                   HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    session.run(*offline, "bash", "benchmarks/gpu_check.sh", "--mode", "cpu", "--data", str(bundle),
                *session.posargs, env=env, external=True)
    session.log(f"outputs in {out}; summary: {out / 'summary.md'}")
