"""`cutmix-bench`: the command line. Errors in the user's input print one line and exit 2."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import BenchError

EPILOG = """examples:
  cutmix-bench run suites/smoke.yaml
  cutmix-bench run suites/cifar100.yaml --set data.root=../shared/data/cifar100 --set train.epochs=1 \\
      --set data.train_subset=5000 --set seeds=[0] --set output_dir=/tmp/x
  cutmix-bench corrupt --dataset npz --data-root ../shared/data/cifar100 --out /tmp/c100c --workers 2
  cutmix-bench list
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cutmix-bench", description="Train baseline / Cutout / Mixup / CutMix "
                                     "models and compare accuracy and robustness.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a suite (skips finished runs) and write results + report")
    run.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/smoke.yaml")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a suite key, value in YAML syntax (repeatable), e.g. --set train.epochs=2")
    run.add_argument("--jobs", type=int, default=None, metavar="N",
                     help="train N runs at once in worker processes, default: the suite's `jobs` (on a 2-core "
                          "CPU, 2 one-thread workers beat one 2-thread process); capped, with a warning, at the "
                          "runs left to do and the CPUs (GPUs) available")
    report = commands.add_parser("report", help="rebuild results.csv and report.md from finished runs")
    report.add_argument("suite", type=Path)
    report.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    commands.add_parser("list", help="list registered datasets, models, methods and evaluations")
    corrupt = commands.add_parser("corrupt", help="write a CIFAR-10-C style corruption set of a test split")
    corrupt.add_argument("--dataset", required=True, help="registered dataset name, e.g. npz or cifar100")
    corrupt.add_argument("--data-root", type=Path, help="the dataset's root directory")
    corrupt.add_argument("--out", type=Path, required=True, help="output directory")
    corrupt.add_argument("--params", choices=["cifar", "imagenet"], default="cifar",
                         help="CIFAR-C (32x32) or ImageNet-C corruption parameters (default cifar)")
    corrupt.add_argument("--seed", type=int, default=0)
    corrupt.add_argument("--workers", type=int, help="processes (default: the CPUs available)")
    corrupt.add_argument("--corruptions", help="comma-separated subset (default: all 19)")
    corrupt.add_argument("--severities", default="1,2,3,4,5", help="comma-separated subset of 1..5")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        if args.debug:
            raise
        print(f"cutmix-bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # an unexpected file-system failure still gets one line naming the file
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cutmix-bench: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_suite
    from .runner import run_suite

    if args.jobs is not None and args.jobs < 1:
        raise BenchError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    suite = load_suite(args.suite, args.overrides)
    out, failures = run_suite(suite, args.jobs or suite.jobs)
    print(f"report: {out / 'report.md'}")
    if failures:
        first = sorted(failures)[0]
        print(f"cutmix-bench: error: {len(failures)} run(s) failed or unfinished ({', '.join(sorted(failures))}; "
              f"see {out / 'report.md'}): {first}: {failures[first]}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .config import load_suite
    from .report import build_report
    from .runner import check_recorded, output_dir, suite_runs, write_results

    suite = load_suite(args.suite, args.overrides)
    out, runs = output_dir(suite), suite_runs(suite)
    check_recorded(suite, out, runs)  # the header describes the suite: it must be the runs' recorded setup
    results = write_results(out, runs)
    print(f"report: {build_report(suite, results, out, {})}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .data import DATASETS
    from .evaluations import EVALUATIONS
    from .methods import METHODS
    from .models import MODELS

    for registry in (DATASETS, MODELS, METHODS, EVALUATIONS):
        print(f"{registry.kind}s: {', '.join(registry.names())}")
    return 0


def cmd_corrupt(args: argparse.Namespace) -> int:
    from .cifar_c.generate import generate_test_set

    names = args.corruptions.split(",") if args.corruptions else None
    try:
        severities = [int(s) for s in args.severities.split(",")]
    except ValueError:
        raise BenchError(f"--severities: expected comma-separated integers in 1..5, got {args.severities!r}") from None
    meta = generate_test_set(args.dataset, args.data_root, args.out, args.params, args.seed, names, severities,
                             args.workers)
    print(f"{args.out}: {len(meta['corruptions'])} corruption(s) x {len(meta['severities'])} severities x "
          f"{meta['images']} images in {meta['generation_seconds']:.1f} s")
    return 0


COMMANDS = {"run": cmd_run, "report": cmd_report, "list": cmd_list, "corrupt": cmd_corrupt}

if __name__ == "__main__":
    sys.exit(main())
