"""`cutmix-bench`: the command line. Errors in the user's input print one line and exit 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import BenchError
from .logs import configure_logging

if TYPE_CHECKING:
    from .config import Suite

EPILOG = """examples:
  cutmix-bench run suites/smoke.yaml
  cutmix-bench run suites/cifar100.yaml --set data.root=../shared/data/cifar100 --set train.epochs=1 \\
      --set data.train_subset=5000 --set seeds=[0] --set output_dir=/tmp/x
  cutmix-bench corrupt --dataset npz --data-root ../shared/data/cifar100 --out /tmp/c100c --workers 2
  cutmix-bench run suites/smoke.yaml --dry-run
  cutmix-bench run suites/smoke.yaml --quiet --set 'train.logger=[tensorboard, mlflow]'
  cutmix-bench run suites/smoke.yaml --executor slurm --no-wait   # then: cutmix-bench status results/smoke
  cutmix-bench status results/smoke
  cutmix-bench resume results/smoke   # the recorded suite and overrides again: finish what is not done
  cutmix-bench report results/smoke
  cutmix-bench evaluate --run results/smoke/runs/cutmix-s0 --out results/smoke-evaluate
  cutmix-bench evaluate suites/published/cutmix-pyramidnet200.yaml --model pyramidnet --format cutmix-official \
      --checkpoint cutmix-official=model_best.pth.tar
  cutmix-bench compare results/cifar100-cpu results/cifar100 --out compare.md
  cutmix-bench list
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cutmix-bench", description="Train baseline / Cutout / Mixup / CutMix "
                                     "models and compare accuracy and robustness.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a suite (skips finished runs) and write results + report")
    run.add_argument("suite", type=Path, help="suite YAML file, e.g. suites/smoke.yaml")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a suite key, value in YAML syntax (repeatable), e.g. --set train.epochs=2")
    resume = commands.add_parser("resume", help="run a results directory's recorded suite again (its suite.json: "
                                                "the suite file and --set values it was run with): finish what is "
                                                "not done, interrupted runs from their last checkpoint")
    resume.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="the output_dir of a run")
    for command in (run, resume):
        add_run_options(command)
    report = commands.add_parser("report", help="rebuild report.md from a results directory (no training), or "
                                                "results.csv + report.md from a suite file's finished runs")
    report.add_argument("target", type=Path, metavar="RESULTS_DIR|SUITE",
                        help="a results directory (its results.csv and metadata files), or a suite YAML file")
    report.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="with a suite file: override a suite key")
    status = commands.add_parser("status", help="each run of a suite: done / running / queued / failed / to do, "
                                                "its job id and last epoch (from the run folders)")
    status.add_argument("target", type=Path, metavar="RESULTS_DIR|SUITE",
                        help="a results directory (the suite it recorded), or a suite YAML file")
    status.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="with a suite file: override a suite key (e.g. output_dir), as for run")
    compare = commands.add_parser("compare", help="side-by-side report of two results directories")
    compare.add_argument("dir_a", type=Path, metavar="DIR_A")
    compare.add_argument("dir_b", type=Path, metavar="DIR_B")
    compare.add_argument("--out", type=Path, default=Path("compare.md"),
                         help="markdown file (default compare.md); never inside a results folder or over an existing "
                              "file without --force")
    compare.add_argument("--allow-different", action="store_true",
                         help="compare folders of different datasets, models, training setups, method or evaluation "
                              "parameters (refused by default; the header then lists each difference)")
    compare.add_argument("--force", action="store_true",
                         help="write --out even inside a results folder or over an existing file (never over the "
                              "folder's own results)")
    evaluate = commands.add_parser(
        "evaluate", help="score trained models (run folders, checkpoints, TorchScript / torch.export files) with a "
                         "suite's evaluations; each model a row of results.csv and the report",
        description="Score models trained here or elsewhere with the evaluations of a suite (or of the dataset's "
                    "defaults). LABEL= before a path names the model's row (default: the run's method, the file's "
                    "stem); files given under one label are its seeds 0, 1, ... (averaged as a method's seeds). "
                    "Formats: " + ", ".join(["cutmix-official (clovaai/CutMix-PyTorch)", "openood (OpenOOD v1.5 "
                    "ResNet18_32x32)", "state-dict (this package, timm, torchvision)", "lightning"]) + ".")
    evaluate.add_argument("suite", type=Path, nargs="?", help="suite YAML file: data, evaluations, reference "
                          "(default: the first --run folder's suite, else --data)")
    evaluate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="override a suite key, e.g. --set evaluations.ood.max_images=500")
    evaluate.add_argument("--data", metavar="NAME", help="without a suite: a registered dataset, scored by the "
                          "clean evaluation unless --set evaluations.X=... adds others")
    evaluate.add_argument("--data-root", metavar="DIR", help="with --data: the dataset's root directory")
    evaluate.add_argument("--run", dest="runs", action="append", default=[], metavar="[LABEL=]DIR",
                          help="a run folder of this tool (results/<suite>/runs/<method>-s<seed>; repeatable)")
    evaluate.add_argument("--checkpoint", dest="checkpoints", action="append", default=[], metavar="[LABEL=]FILE",
                          help="weights of --model in --format (repeatable)")
    evaluate.add_argument("--model", help="with --checkpoint: a registered model (cutmix-bench list) or timm:NAME")
    evaluate.add_argument("--model-params", default="{}", metavar="YAML",
                          help="with --checkpoint: the model's parameters, e.g. '{depth: 110, widening: 84}'")
    evaluate.add_argument("--format", default="state-dict",
                          help="checkpoint format: cutmix-official, openood, state-dict (default), lightning")
    evaluate.add_argument("--key-prefix", default="model.", help="lightning: the prefix of the network's keys "
                          "(default model.)")
    evaluate.add_argument("--program", dest="programs", action="append", default=[], metavar="[LABEL=]FILE",
                          help="a TorchScript archive or a torch.export .pt2 file (repeatable)")
    evaluate.add_argument("--normalisation", metavar="NAME", help="the models' input normalisation: dataset (the "
                          "data's statistics), cutmix-cifar, openood-cifar10, openood-cifar100, imagenet (default: "
                          "the run's or the checkpoint format's; required otherwise)")
    evaluate.add_argument("--mean", metavar="R,G,B", help="the models' normalisation mean on [0, 1] (with --std)")
    evaluate.add_argument("--std", metavar="R,G,B", help="the models' normalisation std on [0, 1] (with --mean)")
    evaluate.add_argument("--input-size", type=int, metavar="N", help="the models' image side, checked against "
                          "the data (default: the format's, timm's or the exported program's)")
    evaluate.add_argument("--out", type=Path, help="output folder (default results/<suite name>-evaluate); may be "
                          "a suite's output_dir: its trained runs then share the report")
    evaluate.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: the suite's")
    listing = commands.add_parser("list", help="list registered datasets, models, methods, evaluations, OOD "
                                               "scores and corruptions with a one-line description")
    listing.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE_OR_FILE",
                         help="also import this plug-in (module name or .py file; repeatable)")
    corrupt = commands.add_parser("corrupt", help="write a CIFAR-10-C (or -C-bar) style corruption set of a test split")
    corrupt.add_argument("--dataset", required=True, help="registered dataset name, e.g. npz or cifar100")
    corrupt.add_argument("--data-root", type=Path, help="the dataset's root directory")
    corrupt.add_argument("--out", type=Path, required=True, help="output directory")
    corrupt.add_argument("--params", choices=["cifar", "imagenet", "imagenet-fast"], default="cifar",
                         help="CIFAR-C (32x32) parameters (default), ImageNet-C parameters through the "
                              "imagecorruptions package, or ImageNet-C parameters through this project's batched "
                              "code (about 11x faster, checked against imagecorruptions)")
    corrupt.add_argument("--seed", type=int, default=0)
    corrupt.add_argument("--workers", type=int, help="processes (default: the CPUs available)")
    corrupt.add_argument("--corruptions", help="comma-separated names (default: every corruption of --families)")
    corrupt.add_argument("--families", default="c",
                         help="comma-separated corruption families: c (CIFAR-10-C / CIFAR-100-C, 19 built in; the "
                              "default), c-bar (CIFAR-10-C-bar of Mintun et al. 2021, 10, --params cifar only)")
    corrupt.add_argument("--severities", default="1,2,3,4,5", help="comma-separated subset of 1..5")
    corrupt.add_argument("--plugin", dest="plugins", action="append", default=[], metavar="MODULE_OR_FILE",
                         help="also import this plug-in, e.g. one registering a corruption (repeatable)")
    return parser


