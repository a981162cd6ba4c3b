"""Bring your own model: score networks trained elsewhere (or runs of this tool) with a suite's evaluations, through
the run's own evaluation path (`evaluating.score_model`, `executing.finish_run`, `finish.write_results`, the report),
each model a row label beside the methods of results.csv, so `report` and `compare` read it unchanged.

A model is given as a run folder of this tool, a checkpoint of a registered or `timm:` model in one of the formats
of `checkpoints`, a TorchScript or `torch.export` file, or (Python API) a module in memory. Its normalisation and
input size are its own: stated, or implied by the checkpoint format, and checked against the data before anything
is scored (a wrong class count or image size is one BenchError).

Several models under one label are its seeds (0, 1, ... in the order given; a run folder keeps its seed), averaged
in the report as a method's seeds are. An evaluated model's folder is `<out>/runs/<label>-s<seed>/`, with
setup.json recording how the model was given (format, model, normalisation) and evaluated.json its file and
SHA-256; a folder holding anything else (a trained run, another model or file) is never written over. The
output folder may be a suite's output_dir: its trained runs stay and share the report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from torch import nn

from .checkpoints import NORMALISATIONS, Normalisation, get_format, load_weights, timm_preprocessing
from .config import NAME, NAME_RULE, Reference, Suite, apply_override
from .data import Dataset, Split
from .errors import BenchError
from .evaluating import is_program, prepared, score_model, trained_model
from .executing import finish_run
from .finish import collect_results, finish_suite
from .io import sha256_file, write_text
from .models import create_model
from .plugins import load_plugins
from .preflight import check_data, check_writable
from .provenance import environment, record
from .rundir import Run, RunDir
from .suite_data import load_data, select_device
from .suite_file import read_suite, validate

EVALUATED = "evaluated"  # the `method:` of an evaluated model's entry in suite.json's methods
NOT_FINISHED = "not finished: not run yet, or still running (see `cutmix-bench status SUITE`)"  # a suite's run


@dataclass
class ModelSpec:
    """One model to score and how it was given. `normalisation`: (mean, std), None = the dataset's (a run of this
    tool), or the name of one of `checkpoints.NORMALISATIONS` / "dataset"; `input_size`: the image side it takes."""

    label: str
    kind: str  # run | checkpoint | program | module
    path: Path | None = None
    model: str | None = None  # registered or timm: name (checkpoint)
    params: dict[str, Any] = field(default_factory=dict)
    format: str = "state-dict"
    prefix: str = "model."
    normalisation: Normalisation | str | None = None
    input_size: int | None = None
    seed: int = 0
    module: nn.Module | None = None


@dataclass
class Loaded:
    spec: ModelSpec
    model: nn.Module
    normalisation: Normalisation | None
    input_size: int | None
    record: dict[str, Any]  # how the model was given, for setup.json and the report's Methods line


def run_spec(path: Path, label: str | None = None) -> ModelSpec:
    """A run folder of this tool: its label (method) and seed from its setup.json."""
    folder = RunDir(Path(path))
    if not folder.checkpoint.is_file() or not folder.setup.is_file() or not folder.config.is_file():
        raise BenchError(f"{path}: not a run folder of this tool (expected last.ckpt, setup.json and config.yaml)")
    seed = json.loads(folder.setup.read_text())["seed"]
    return ModelSpec(label or folder.name.removesuffix(f"-s{seed}"), "run", Path(path), seed=seed)


def evaluation_suite(suite_file: Path | None, overrides: list[str], specs: list[ModelSpec],
                     dataset: str | None = None, data_root: str | None = None) -> tuple[Suite, Reference | None]:
    """The data and evaluations: from the suite file, else the first run folder's suite, else the dataset's
    defaults (`--data`, the clean evaluation); with the overrides. `reference:` names evaluated labels."""
    runs = [s for s in specs if s.kind == "run"]
    if suite_file is not None:
        raw = read_suite(suite_file, overrides)
    elif runs:
        raw = yaml.safe_load(RunDir(runs[0].path).config.read_text())
        raw.pop("output_dir", None)
        for item in overrides:
            apply_override(raw, item)
    elif dataset is not None:
        raw = {"name": "evaluate", "data": {"name": dataset, **({"root": str(Path(data_root).resolve())}
                                                                if data_root else {})}}
        for item in overrides:
            apply_override(raw, item)
    else:
        raise BenchError("evaluate: say which data to score on: a suite file, a --run folder, or --data NAME")
    if dataset is not None and suite_file is not None:
        raise BenchError("--data: give the data either in the suite file or with --data, not both")
    reference = raw.pop("reference", None)
    if reference is not None and suite_file is None:  # a run's own suite: its published numbers of these labels
        labels = {s.label for s in specs}
        results = {k: v for k, v in (reference.get("results") or {}).items() if k in labels}
        reference = {**reference, "results": results} if results else None
    suite = validated(raw, str(suite_file or "evaluate"))
    if reference is not None:
        try:
            reference = Reference.model_validate(reference)
        except Exception as exc:
            raise BenchError(f"reference: expected citation and results (label -> metric -> value): {exc}") from None
        unknown = [label for label in reference.results if label not in {s.label for s in specs}]
        if unknown:
            raise BenchError(f"reference.results.{unknown[0]}: not the label of an evaluated model; expected one "
                             f"of {', '.join(s.label for s in specs)}")
    return suite, reference


def validated(raw: dict[str, Any], source: str) -> Suite:
    """The suite of an evaluation, validated (its evaluations built, so checked): keys that only training uses
    (model, train, methods, seeds) keep the file's values or get placeholders that let the schema validate."""
    raw.setdefault("model", {"name": "tiny"})
    raw.setdefault("train", {}).setdefault("epochs", 1)
    raw["methods"] = raw.get("methods") or {"baseline": {}}
    raw.setdefault("seeds", [0])
    return validate(raw, source)


