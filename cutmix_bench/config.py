"""The suite schema (pydantic, unknown keys rejected), its YAML loader and the `--set key.path=value`
overrides. Imports nothing of the package but errors and the plug-in path rule: `suite_file.py` reads a
file and checks its component names against the registries."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .errors import BenchError
from .plugins import resolve_plugin_files

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1-64 characters from A-Z a-z 0-9 . _ -, not starting with '.' or '-'"
MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed range


def check_name(name: Any, key: str) -> str:
    """A name that becomes a file or folder name (suite name, method label): no separators, no '..', no
    hidden files, short enough for every file system."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise BenchError(f"{key}: {short_repr(name)} is not a valid name; expected {NAME_RULE}")
    return name


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (plain PyYAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}; each key may appear once", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class DataConfig(Strict):
    name: str
    root: str | None = None
    download: bool = False
    train_subset: int | None = Field(None, gt=0)
    test_subset: int | None = Field(None, gt=0)
    subset_seed: int = 0
    params: dict[str, Any] = {}


class ModelConfig(Strict):
    name: str
    params: dict[str, Any] = {}


class OptimizerConfig(Strict):
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)


class ScheduleConfig(Strict):
    name: Literal["cosine", "multistep", "constant"] = "cosine"
    milestones: list[int] = []
    gamma: float = Field(0.1, gt=0)
    warmup_epochs: int = Field(0, ge=0)