def add_run_options(command: argparse.ArgumentParser) -> None:
    """The options `run` and `resume` share."""
    command.add_argument("--jobs", type=int, default=None, metavar="N",
                         help="train N runs at once in worker processes, default: the suite's `jobs` (on a 2-core "
                              "CPU, 2 one-thread workers beat one 2-thread process); capped, with a warning, at the "
                              "runs left to do and the CPUs (GPUs) available")
    command.add_argument("--quiet", action="store_true",
                         help="for CI logs: no progress bars or lines, no info lines; only warnings, errors and the "
                              "report's path")
    command.add_argument("--executor", metavar="NAME",
                         help="where the runs execute (default: the suite's `executor.name`, else local; a plug-in "
                              "may register more): local = this machine (--jobs at a time); slurm = one submitit job "
                              "per run, resources from the suite's `executor:` (docs/scaleout.md)")
    command.add_argument("--no-wait", action="store_true",
                         help="slurm: return once the jobs are submitted (follow with `cutmix-bench status "
                              "RESULTS_DIR`, then `cutmix-bench report RESULTS_DIR`); default: wait for them and "
                              "write the report")
    command.add_argument("--dry-run", action="store_true",
                         help="make the checks run makes before training (refusing what run refuses), then print the "
                              "runs (and which are finished), the evaluations with their image counts and a time "
                              "estimate from a short probe; train nothing, write nothing")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("WARNING" if getattr(args, "quiet", False) else "INFO")
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
    from .suite_file import load_suite

    suite = load_suite(args.suite, args.overrides + ([f"executor.name={args.executor}"] if args.executor else []))
    return run_loaded(suite, args, str(args.suite))


