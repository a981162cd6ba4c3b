"""nox sessions: tests, lint, smoke (the smoke suite end to end), bench (side-by-side benchmarks), gpu (the
GPU check, benchmarks/gpu_check.sh). CI runs tests and lint."""

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
    """benchmarks/gpu_check.sh in the current Python (it finds or installs what it needs itself, and must work with
    a pre-installed torch); outputs under $OUT. Options after --, e.g. `nox -s gpu -- --mode cpu`."""
    session.run("bash", "benchmarks/gpu_check.sh", *session.posargs, external=True)