class TrainConfig(Strict):
    epochs: int = Field(gt=0)
    batch_size: int = Field(128, gt=0)
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    precision: Literal["auto", "32", "bf16"] = "auto"
    channels_last: bool = True
    compile: bool = False
    eval_every: int = Field(1, ge=0)
    checkpoint_every: int = Field(1, gt=0)
    threads: int | None = Field(None, gt=0)
    # Lightning's loggers: CSV always, and the trackers named (one or a list); not in the setup (training/callbacks.py)
    logger: tuple[Literal["csv", "tensorboard", "mlflow", "wandb"], ...] = ("csv",)
    # Multi-device training of one run (docs/scaleout.md): `batch_size` is the GLOBAL batch, split evenly over the
    # `devices` ranks (it must divide), with no lr scaling (the same global batch is the same recipe); `auto` and
    # `ddp` (the same for devices > 1) start the ranks with Lightning's ddp_spawn on one node, and take the ranks
    # SLURM started with executor.nodes > 1 (plain ddp); a run folder's config.yaml names the one that ran.
    # Evaluations run once, after fit.
    devices: int = Field(1, gt=0)
    strategy: Literal["auto", "ddp", "ddp_spawn"] = "auto"

    @field_validator("logger", mode="before")
    @classmethod
    def _one_or_a_list(cls, value: Any) -> Any:
        """`logger: tensorboard` (or --set train.logger=tensorboard) names one tracker: a list of one."""
        return (value,) if isinstance(value, str) else value

    @field_validator("precision", mode="before")
    @classmethod
    def _number_is_text(cls, value: Any) -> Any:
        """`precision: 32` in YAML (or --set train.precision=32) is the number 32: accept it."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _even_shards(self) -> TrainConfig:
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by devices {self.devices}; the global "
                             f"batch is split evenly over the devices")
        return self

    @model_validator(mode="after")
    def _schedule_fits(self) -> TrainConfig:
        """The schedule's lengths against `epochs`, and SGD's Nesterov flag against its momentum (torch refuses
        Nesterov without momentum, but only when training starts)."""
        sched, epochs = self.schedule, self.epochs
        if sched.warmup_epochs >= epochs:
            raise ValueError(f"schedule.warmup_epochs {sched.warmup_epochs} is not below epochs {epochs}; the warm-up "
                             f"must end before training does")
        if sched.milestones and sched.name != "multistep":
            raise ValueError(f"schedule.milestones {sched.milestones}: only used by schedule multistep, not "
                             f"{sched.name}; remove them or set schedule.name: multistep")
        if sched.milestones != sorted(set(sched.milestones)):
            raise ValueError(f"schedule.milestones {sched.milestones}: expected distinct epochs in increasing order")
        late = [m for m in sched.milestones if not 0 < m < epochs]
        if late:
            raise ValueError(f"schedule.milestones {sched.milestones}: {late[0]} is not an epoch in [1, {epochs - 1}] "
                             f"(epochs {epochs}); a milestone outside the training never takes effect")
        if self.optimizer.name == "sgd" and self.optimizer.nesterov and self.optimizer.momentum == 0:
            raise ValueError("optimizer.nesterov: Nesterov momentum needs optimizer.momentum > 0; set momentum or "
                             "nesterov: false")
        return self


class ExecutorConfig(Strict):
    """Where a suite's runs execute (docs/scaleout.md). `local`: this machine, `jobs` runs at a time. `slurm`: one
    submitit job per run (a job array); the other keys are its sbatch resources, `setup` its shell lines before the
    run starts (module load, conda activate), `nodes` > 1 one run over several nodes (one task per device). `cluster`
    is submitit's cluster type: `slurm` on a cluster; tests set `local` (submitit's local executor: the same code
    path, the jobs as local processes). (submitit's `debug` type is not offered: it runs jobs inside the command and
    opens pdb on an error.)"""

    name: str = "local"  # a registered executor (executors.EXECUTORS: local, slurm, or a plug-in's)
    partition: str | None = None
    timeout_min: int = Field(1440, gt=0)
    gpus_per_run: int = Field(1, ge=0)
    cpus_per_run: int = Field(4, gt=0)
    mem_gb: float | None = Field(None, gt=0)
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    mail_user: str | None = None
    mail_type: str | None = None
    array_parallelism: int = Field(256, gt=0)
    nodes: int = Field(1, gt=0)
    setup: list[str] = []
    additional_parameters: dict[str, Any] = {}
    cluster: Literal["slurm", "local"] = "slurm"

    @model_validator(mode="after")
    def _nodes_need_slurm(self) -> ExecutorConfig:
        if self.nodes > 1 and self.name == "local":
            raise ValueError(f"nodes {self.nodes}: the local executor runs on this machine only; expected nodes: 1, "
                             f"or name: slurm for a run over several nodes")
        if self.nodes > 1 and self.cluster == "local":
            raise ValueError(f"nodes {self.nodes}: submitit's local cluster runs one node; expected nodes: 1 with "
                             f"cluster: local")
        if self.nodes > 1 and self.gpus_per_run % self.nodes:
            raise ValueError(f"gpus_per_run {self.gpus_per_run} is not divisible by nodes {self.nodes}; expected "
                             f"gpus_per_run = nodes x GPUs per node (the run's GPUs, at least train.devices)")
        return self


# the clean table's metrics a paper reports, and the MSP AUROC over the near / far OOD sets (the summary's rows)
REFERENCE_METRICS = ("top1_err", "top5_err", "nll", "ece", "auroc_near", "auroc_far")


class Reference(Strict):
    """Published numbers of the setting a suite reproduces: shown beside ours in the report, with the citation."""

    citation: str = Field(min_length=1)  # e.g. "Yun et al., CutMix, ICCV 2019, Table 3"
    results: dict[str, dict[str, float]]  # method label -> metric (REFERENCE_METRICS) -> value, in percent
    # the epoch the published numbers are from: "best" (the highest test accuracy over training, what the CutMix
    # and RepDistiller scripts print) or "last"; the report sets ours taken both ways beside them (published.py)
    epoch: Literal["best", "last"] | None = None


class Suite(Strict):
    name: str
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    methods: dict[str, dict[str, Any]]
    seeds: list[int] = Field(min_length=1)
    evaluations: dict[str, dict[str, Any]] = {"clean": {}}
    output_dir: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    jobs: int = Field(1, gt=0)
    executor: ExecutorConfig = ExecutorConfig()
    eval_batch_size: int | None = Field(None, gt=0)  # None: 1024 on a GPU, 128 on a CPU (cache-friendly)
    eval_compile: bool = False  # torch.compile the model for evaluation: logits move in the last bits (performance.md)
    plugins: list[str] = []  # user modules or .py files that register components (plugins.py)
    reference: Reference | None = None  # published numbers (report only; not part of any run's setup)

    @field_validator("methods", "evaluations", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError(f"{short_repr(value)} is not a valid name (it names the output folder); "
                             f"expected {NAME_RULE}")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        """A seed listed twice would count its run twice and fake a small spread."""
        for seed in value:
            if not 0 <= seed <= MAX_SEED:
                raise ValueError(f"seed {seed} is out of range; expected integers in [0, {MAX_SEED}]")
        duplicate = next((s for s in value if value.count(s) > 1), None)
        if duplicate is not None:
            raise ValueError(f"seed {duplicate} is listed twice; each seed must appear once")
        return value

    @field_validator("executor")
    @classmethod
    def _devices_fill_the_nodes(cls, value: ExecutorConfig, info: ValidationInfo) -> ExecutorConfig:
        """A run over several nodes has train.devices / nodes ranks (SLURM tasks) on every node."""
        train = info.data.get("train")
        if value.nodes == 1 or train is None:
            return value
        if train.devices % value.nodes:
            raise ValueError(f"nodes {value.nodes} does not divide train.devices {train.devices}; expected "
                             f"train.devices = nodes x devices per node")
        if train.strategy == "ddp_spawn":
            raise ValueError(f"nodes {value.nodes} with train.strategy ddp_spawn: the ranks of a run over several "
                             f"nodes are SLURM's tasks; expected train.strategy auto or ddp")
        return value

    @field_validator("reference")
    @classmethod
    def _known_labels(cls, value: Reference | None, info: ValidationInfo) -> Reference | None:
        """Published numbers are matched to our runs by method label and metric name: both must exist."""
        methods = list(info.data.get("methods") or {})
        for label, metrics in (value.results.items() if value else ()):
            if methods and label not in methods:
                raise ValueError(f"results.{label}: {label!r} is not a method label of this suite; expected one "
                                 f"of {', '.join(methods)}")
            for metric in metrics:
                if metric not in REFERENCE_METRICS:
                    raise ValueError(f"results.{label}.{metric}: unknown metric {metric!r}; expected one of "
                                     f"{', '.join(REFERENCE_METRICS)}")
        return value

    def method_spec(self, label: str) -> tuple[str, dict[str, Any]]:
        """(registered method name, parameters) of the run label; `method:` defaults to the label."""
        params = dict(self.methods[label])
        return params.pop("method", label), params

    def strategy_ran(self) -> str:
        """Lightning's strategy that trains the suite's runs: `single_device`, `ddp_spawn` (several devices on one
        node) or `ddp` (the ranks SLURM started over executor.nodes > 1). Not part of a run's setup."""
        if self.train.devices == 1:
            return "single_device"
        return "ddp" if self.executor.nodes > 1 else "ddp_spawn"

    def training_devices(self, device: Any) -> str:
        """`cpu`, or `2 x cuda (ddp_spawn)`, `8 x cuda over 2 nodes (ddp)`: where a run trains on `device` (a
        torch.device), for the command's lines."""
        if self.train.devices == 1:
            return str(device)
        nodes = self.executor.nodes
        where = f" over {nodes} nodes" if nodes > 1 else ""
        return f"{self.train.devices} x {device.type}{where} ({self.strategy_ran()})"

    def evaluation_spec(self, label: str) -> tuple[str, dict[str, Any]]:
        """(registered evaluation name, parameters) of an evaluation label; `evaluation:` defaults to the
        label, so one evaluation can run twice with different parameters under two labels."""
        params = dict(self.evaluations[label])
        return params.pop("evaluation", label), params