def cmd_resume(args: argparse.Namespace) -> int:
    from .suite_file import load_recorded

    suite = load_recorded(args.results_dir, overrides=[f"executor.name={args.executor}"] if args.executor else [])
    return run_loaded(suite, args, str(args.results_dir))


def run_loaded(suite: Suite, args: argparse.Namespace, follow: str) -> int:
    """Run a loaded suite with the run options; `follow`: what `status` is given to follow it."""
    if args.jobs is not None and args.jobs < 1:
        raise BenchError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    if args.dry_run:
        from .plan import dry_run

        print(dry_run(suite, args.jobs or suite.jobs))
        return 0
    from .executors import IN_FLIGHT
    from .progress import watch
    from .runner import run_suite  # Lightning: not imported for a dry run

    with watch(suite, quiet=args.quiet):
        out, failures = run_suite(suite, args.jobs or suite.jobs, wait=not args.no_wait)
    print(f"report: {out / 'report.md'}")
    if args.no_wait:  # runs in flight are expected; only failures count
        submitted = [name for name, message in failures.items() if message.startswith(IN_FLIGHT)]
        failures = {name: message for name, message in failures.items() if name not in submitted}
        print(f"{len(submitted)} run(s) queued or running; follow with: cutmix-bench status {follow}")
    if failures:
        first = sorted(failures)[0]
        print(f"cutmix-bench: error: {len(failures)} run(s) failed or unfinished ({', '.join(sorted(failures))}; "
              f"see {out / 'report.md'}): {first}: {failures[first]}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import report_from_dir
    from .rundir import ResultsDir

    if args.target.is_dir():
        if args.overrides:
            raise BenchError("--set: only with a suite file; a results directory is reported as recorded")
        with ResultsDir(args.target).finishing():  # not from a results.csv a finishing command is replacing
            print(f"report: {report_from_dir(args.target)}")
        return 0
    from .finish import check_recorded, collect_results, finish_suite
    from .report import build_report
    from .rundir import output_dir, suite_runs
    from .suite_file import load_suite

    suite = load_suite(args.target, args.overrides)
    out, runs = output_dir(suite), suite_runs(suite)
    check_recorded(suite, out, runs)  # the header describes the suite: it must be the runs' recorded setup
    with ResultsDir(out).finishing():
        build_report(suite, collect_results(out, runs), out, {})  # bad run files fail here, before any rewrite
        finish_suite(suite, out, runs, draw_inputs=False, unfinished=NOT_RUN, ran=False)
    print(f"report: {ResultsDir(out).report}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import yaml

    from .scoring import ModelSpec, evaluate_models, evaluation_suite, run_spec

    normalisation: str | tuple[list[float], list[float]] | None = args.normalisation
    if (args.mean is None) != (args.std is None):
        raise BenchError("--mean/--std: give both, or neither")
    if args.mean is not None:
        if normalisation is not None:
            raise BenchError("--normalisation: give a name or --mean/--std, not both")
        normalisation = (floats(args.mean, "--mean"), floats(args.std, "--std"))
    if args.checkpoints and not args.model:
        raise BenchError("--checkpoint: say which network the weights are for with --model NAME")
    try:
        params = yaml.safe_load(args.model_params)
    except yaml.YAMLError:
        params = None
    if not isinstance(params, dict):
        raise BenchError(f"--model-params: expected a YAML mapping, e.g. '{{depth: 110}}', got {args.model_params!r}")
    specs = [run_spec(Path(path), label) for label, path in map(labelled, args.runs)]
    for label, path in map(labelled, args.checkpoints):
        specs.append(ModelSpec(label or Path(path).stem, "checkpoint", Path(path), args.model, params, args.format,
                               args.key_prefix, normalisation, args.input_size))
    for label, path in map(labelled, args.programs):
        specs.append(ModelSpec(label or Path(path).stem, "program", Path(path), normalisation=normalisation,
                               input_size=args.input_size))
    for i, spec in enumerate(specs):  # files under one label: its seeds 0, 1, ... in the order given
        if spec.kind != "run":
            spec.seed = sum(other.label == spec.label and other.kind != "run" for other in specs[:i])
        if spec.kind == "run" and (normalisation is not None or args.input_size):
            spec.normalisation, spec.input_size = normalisation, args.input_size
    if not specs:
        raise BenchError("evaluate: no model given; expected --run DIR, --checkpoint FILE (with --model) or "
                         "--program FILE")
    suite, reference = evaluation_suite(args.suite, args.overrides, specs, args.data, args.data_root)
    out = args.out or Path("results") / f"{suite.name}-evaluate"
    out, _ = evaluate_models(specs, suite, out, reference, args.device)
    print(f"report: {out / 'report.md'}")
    return 0


def labelled(item: str) -> tuple[str | None, str]:
    """`LABEL=PATH` -> (LABEL, PATH); a bare path -> (None, PATH)."""
    label, sep, path = item.partition("=")
    return (label, path) if sep and "/" not in label else (None, item)


def floats(text: str, option: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise BenchError(f"{option}: expected comma-separated numbers, e.g. 0.5071,0.4865,0.4409; got {text!r}") \
            from None


NOT_RUN = "not finished: not run yet, or still running (see `cutmix-bench status RESULTS_DIR`)"


def cmd_status(args: argparse.Namespace) -> int:
    from .status import status_table
    from .suite_file import load_suite

    if args.target.is_dir():
        from .suite_file import load_recorded

        if args.overrides:
            raise BenchError("--set: only with a suite file; a results directory's status is that of its recorded "
                             "suite")
        print(status_table(load_recorded(args.target, build=False)))
        return 0
    print(status_table(load_suite(args.target, args.overrides, build=False)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_dirs

    print(f"comparison: {compare_dirs(args.dir_a, args.dir_b, args.out, args.allow_different, args.force)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .listing import listing

    print(listing(args.plugins), end="")
    return 0


def cmd_corrupt(args: argparse.Namespace) -> int:
    from .cifar_c.generate import generate_test_set
    from .plugins import load_plugins

    load_plugins(args.plugins)
    names = args.corruptions.split(",") if args.corruptions else None
    if names is not None and args.families != "c":
        raise BenchError("--corruptions and --families both given; expected one (names, or whole families)")
    try:
        severities = [int(s) for s in args.severities.split(",")]
    except ValueError:
        raise BenchError(f"--severities: expected comma-separated integers in 1..5, got {args.severities!r}") from None
    meta = generate_test_set(args.dataset, args.data_root, args.out, args.params, args.seed, names, severities,
                             args.workers, args.families.split(","))
    print(f"{args.out}: {len(meta['corruptions'])} corruption(s) x {len(meta['severities'])} severities x "
          f"{meta['images']} images in {meta['generation_seconds']:.1f} s")
    return 0


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "evaluate": cmd_evaluate, "report": cmd_report,
            "status": cmd_status, "compare": cmd_compare, "list": cmd_list,
            "corrupt": cmd_corrupt}

if __name__ == "__main__":
    sys.exit(main())
