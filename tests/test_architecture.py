"""The import map of the package: no cycles and no import from a lower layer to a higher one (docs/ARCHITECTURE.md),
function-local imports included (they hide cycles, not remove them). A module importing its own package's
`__init__` (the registry pattern: `from . import METHODS`) is not an arrow: the package face imports its members
to register them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cutmix_bench"
# Bottom to top; a module may import its own layer and those below. Keys: top-level modules or sub-packages of
# cutmix_bench ("" = the package face, cutmix_bench/__init__.py). The same table is drawn in docs/ARCHITECTURE.md.
LAYERS = [
    ("errors",),
    ("io", "faults", "intervals", "registry", "checks", "plugins", "logs", "aggregate"),
    ("config",),
    ("rundir",),
    ("data", "models", "methods", "corruptions", "robustness"),
    ("ood", "cifar_c"),
    ("evaluations",),
    ("components", "training", "user_mixing", "checkpoints"),
    ("suite_file", "suite_data", "setups", "provenance", "summary", "published", "report", "executors", "status",
     "progress"),
    ("runner", "plan", "compare", "scoring", "preflight", "executing", "evaluating", "finish"),
    ("cli", "listing", "__main__", ""),
]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str], root: Path = PACKAGE) -> set[str]:
    """The package modules that `path` imports anywhere in its body (resolved to files, not names)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules)
    return {m for m in found if not (name.startswith(m + ".") or m == name)}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: imported_modules(path, set(files), root) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str, layers: list[tuple[str, ...]] = LAYERS) -> int | None:
    top = module.removeprefix("cutmix_bench").removeprefix(".").split(".")[0]
    return next((i for i, names in enumerate(layers) if top in names), None)


def upward_imports(graph: dict[str, set[str]], layers: list[tuple[str, ...]] = LAYERS) -> list[str]:
    """Every arrow from a module to one in a higher layer, and every module in no layer."""
    found = [f"{m}: in no layer" for m in sorted(graph) if layer_of(m, layers) is None]
    for module in sorted(graph):
        for target in sorted(graph[module]):
            low, high = layer_of(module, layers), layer_of(target, layers)
            if low is not None and high is not None and high > low:
                found.append(f"{module} (layer {low}) imports {target} (layer {high})")
    return found


def test_the_layer_checker_finds_an_upward_import(tmp_path: Path) -> None:
    """On a fake package: a function-local import from the base up to the command line is found, and so is a
    module that no layer names."""
    fake = tmp_path / "cutmix_bench"
    (fake / "sub").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "errors.py").write_text("def f():\n    from .cli import main\n")
    (fake / "cli.py").write_text("from .errors import f\nfrom .sub import leaf\n")
    (fake / "sub" / "__init__.py").write_text("")
    (fake / "sub" / "leaf.py").write_text("from .. import errors\n")
    graph = import_graph(fake)
    assert graph["cutmix_bench.errors"] == {"cutmix_bench.cli"}
    layers = [("errors",), ("sub",), ("cli", "")]
    assert upward_imports(graph, layers) == ["cutmix_bench.errors (layer 0) imports cutmix_bench.cli (layer 2)"]
    assert upward_imports(graph, [("errors",), ("cli", "")])[:2] == ["cutmix_bench.sub: in no layer",
                                                                     "cutmix_bench.sub.leaf: in no layer"]


def test_no_import_goes_up_a_layer() -> None:
    graph = import_graph()
    assert "cutmix_bench.corruptions.apply" in graph, "the import map was not read"
    assert upward_imports(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "cutmix_bench.runner" in graph and graph["cutmix_bench.runner"], "the import map was not read"
    assert cycles(graph) == []


def test_every_module_imports() -> None:
    """A moved module with a stale relative import fails here, not in the first user's run."""
    import importlib

    for name in sorted(import_graph()):
        if name != "cutmix_bench.__main__":
            importlib.import_module(name)


def test_components_are_built_once_per_suite(tmp_path: Path, monkeypatch) -> None:
    """Validation builds every method and evaluation once; training, evaluation, the training-inputs figure
    and the report build none again. The model factory runs once per use (training, then loading the
    checkpoint, and once before any run for the model-dependent method checks): fresh weights per run."""
    import yaml

    from cutmix_bench import components as components_module
    from cutmix_bench.registry import Registry
    from cutmix_bench.runner import run_suite
    from cutmix_bench.suite_file import validate

    from helpers import tiny_suite

    built: list[tuple[str, str]] = []
    create = Registry.create

    def counting(self, name, key=None, /, **kwargs):
        built.append((self.kind, key))
        return create(self, name, key, **kwargs)

    monkeypatch.setattr(Registry, "create", counting)
    model_factory = components_module.create_model
    monkeypatch.setattr(components_module, "create_model", lambda *a, **k: built.append(("factory", "model"))
                        or model_factory(*a, **k))
    raw = yaml.safe_load(tiny_suite(tmp_path, train={"epochs": 1, "batch_size": 64, "threads": 1},
                                    evaluations={"clean": {}, "top": {"evaluation": "clean"}}).read_text())
    suite = validate(raw)
    expected = [("method", "methods.baseline"), ("method", "methods.cutmix"), ("evaluation", "evaluations.clean"),
                ("evaluation", "evaluations.top")]
    assert [b for b in built if b[0] != "dataset"] == expected
    _, failures = run_suite(suite)
    assert failures == {}
    assert [b for b in built if b[0] not in ("dataset", "model", "factory")] == expected
    assert built.count(("factory", "model")) == 5  # 2 runs x (train, evaluate), once for the checks before runs


def test_aggregation_over_runs_lives_in_one_module() -> None:
    """Mean / std over seeds and the t intervals of differences are computed in aggregate.py only: the tables,
    the summary, the figures and compare call it, so changing the aggregation is changing that file."""
    # calls, not the report text that names them
    pattern = re.compile(r"(?<!scipy\.)stats\.ttest_\w+\(|\.std\(|\.agg\(|ddof=")
    readers = ["summary.py", "report.py", "published.py", "compare.py", "evaluations/tables.py",
               "evaluations/figures.py", "evaluations/corruptions.py"]
    offenders = {name: pattern.findall((PACKAGE / name).read_text()) for name in readers}
    assert {name: found for name, found in offenders.items() if found} == {}
    assert pattern.search((PACKAGE / "aggregate.py").read_text())  # the check reads real source
