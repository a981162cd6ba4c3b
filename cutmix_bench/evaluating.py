"""Evaluating one trained run: its last checkpoint loaded once, every evaluation of the suite not already saved
under eval/ run on it, each clean test image forwarded once for all of them (evaluations/engine.py)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .components import components
from .config import Suite
from .data import Dataset, Split
from .evaluations import EvalContext
from .faults import kill_point
from .io import write_csv
from .models.memory_format import to_channels_last
from .provenance import device_name, record
from .rundir import Run, RunDir
from .training import check_checkpoint, eval_batch_size

log = logging.getLogger("cutmix_bench")


def evaluate_run(suite: Suite, run: Run, data: tuple[Dataset, Split, Split], device: torch.device, folder: RunDir,
                 cache_dir: Path, share: bool = True) -> list[dict]:
    """Load the last checkpoint and run every evaluation not already saved under eval/. `share`: see
    `EvalContext.share` (False only to compare with the engine before sharing, benchmarks/eval_engine.py)."""
    model = trained_model(suite, folder.checkpoint, data[0].num_classes)
    return score_model(suite, prepared(suite, model, device), run.seed, data, device, folder, cache_dir, share)

def trained_model(suite: Suite, checkpoint: Path, num_classes: int) -> nn.Module:
    """The suite's model with the weights of a run's checkpoint (last.ckpt), checked name by name and shape by shape."""
    model = components(suite).model(num_classes)
    state = check_checkpoint(checkpoint, {f"model.{k}": v for k, v in model.state_dict().items()})
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    return model

def prepared(suite: Suite, model: nn.Module, device: torch.device) -> nn.Module:
    """A model as evaluation runs it: on the device, in eval mode, channels-last and compiled if the suite says so."""
    model = model.to(device).eval()
    if suite.train.channels_last:
        model = to_channels_last(model)
    if suite.eval_compile:
        model.compile()  # in place, as in training
    return model

def score_model(suite: Suite, model: nn.Module, seed: int, data: tuple[Dataset, Split, Split], device: torch.device,
                folder: RunDir, cache_dir: Path, share: bool = True,
                normalisation: tuple[list[float], list[float]] | None = None) -> list[dict]:
    """Run the suite's evaluations not already saved under the folder's eval/ on `model` (prepared), save each and
    return all their rows. `normalisation`: the model's (mean, std) when not the dataset's (`cutmix-bench evaluate`)."""
    dataset, train, test = data
    channels_last = suite.train.channels_last and not is_program(model)
    ctx = EvalContext(model=model, dataset=dataset, test=test, device=device, batch_size=eval_batch_size(suite, device),
                      seed=seed, run_dir=folder.path, cache_dir=cache_dir, train=train,
                      channels_last=channels_last, test_draw=test_draw(suite), share=share,
                      normalisation=normalisation, train_draw=train_draw(suite))
    record(folder.path, parameters=sum(p.numel() for p in model.parameters()), device=device_name(device))
    evaluations = components(suite).evaluations
    # Every evaluation's clean images, finished ones too: a resumed run forwards the same batches (see engine.py)
    ctx.plan_clean([evaluation.clean_positions(test, device.type) for evaluation in evaluations.values()])
    rows = []
    for label, evaluation in evaluations.items():
        path = folder.eval_file(label)
        if not path.exists():
            log.info("%s: evaluation %s", folder.name, label)
            started = time.perf_counter()
            result = pd.DataFrame(evaluation.run(ctx))
            record(folder.path, seconds={label: time.perf_counter() - started})
            kill_point(f"evaluation:{folder.name}:{label}")
            result.insert(0, "evaluation", label)
            if "value" in result:
                result.insert(result.columns.get_loc("value") + 1, "unit", result["metric"].map(evaluation.unit))
            write_csv(path, result)
        rows.extend(pd.read_csv(path).to_dict("records"))
    return rows


def is_program(model: nn.Module) -> bool:
    """A TorchScript module or the module of an exported program: fixed graphs, fed contiguous NCHW as exported."""
    return isinstance(model, (torch.jit.ScriptModule, torch.fx.GraphModule))


def train_draw(suite: Suite) -> tuple[int, int] | None:
    """How the run's training split was drawn from the dataset's training set (`EvalContext.train_draw`): the other
    training images are held out from training."""
    return None if suite.data.train_subset is None else (suite.data.train_subset, suite.data.subset_seed)


def test_draw(suite: Suite) -> tuple[int, int] | None:
    """How the run's test split was drawn from the dataset's test set (`EvalContext.test_draw`)."""
    return None if suite.data.test_subset is None else (suite.data.test_subset, suite.data.subset_seed)
