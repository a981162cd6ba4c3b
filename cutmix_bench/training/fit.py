"""Training one run: model, method, loaders, Lightning Trainer and precision, resumed from the run's last
checkpoint. Returns the run's training rows; everything about the run folder beyond its checkpoint and log
is the runner's business."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.environments import LightningEnvironment, SLURMEnvironment

from ..components import components
from ..config import Suite
from ..data import Dataset, Split
from ..errors import BenchError
from ..logs import configure_logging
from ..models.memory_format import to_channels_last
from ..rundir import TRAIN, Run, RunDir
from .callbacks import EpochLog, Hyperparameters, PeriodicCheckpoint, loggers, read_log, record_trackers, step_lr
from .loader import RunData
from .module import Classifier

CPUINFO = Path("/proc/cpuinfo")
# the unit of each training row's value (results.csv `unit`; docs/results-schema.md). The loss is the
# training objective on the mixed targets, averaged over the last epoch's batches.
TRAIN_UNITS = {"train_minutes": "minutes", "images_per_second": "images/second", "final_train_loss": "nats",
               "wall_seconds_this_session": "seconds"}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # native bf16 dot products (Cooper Lake, Sapphire Rapids, Zen 4)


def train_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device,
              run_dir: Path) -> list[dict]:
    """Train (or resume from its last checkpoint) one run in `run_dir`; return its training rows."""
    folder = RunDir(run_dir)
    last, log_file = folder.checkpoint, folder.log
    dataset, train, test = data
    pl.seed_everything(run.seed, workers=False, verbose=False)
    model = components(suite).model(dataset.num_classes)
    if suite.train.channels_last:
        model = to_channels_last(model)  # minus the layout that crashes oneDNN on AVX2 hosts
    method = components(suite).methods[run.method]
    if hasattr(method, "set_normalisation"):  # methods that augment raw pixels (AugMix) undo the normalisation
        method.set_normalisation(dataset.mean, dataset.std)
    cfg = suite.train
    steps = len(train) // cfg.batch_size  # global batches per epoch, whatever the number of devices
    if steps == 0:
        raise BenchError(f"train.batch_size: {cfg.batch_size} is larger than the training set ({len(train)})")
    loaders = RunData(train, test, cfg.batch_size, eval_batch_size(suite, device), dataset.mean,
                      dataset.std, run.seed, validate=bool(cfg.eval_every))
    module = Classifier(model, method, dataset.num_classes, cfg, steps, run.seed, run.method)
    if cfg.compile:
        module.model.compile()  # in place: parameter names (and so checkpoints) stay unchanged
    if last.exists():
        check_checkpoint(last, module.state_dict())
    trackers = loggers(run_dir, cfg.logger)
    setup = json.loads(folder.setup.read_text()) if folder.setup.exists() else {}
    trainer = pl.Trainer(
        max_epochs=cfg.epochs, accelerator=device.type, **distributed(suite, device),
        precision=precision(cfg.precision, device),
        logger=trackers, log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[EpochLog(log_file), PeriodicCheckpoint(last, cfg.checkpoint_every), Hyperparameters(setup),
                   step_lr()],
        check_val_every_n_epoch=cfg.eval_every or cfg.epochs + 1, num_sanity_val_steps=0,
        deterministic=device.type == "cpu", benchmark=device.type == "cuda",
    )
    started = time.perf_counter()
    trainer.fit(module, datamodule=loaders, ckpt_path=str(last) if last.exists() else None, weights_only=True)
    seconds = time.perf_counter() - started
    if trainer.global_rank != 0:  # a run over several nodes: rank 0 writes the run's files and evaluates
        return []
    record_trackers(run_dir, trackers)
    epoch_log = read_log(log_file)
    images = steps * cfg.batch_size * len(epoch_log)
    epoch_seconds = epoch_log["seconds"].sum()
    values = {"train_minutes": epoch_seconds / 60, "images_per_second": images / epoch_seconds,
              "final_train_loss": epoch_log["train_loss"].iloc[-1], "wall_seconds_this_session": seconds}
    return [{"evaluation": TRAIN, "metric": metric, "value": value, "unit": TRAIN_UNITS[metric]}
            for metric, value in values.items()]


def distributed(suite: Suite, device: torch.device) -> dict[str, Any]:
    """The Trainer's devices, strategy, nodes and cluster environment. One device: the given one. Several
    (train.devices, docs/scaleout.md): on one node Lightning's ddp_spawn, which starts the ranks as fresh processes
    and returns to this one after fit (plain `ddp` would re-run the command line for every rank, and the
    evaluations would run on each); over executor.nodes > 1, the ranks are the tasks SLURM started (plain ddp with
    Lightning's SLURMEnvironment, whose requeue handler stays off: requeueing is submitit's). Each rank gets
    batch_size / devices of every global batch, and on GPUs BatchNorm is synchronised so its statistics are the
    global batch's, as on one device (torch has no SyncBatchNorm on CPUs: there each rank normalises its own rows)."""
    cfg, nodes = suite.train, suite.executor.nodes
    if cfg.devices == 1:
        return {"devices": 1 if device.index is None else [device.index], "plugins": [OwnRanks()]}
    ranks = {"strategy": suite.strategy_ran(), "sync_batchnorm": device.type == "cuda"}
    if nodes == 1:
        return {"devices": cfg.devices, **ranks, "plugins": [OwnRanks()]}
    if not SLURMEnvironment.detect():
        raise BenchError(f"executor.nodes: {nodes}: a run over several nodes trains in the SLURM tasks that the slurm "
                         f"executor starts (one per device); this process is not one (no SLURM task variables)")
    return {"devices": cfg.devices // nodes, "num_nodes": nodes, **ranks,
            "plugins": [SLURMEnvironment(auto_requeue=False)]}