def resolve_normalisation(value: Normalisation | str | None, implied: Normalisation | None, label: str,
                          stated_by: str) -> Normalisation | None:
    """The user's statement wins, then the format's (or timm's); a model with neither is an error: scoring it
    with a guessed normalisation would give wrong numbers quietly."""
    if isinstance(value, str):
        if value == "dataset":
            return None
        if value not in NORMALISATIONS:
            raise BenchError(f"{label}: normalisation: unknown name {value!r}; expected dataset, "
                             f"{', '.join(NORMALISATIONS)}, or (mean, std)")
        return NORMALISATIONS[value]
    if value is not None:
        mean, std = value
        if len(mean) != 3 or len(std) != 3 or not all(s > 0 for s in std):
            raise BenchError(f"{label}: normalisation: expected 3 means and 3 positive stds, got {value}")
        return [float(m) for m in mean], [float(s) for s in std]
    if implied is not None:
        return implied
    raise BenchError(f"{label}: state the normalisation the model was trained with ({stated_by}): a name "
                     f"({', '.join(NORMALISATIONS)}), 'dataset' for the data's own statistics, or mean and std")


def load_model(spec: ModelSpec, dataset: Dataset) -> Loaded:
    """The model of `spec` on the CPU with its weights, normalisation and input size."""
    how = "--normalisation or --mean/--std" if spec.kind != "module" else "normalisation=..."
    if spec.kind == "run":
        run_suite = Suite.model_validate(yaml.safe_load(RunDir(spec.path).config.read_text()))
        load_plugins(run_suite.plugins)
        try:
            model = trained_model(run_suite, RunDir(spec.path).checkpoint, dataset.num_classes)
        except BenchError as exc:  # its advice (delete the run folder) is for `run`; here the data may not fit
            differences = re.search(r"first differences: (\[.*\])", str(exc))
            raise BenchError(f"{spec.path}: its checkpoint does not fit {run_suite.model.name} for the "
                             f"{dataset.num_classes} classes of the data scored on (first differences: "
                             f"{differences[1] if differences else exc}); score a run on data with its own classes") \
                from None
        norm = None if spec.normalisation is None else resolve_normalisation(spec.normalisation, None, spec.label, how)
        return Loaded(spec, model, norm, spec.input_size,
                      {"source": str(spec.path.resolve()), "format": "run", "model": run_suite.model.name,
                       "params": run_suite.model.params, "sha256": sha256_file(RunDir(spec.path).checkpoint)})
    if spec.kind == "checkpoint":
        fmt = get_format(spec.format)
        model = create_model(spec.model, dataset.num_classes, "--model", **spec.params)
        load_weights(model, spec.model, spec.path, fmt, spec.prefix)
        timm_norm, timm_size = timm_preprocessing(model) if spec.model.startswith("timm:") else (None, None)
        norm = resolve_normalisation(spec.normalisation, fmt.normalisation(dataset.num_classes) or timm_norm,
                                     spec.label, how)
        return Loaded(spec, model, norm, spec.input_size or fmt.image_side(dataset.num_classes) or timm_size,
                      {"source": str(spec.path.resolve()), "format": fmt.name, "model": spec.model,
                       "params": spec.params, "sha256": sha256_file(spec.path)})
    if spec.kind == "program":
        model, size = load_program(spec.path)
        return Loaded(spec, model, resolve_normalisation(spec.normalisation, None, spec.label, how),
                      spec.input_size or size, {"source": str(spec.path.resolve()), "format": "program",
                                                "sha256": sha256_file(spec.path)})
    return Loaded(spec, spec.module, resolve_normalisation(spec.normalisation, None, spec.label, how),
                  spec.input_size, {"source": "module in memory", "format": "module",
                                    "model": type(spec.module).__name__})


