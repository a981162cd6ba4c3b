"""Reading a suite file: YAML -> path resolution -> `--set` overrides -> schema -> plug-ins -> component
check. Every mistake becomes one BenchError naming the key path and what was expected; component names and
parameters (dataset, model, methods, evaluations) are checked by building them once, before any training."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import Suite, apply_override, check_name, parse_yaml, resolve_paths, short_repr
from .data import DATASETS
from .errors import BenchError
from .evaluations import EVALUATIONS
from .methods import create_method
from .models import MODELS
from .plugins import load_plugins, resolve_plugin_files
from .registry import check_kwargs


def load_suite(path: str | Path, overrides: list[str] = ()) -> Suite:
    """Read, resolve paths, override, validate. Relative paths in the file are relative to the file;
    relative paths given with --set are relative to the current directory."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: suite file not found")
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path}: not a UTF-8 text file (byte {exc.start}); expected a YAML suite") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read the suite file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BenchError(f"{path}:{where} YAML syntax error: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: expected a mapping of suite keys at the top level")
    resolve_paths(raw, path.parent.resolve())
    resolve_plugin_files(raw, path.parent.resolve())
    for item in overrides:
        apply_override(raw, item)
    return validate(raw, str(path))


def validate(raw: dict[str, Any], source: str = "suite") -> Suite:
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        got = "" if error["type"] == "missing" else f", got {short_repr(error.get('input'))}"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "value_error":
            got = ""  # our messages quote the value themselves
        raise BenchError(f"{source}: {key}: {message}{got}") from None
    load_plugins(suite.plugins)  # before the check: plug-ins fill the registries it looks names up in
    check_components(suite)
    return suite


def check_components(suite: Suite) -> None:
    """Names and parameters of the dataset, model, methods and evaluations, checked without loading
    data or building models."""
    dataset = DATASETS.get(suite.data.name, "data.name")
    check_kwargs(dataset, suite.data.params, "data.params")
    given = {"root": suite.data.root, "download": suite.data.download or None}  # what the runner passes
    check_kwargs(dataset, {k: v for k, v in given.items() if v is not None}, "data")

    if not suite.methods:
        raise BenchError("methods: expected at least one method")
    for label in suite.methods:
        check_name(label, "methods")
        name, params = suite.method_spec(label)
        create_method(name, f"methods.{label}", **params)
    for label in suite.evaluations:
        name, params = suite.evaluation_spec(label)
        EVALUATIONS.create(name, f"evaluations.{label}", **params)
    if not suite.model.name.startswith("timm:"):
        check_kwargs(MODELS.get(suite.model.name, "model.name"), suite.model.params, "model.params")
    elif importlib.util.find_spec("timm") is None:
        raise BenchError(f"model.name: {suite.model.name} needs timm, which is not installed (pip install timm)")