class OwnRanks(LightningEnvironment):
    """Lightning's plain environment: a run starts its own ranks inside one scheduler task, so Lightning must not
    take the SLURM variables of a submitit job for a multi-task launch, nor install its own requeue handler. A
    ddp_spawn rank unpickles it in a fresh interpreter that has none of the command's logging set-up: there it sets
    it up (logs.py), before Lightning prints its per-rank lines and warnings."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        configure_logging()


def eval_batch_size(suite: Suite, device: torch.device) -> int:
    """Large batches suit a GPU; on a CPU a batch of 1024 falls out of the caches and is 1.2-1.4x slower
    than 128 (docs/performance.md)."""
    return suite.eval_batch_size or (1024 if device.type == "cuda" else 128)


def precision(choice: str, device: torch.device) -> str:
    """Lightning's precision flag: `auto` is bf16 autocast on GPUs that support it, fp16 autocast (with
    loss scaling) on older GPUs, fp32 on CPU. `bf16` on a CPU (opt-in) needs native bf16 instructions:
    elsewhere autocast emulates them, slower than fp32, so it is refused."""
    if choice == "auto":
        if device.type != "cuda":
            return "32-true"
        return "bf16-mixed" if torch.cuda.is_bf16_supported(including_emulation=False) else "16-mixed"
    if choice == "bf16" and device.type == "cpu" and not cpu_flags() & set(CPU_BF16_FLAGS):
        raise BenchError(f"train.precision: 'bf16' on a CPU needs native bf16 instructions (CPU flag "
                         f"{' or '.join(CPU_BF16_FLAGS)} in {CPUINFO}); this CPU has neither: use '32' (or 'auto')")
    return "bf16-mixed" if choice == "bf16" else "32-true"


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty where it cannot be read."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def check_checkpoint(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Load `path` safely and check that it holds the same parameter names and shapes as `expected`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as exc:
        raise BenchError(f"{path}: not a readable checkpoint ({type(exc).__name__}); delete it to retrain "
                         f"this run from scratch") from exc
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    wanted = {k: tuple(v.shape) for k, v in expected.items()}
    if shapes != wanted:
        differing = sorted(set(shapes.items()) ^ set(wanted.items()))[:3]
        raise BenchError(f"{path}: checkpoint is of another model (first differences: {differing}); "
                         f"delete the run folder or use another output_dir")
    return state
