"""Reading a suite file: YAML -> path resolution -> `--set` overrides -> schema -> plug-ins -> components.
Every mistake becomes one BenchError naming the key path and what was expected; component names and
parameters (dataset, model, methods, evaluations) are checked by building them once, before any training
(`components.py`; the runner uses what was built here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .checks import check_input_file
from .config import Suite, apply_override, parse_yaml, resolve_paths, short_repr
from .errors import BenchError
from .executors import EXECUTORS
from .plugins import load_plugins, resolve_plugin_files
from .rundir import ResultsDir


def load_suite(path: str | Path, overrides: list[str] = (), build: bool = True) -> Suite:
    """Read, resolve paths, override, validate. Relative paths in the file are relative to the file;
    relative paths given with --set are relative to the current directory. `build=False` checks the schema
    only (no plug-ins, no components, so no torch): for `status`, which reads run folders."""
    return validate(read_suite(path, overrides), str(path), build)


def load_recorded(out: Path, build: bool = True, overrides: list[str] = ()) -> Suite:
    """The suite a results directory was run with (its suite.json: the validated suite, overrides applied,
    paths resolved), with `out` as its output_dir wherever the folder now is: for `status`, `resume`."""
    path = ResultsDir(out).suite
    if not out.is_dir():
        raise BenchError(f"{out}: no such results directory")
    if not path.is_file():
        raise BenchError(f"{out}: not a results directory of `cutmix-bench run` (no {path.name}, which a run writes "
                         f"before training); give the suite file instead")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BenchError(f"{path}: damaged suite record ({type(exc).__name__}); expected the suite.json a run "
                         f"wrote") from None
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: damaged suite record (not a mapping); expected the suite.json a run wrote")
    raw["output_dir"] = str(out)
    for item in overrides:
        apply_override(raw, item)
    return validate(raw, str(path), build)


def read_suite(path: str | Path, overrides: list[str] = ()) -> dict[str, Any]:
    """The suite file as a mapping, its paths resolved and the overrides applied; not yet validated."""
    path = Path(path)
    check_input_file(path, "suite file")
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
    return raw


def validate(raw: dict[str, Any], source: str = "suite", build: bool = True) -> Suite:
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
    if not build:
        return suite
    load_plugins(suite.plugins)  # before the check: plug-ins fill the registries it looks names up in
    from .components import components  # torch: imported only when the components are built

    components(suite)  # built once here: that is the check, and the runner uses them
    EXECUTORS.get(suite.executor.name, "executor.name")
    return suite