def load_program(path: Path) -> tuple[nn.Module, int | None]:
    """A TorchScript archive (torch.jit.save) or an exported program (torch.export.save, .pt2), and the image side
    an exported program was traced with. Neither unpickles Python objects: TorchScript runs its own compiled
    code, an exported program its ATen graph; both run only the operators they were saved with."""
    if not Path(path).is_file():
        raise BenchError(f"{path}: model file not found")
    if str(path).endswith(".pt2"):
        try:
            program = torch.export.load(path)
        except Exception as exc:
            raise BenchError(f"{path}: not a torch.export program ({type(exc).__name__})") from None
        shapes = [node.meta["val"].shape for node in program.graph.nodes
                  if node.op == "placeholder" and node.name in program.graph_signature.user_inputs]
        side = shapes[0][-1] if shapes and isinstance(shapes[0][-1], int) else None
        if shapes and isinstance(shapes[0][0], int) and shapes[0][0] != 1:
            raise BenchError(f"{path}: exported with a fixed batch of {shapes[0][0]}; export it with a dynamic "
                             f"batch dimension (dynamic_shapes={{'x': {{0: torch.export.Dim('batch')}}}})")
        return program.module(), side
    try:
        return torch.jit.load(str(path), map_location="cpu"), None
    except Exception as exc:
        raise BenchError(f"{path}: not a TorchScript archive, nor a torch.export .pt2 file ({type(exc).__name__})") \
            from None


def on_device(program: nn.Module, device: torch.device) -> nn.Module:
    """A TorchScript module in eval mode on the device; an exported program's module (which has no train / eval
    switch: it was exported in the mode it runs) on the device."""
    program = program.to(device)
    return program.eval() if isinstance(program, torch.jit.ScriptModule) else program