def apply_override(raw: dict[str, Any], item: str) -> None:
    """`a.b.c=value`, value parsed as YAML. The parent key must exist, except for dict entries
    whose names are open (methods, evaluations, params)."""
    if "=" not in item:
        raise BenchError(f"--set {item}: expected key.path=value")
    path, text = item.split("=", 1)
    try:
        value = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise BenchError(f"--set {path}: value {text!r} is not valid YAML") from exc
    keys = path.split(".")
    node: Any = raw
    for depth, key in enumerate(keys[:-1]):
        if not isinstance(node, dict):
            raise BenchError(f"--set {path}: {'.'.join(keys[:depth])} is not a mapping")
        if key not in node and not _open(keys[:depth]) and key not in _field_names(keys[:depth]):
            _missing(path, keys[: depth + 1])
        node = node.setdefault(key, {})
    if not isinstance(node, dict):
        raise BenchError(f"--set {path}: {'.'.join(keys[:-1])} is not a mapping")
    parent = keys[:-1]
    if keys[-1] not in node and not _open(parent) and keys[-1] not in _field_names(parent):
        _missing(path, keys)
    node[keys[-1]] = value
    resolve_paths(node, Path.cwd(), only=keys[-1])
    if keys == ["plugins"]:
        resolve_plugin_files(raw, Path.cwd())


def is_path_key(key: str) -> bool:
    return key in ("root", "path") or key.endswith(("_root", "_dir", "_path"))


def resolve_paths(node: Any, base: Path, only: str | None = None) -> None:
    """Make the values of path keys (root, path, *_root, *_dir, *_path) absolute against `base`,
    expanding ~ and $VARS; recurses into nested mappings and lists (e.g. lists of OOD set specs)."""
    if isinstance(node, list):
        for item in node:
            resolve_paths(item, base)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if only is not None and key != only:
            continue
        if isinstance(value, str) and is_path_key(key):
            expanded = Path(os.path.expandvars(value)).expanduser()
            node[key] = str(expanded if expanded.is_absolute() else base / expanded)
        else:
            resolve_paths(value, base)


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _open(parent: list[str]) -> bool:
    return bool(parent) and (parent[0] in ("methods", "evaluations") or parent[-1] == "params")


def _field_names(parent: list[str]) -> set[str]:
    """Keys the schema allows under `parent`, so overrides can set keys the suite left at default."""
    model: Any = Suite
    for key in parent:
        field = model.model_fields.get(key)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return set()
        model = annotation
    return set(model.model_fields)


def _missing(path: str, keys: list[str]) -> Any:
    raise BenchError(f"--set {path}: key {'.'.join(keys)} does not exist in the suite or its schema")
