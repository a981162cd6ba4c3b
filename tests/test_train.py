"""Training: the learning-rate schedules of the recipes, optimiser settings, per-epoch reseeding of
batches and mixing, bitwise determinism under a seed, and resuming from the last checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from cutmix_bench.config import TrainConfig
from cutmix_bench.data import create_dataset
from cutmix_bench.methods import create_method
from cutmix_bench.models import create_model
from cutmix_bench.rundir import Run
from cutmix_bench.runner import load_data
from cutmix_bench.suite_file import validate
from cutmix_bench.training import train_run
from cutmix_bench.training.loader import BatchLoader
from cutmix_bench.training.module import Classifier


def learning_rates(train: dict, steps_per_epoch: int) -> list[float]:
    """The lr used at every optimiser step of the whole schedule."""
    cfg = TrainConfig.model_validate(train)
    module = Classifier(torch.nn.Linear(2, 2), create_method("baseline"), 2, cfg, steps_per_epoch, seed=0)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    assert setup["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(cfg.epochs * steps_per_epoch):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_paper_multistep_schedule() -> None:
    """CutMix paper CIFAR recipe: lr 0.25, divided by 10 at epochs 150 and 225 (300 epochs)."""
    steps = 3
    rates = learning_rates({"epochs": 300, "optimizer": {"lr": 0.25},
                            "schedule": {"name": "multistep", "milestones": [150, 225], "gamma": 0.1}}, steps)
    per_epoch = [rates[e * steps:(e + 1) * steps] for e in range(300)]
    for epoch, values in enumerate(per_epoch):
        expected = 0.25 * 0.1 ** ((epoch >= 150) + (epoch >= 225))
        assert values == pytest.approx([expected] * steps, rel=1e-12)


def test_cosine_schedule_per_step_with_warmup() -> None:
    steps, epochs, warmup = 4, 10, 2
    rates = learning_rates({"epochs": epochs, "optimizer": {"lr": 0.1},
                            "schedule": {"name": "cosine", "warmup_epochs": warmup}}, steps)
    total, warm = epochs * steps, warmup * steps
    for step, rate in enumerate(rates):
        if step < warm:
            expected = 0.1 * (step + 1) / warm
        else:
            expected = 0.1 * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
        assert rate == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert rates[warm] == pytest.approx(0.1) and rates[-1] < 0.1 * 0.01


def test_constant_schedule() -> None:
    assert learning_rates({"epochs": 3, "optimizer": {"lr": 0.05}, "schedule": {"name": "constant"}}, 2) == [0.05] * 6


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_optimiser_settings(name: str) -> None:
    cfg = TrainConfig.model_validate({"epochs": 1, "optimizer": {"name": name, "lr": 0.3, "momentum": 0.8,
                                                                 "nesterov": True, "weight_decay": 1e-4}})
    model = torch.nn.Linear(3, 2)
    optimizer = Classifier(model, create_method("baseline"), 2, cfg, 1, 0).configure_optimizers()["optimizer"]
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.3 and group["weight_decay"] == 1e-4
    assert sum(p.numel() for p in group["params"]) == sum(p.numel() for p in model.parameters())
    if name == "sgd":
        assert isinstance(optimizer, torch.optim.SGD) and group["momentum"] == 0.8 and group["nesterov"]
    else:
        assert isinstance(optimizer, torch.optim.AdamW)


# ---------------------------------------------------------------- training loop


class RecordingLoader(BatchLoader):
    """Remembers the epoch its sampler was set to when a pass yields its first batch."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.epochs_seen: list[int] = []

    def __iter__(self):  # noqa: ANN204
        for i, batch in enumerate(super().__iter__()):
            if i == 0:
                self.epochs_seen.append(self.sampler.epoch)
            yield batch


class RecordingMethod:
    """CutMix that remembers the first lambda it drew in every epoch."""

    def __init__(self) -> None:
        self.inner = create_method("cutmix", alpha=1.0, mode="elem")
        self.lams: list[float] = []

    def __call__(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):  # noqa: ANN204
        params = self.inner.sample(len(x), x.shape[2], x.shape[3], rng)
        self.lams.append(float(params["lam"][0]))
        return self.inner.apply(x, y, params)


def test_batches_and_mixing_are_reseeded_every_epoch() -> None:
    """Lightning must call set_epoch on the loader's sampler, and the mixing generator depends on
    the epoch: otherwise every epoch would see the same order, crops and boxes."""
    dataset = create_dataset("synthetic", num_classes=3, train_size=64, test_size=8, size=16)
    loader = RecordingLoader(dataset.load("train"), 32, dataset.mean, dataset.std, torch.device("cpu"), train=True)
    cfg = TrainConfig.model_validate({"epochs": 3, "batch_size": 32})
    method = RecordingMethod()
    module = Classifier(create_model("tiny", 3, width=4), method, 3, cfg, len(loader), seed=0)
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(module, loader)
    assert loader.epochs_seen == [0, 1, 2]
    first_of_epoch = method.lams[::2]
    assert len(method.lams) == 6 and len(set(first_of_epoch)) == 3
    expected = [np.random.default_rng([0, epoch, 1]).beta(1.0, 1.0) for epoch in range(3)]
    assert first_of_epoch == pytest.approx(expected, rel=1e-12)


def tiny_suite(epochs: int) -> object:
    return validate({
        "name": "determinism",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 96, "test_size": 32, "size": 16}},
        "model": {"name": "tiny", "params": {"width": 4}},
        "train": {"epochs": epochs, "batch_size": 32, "schedule": {"name": "constant"}, "optimizer": {"lr": 0.05}},
        "methods": {"cutmix": {"alpha": 1.0, "mode": "elem"}},
        "seeds": [0],
        "device": "cpu",
    })


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def test_same_seed_same_weights_and_resume_replays_the_same_run(tmp_path: Path) -> None:
    two = tiny_suite(2)
    data = load_data(two)
    run, cpu = Run("cutmix", 0), torch.device("cpu")
    train_run(two, run, data, cpu, tmp_path / "a")
    train_run(two, run, data, cpu, tmp_path / "b")
    # Interrupted after one epoch, then resumed from last.ckpt to two epochs.
    train_run(tiny_suite(1), run, data, cpu, tmp_path / "c")
    train_run(two, run, data, cpu, tmp_path / "c")
    a, b, c = (final_weights(tmp_path / d) for d in "abc")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed, different weights"
    assert all(torch.equal(a[k], c[k]) for k in a), "resumed run differs from the uninterrupted one"
    initial = create_model("tiny", 4, width=4)
    assert not torch.equal(a["model.0.0.weight"], initial.state_dict()["0.0.weight"])
    logs = [np.loadtxt(tmp_path / d / "log.csv", delimiter=",", skiprows=1, usecols=(0, 1)) for d in "ac"]
    assert logs[0].shape == (2, 2) and np.array_equal(logs[0], logs[1])
