"""User plug-ins: modules, kept in the user's own repository, that register methods, models, datasets, OOD
scores, corruptions or evaluations with the public registries.

Two ways in, both imported by the command line before a suite is checked and by every worker process before
it builds anything (spawned workers start with empty registries):
- the suite key `plugins:`, a list of importable module names (`my_package.my_methods`) or `.py` files
  (relative to the suite file, or to the current directory with `--set`);
- the entry-point group `cutmix_bench.plugins` of installed packages
  (`[project.entry-points."cutmix_bench.plugins"] mine = "my_package.my_methods"` in their pyproject.toml).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points, packages_distributions, version
from pathlib import Path
from types import ModuleType

from .checks import check_input_file
from .errors import BenchError

ENTRY_POINT_GROUP = "cutmix_bench.plugins"
log = logging.getLogger("cutmix_bench")
FILE_MODULE_PREFIX = "cutmix_bench_plugin_"  # the module name of a plug-in imported from a .py file


def load_plugins(specs: Sequence[str] = ()) -> list[ModuleType]:
    """Import the installed entry points, then each of `specs`; importing twice is a no-op (modules are
    cached in sys.modules, so a plug-in registers its components once per process)."""
    modules = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        modules.append(_guarded(f"entry point {ENTRY_POINT_GROUP}:{entry.name} ({entry.value})", entry.load))
    for spec in specs:
        modules.append(_guarded(f"plugins: {spec}", lambda spec=spec: import_plugin(spec)))
    return modules


def import_plugin(spec: str) -> ModuleType:
    """A module name, or the path of a `.py` file imported under a name derived from its absolute path."""
    if not spec.endswith(".py"):
        return importlib.import_module(spec)
    path = Path(spec).resolve()
    try:
        check_input_file(path, "plug-in file")
    except BenchError as exc:
        raise BenchError(f"plugins: {exc}") from None
    name = f"{FILE_MODULE_PREFIX}{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def plugin_spec(module: ModuleType) -> str:
    """The spec that imports `module` again in another process: its file for a plug-in imported from a file
    (or a script), else its name."""
    file_imported = module.__name__.startswith(FILE_MODULE_PREFIX) or module.__name__ == "__main__"
    return str(module.__file__) if file_imported else module.__name__


def plugin_source(module: ModuleType) -> str:
    """Where a plug-in's code came from, for the results: the installed distribution and its version, else its
    file with the file's SHA-256 (first 12 hex digits), so a result names the code that produced it."""
    top = module.__name__.split(".")[0]
    distributions = packages_distributions().get(top, [])
    if distributions and not module.__name__.startswith(FILE_MODULE_PREFIX):
        return f"{distributions[0]} {version(distributions[0])}"
    path = Path(str(module.__file__))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "unreadable"
    return f"{path} (sha256 {digest})"


def plugin_sources(specs: Sequence[str] = ()) -> dict[str, str]:
    """Plug-in module (its spec) -> `plugin_source`, for every plug-in of `load_plugins(specs)`."""
    return {plugin_spec(module): plugin_source(module) for module in load_plugins(specs)}


def _guarded(what: str, load) -> ModuleType:
    """One BenchError line naming the plug-in for any failure inside it (its own traceback with --debug), an
    exit at import included; what it prints at import is captured (it would mix into the command's own output,
    e.g. `list`) and reported in one warning naming it. A plug-in should only register components."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            return load()
    except BenchError:
        raise
    except SystemExit as exc:
        raise BenchError(f"{what}: the plug-in exited at import (SystemExit({exc.code!r})); a plug-in must only "
                         f"register components") from exc
    except Exception as exc:
        raise BenchError(f"{what}: import failed: {type(exc).__name__}: {exc}") from exc
    finally:
        text = printed.getvalue().strip()
        if text:
            first = text.splitlines()[0]
            log.warning("%s: the plug-in printed at import (%d line(s), not shown: %r); a plug-in should only "
                        "register components", what, len(text.splitlines()), first[:80])


def resolve_plugin_files(raw: dict, base: Path) -> None:
    """Make the `.py` entries of a raw suite's `plugins` absolute against `base` (module names stay)."""
    plugins = raw.get("plugins")
    if isinstance(plugins, list):
        raw["plugins"] = [str(base / p) if isinstance(p, str) and p.endswith(".py") and not Path(p).is_absolute()
                          else p for p in plugins]