def check_model(loaded: Loaded, data: tuple[Dataset, Split, Split], device: torch.device, name: str) -> None:
    """The model takes the data's images and gives one logit per class of the data, checked on one image."""
    dataset, _, test = data
    side = test.x.shape[1]
    label = loaded.spec.label
    if loaded.input_size is not None and loaded.input_size != side:
        raise BenchError(f"{label}: the model takes {loaded.input_size}-pixel images, the data ({name}) "
                         f"has {side}-pixel images; score it on data of its input size")
    x = torch.as_tensor(test.x[:1]).permute(0, 3, 1, 2).float().div(255).to(device)
    try:
        with torch.inference_mode():
            out = loaded.model(x)
    except Exception as exc:
        raise BenchError(f"{label}: the model fails on one {side}x{side} image of the data ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(out, torch.Tensor) or out.shape != (1, dataset.num_classes):
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise BenchError(f"{label}: the model gives {shape} for one image, expected [1, {dataset.num_classes}]: "
                         f"one logit per class of {name} ({dataset.num_classes} classes)")


def evaluate_models(specs: list[ModelSpec], suite: Suite, out: Path, reference: Reference | None = None,
                    device: str | None = None) -> tuple[Path, pd.DataFrame]:
    """Score every model of `specs` with the suite's evaluations into `out`; write results.csv and report.md.
    Returns the output folder and the evaluated models' rows of results.csv."""
    labels = [s.label for s in specs]
    for label in labels:
        if not NAME.fullmatch(label):
            raise BenchError(f"--label: {label!r} is not a valid label (it names the run folder); expected {NAME_RULE}")
    keys = [(s.label, s.seed) for s in specs]
    if len(set(keys)) < len(keys):
        label, seed = next(k for k in keys if keys.count(k) > 1)
        raise BenchError(f"--label: two models are {label!r} seed {seed}; give each its own label (or seed)")
    previous = read_previous(out, suite)
    data = load_data(suite)
    check_data_for_evaluation(suite, data)
    dev = select_device(device or suite.device)
    loaded = [load_model(spec, data[0]) for spec in specs]
    folders = {}
    for item in loaded:  # everything checked before any folder is written
        item.model = on_device(item.model, dev) if is_program(item.model) else prepared(suite, item.model, dev)
        check_model(item, data, dev, suite.data.name)
        folder = RunDir.of(out, Run(item.spec.label, item.spec.seed))
        # setup.json: what a label's seeds share (report rows average one setup); evaluated.json: this seed's file
        recipe = {k: v for k, v in item.record.items() if k not in ("source", "sha256")}
        setup = json.dumps({"data": suite.data.model_dump(mode="json"), "model": {"name": item.record.get(
            "model", item.record["format"]), "params": item.record.get("params", {})}, "evaluated": {
            **recipe, "normalisation": item.normalisation}, "seed": item.spec.seed}, sort_keys=True)
        origin = json.dumps({k: item.record[k] for k in ("source", "sha256") if k in item.record}, sort_keys=True)
        if folder.path.exists() and any(not path.is_file() or path.read_text() != text for path, text in
                                        ((folder.setup, setup), (folder.evaluated, origin))):
            raise BenchError(f"{folder.path}: holds results this command did not write for this model (a trained "
                             f"run, or another model, file or data); use another --label or --out")
        folders[item.spec.label, item.spec.seed] = (folder, setup, origin)
    check_writable(out)
    if not (out / "environment.json").exists():
        write_text(out / "environment.json", json.dumps(environment(dev), indent=1, sort_keys=True) + "\n")
    for item in loaded:
        folder, setup, origin = folders[item.spec.label, item.spec.seed]
        folder.path.mkdir(parents=True, exist_ok=True)
        write_text(folder.setup, setup)
        write_text(folder.evaluated, origin)
        if folder.finished(suite.evaluations):
            continue
        folder.done.unlink(missing_ok=True)
        record(folder.path, test_images=len(data[2]))
        rows = score_model(suite, item.model, item.spec.seed, data, dev, folder, out / "cache",
                           normalisation=item.normalisation)
        finish_run(folder, rows, {"run": folder.name, "method": item.spec.label, "seed": item.spec.seed,
                                  "model": item.record.get("model", item.record["format"]),
                                  "dataset": suite.data.name})
    dump = results_suite(suite, previous, loaded, reference)
    runs = []
    for label, params in dump["methods"].items():  # report order: earlier rows first
        seeds = params["seeds"] if params.get("method") == EVALUATED else dump["seeds"]
        runs += [Run(label, seed) for seed in seeds]
    results = collect_results(out, runs)
    # the one end-of-suite step `run` and `report` take: a suite run's failures in this folder stay in the report
    finish_suite(Suite.model_validate(dump), out, runs, draw_inputs=False, unfinished=NOT_FINISHED, ran=False)
    return out, results[results["method"].isin(labels)].reset_index(drop=True)


def check_data_for_evaluation(suite: Suite, data: tuple[Dataset, Split, Split]) -> None:
    """`preflight.check_data` less the training split's batch-size check (nothing trains here)."""
    check_data(suite.model_copy(update={"train": suite.train.model_copy(update={"batch_size": 1})}), data)


def read_previous(out: Path, suite: Suite) -> Suite | None:
    """The suite that `out` already reports (a run of a suite, or earlier evaluations), checked to be on the
    same data: rows on other data must not share a report."""
    path = out / "suite.json"
    if not path.is_file():
        if (out / "results.csv").exists() or (out / "runs").exists():
            raise BenchError(f"{out}: holds results without suite.json (not written by this tool); use another --out")
        return None
    previous = Suite.model_validate(json.loads(path.read_text()))
    if previous.data != suite.data:
        raise BenchError(f"{out}: its results are on other data ({previous.data.name}, "
                         f"{previous.data.model_dump(exclude_defaults=True)}); evaluate into another --out")
    return previous


def results_suite(suite: Suite, previous: Suite | None, loaded: list[Loaded], reference: Reference | None) -> dict:
    """suite.json of the output folder: the earlier rows' labels (trained methods, evaluated models) and the
    evaluated ones, each label as `{method: evaluated, seeds, format, model, params, source: {seed: file}}`."""
    base = previous or suite
    dump = base.model_dump(mode="json")
    if previous is None:
        dump["methods"] = {}
        dump["model"] = {"name": EVALUATED, "params": {}}
    for item in loaded:  # one label, several seeds: several checkpoints of one recipe, averaged as seeds are
        entry = dump["methods"].get(item.spec.label, {})
        entry = entry if entry.get("method") == EVALUATED else {}
        record = {k: v for k, v in item.record.items() if k not in ("sha256", "source")}
        dump["methods"][item.spec.label] = {
            "method": EVALUATED, "seeds": sorted({*entry.get("seeds", []), item.spec.seed}), **record,
            "source": {**entry.get("source", {}), str(item.spec.seed): item.record["source"]}}
    dump["evaluations"] = {**dump["evaluations"], **suite.model_dump(mode="json")["evaluations"]}
    if reference is not None:
        results = {**(previous.reference.results if previous and previous.reference else {}), **reference.results}
        dump["reference"] = {"citation": reference.citation, "results": results}
    return dump


def evaluate(model: nn.Module, data: str | dict[str, Any] | Path, evaluations: dict[str, Any] | None = None,
             normalisation: Normalisation | str | None = None, label: str = "model", out: str | Path | None = None,
             input_size: int | None = None, device: str = "auto", seed: int = 0) -> pd.DataFrame:
    """Score a model in memory (the Python face of `cutmix-bench evaluate`): `data` is a dataset name, a suite's
    `data:` mapping, or a suite file; `evaluations` the suite's `evaluations:` mapping (default: the file's, else
    clean); `normalisation` the model's (mean, std) or a name (`dataset` for the data's statistics). Returns the
    tidy rows (evaluation, metric, value, ...); with `out`, that folder keeps results.csv and report.md."""
    import tempfile

    spec = ModelSpec(label, "module", module=model, normalisation=normalisation, input_size=input_size, seed=seed)
    if isinstance(data, Path) or (isinstance(data, str) and data.endswith((".yaml", ".yml"))):
        raw: dict[str, Any] = read_suite(Path(data))
    else:
        raw = {"name": "evaluate", "data": {"name": data} if isinstance(data, str) else dict(data)}
    raw.pop("reference", None)
    if evaluations is not None:
        raw["evaluations"] = evaluations
    suite = validated(raw, "evaluate(data=...)")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(out) if out is not None else Path(scratch)
        _, rows = evaluate_models([spec], suite, folder, device=device)
    return rows
