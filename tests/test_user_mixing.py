"""CutMix in the user's own code: the Lightning callback and the collate_fn transform, each run from a
user-style script in a temporary directory outside the package, give the runner's mixed batches."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from cutmix_bench.config import TrainConfig
from cutmix_bench.methods import create_method
from cutmix_bench.training.module import Classifier, mixing_rng
from cutmix_bench.user_mixing import MixCollate, MixingCallback

REPO = Path(__file__).resolve().parents[1]
SEED, CLASSES, N, BATCH = 3, 5, 12, 4

USER_MODULE = """
import sys
import torch
import torch.nn.functional as F
import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

x, y = torch.load("data.pt")


class Pairs(Dataset):
    def __len__(self):
        return len(y)

    def __getitem__(self, i):
        return {"image": x[i], "label": y[i]} if DICT else (x[i], y[i])


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
        self.seen = []

    def training_step(self, batch, batch_idx):
        images, target = (batch["image"], batch["label"]) if DICT else batch
        self.seen.append((images.clone(), target.clone()))
        return F.cross_entropy(self.net(images), target)  # soft targets: the user's loss, unchanged

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def trainer(epochs, callbacks=()):
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks))
"""

CALLBACK_SCRIPT = USER_MODULE + """
DICT = sys.argv[1] == "dict"
from cutmix_bench.user_mixing import MixingCallback

net = Net()
trainer(2, [MixingCallback("cutmix", num_classes=5, seed=3, alpha=1.0, mode="elem")]).fit(
    net, DataLoader(Pairs(), batch_size=4))
torch.save(net.seen, "seen.pt")
"""

COLLATE_SCRIPT = USER_MODULE + """
DICT = sys.argv[1] == "dict"
from cutmix_bench.user_mixing import MixCollate

mix = MixCollate("mixup", num_classes=5, seed=3, alpha=0.4)
loader = DataLoader(Pairs(), batch_size=4, collate_fn=mix)
mix.set_epoch(0)
batches = [b for b in loader]
mix.set_epoch(0)
net = Net()
trainer(1).fit(net, loader)  # trains on the mixed batches
torch.save({"batches": batches, "seen": net.seen}, "seen.pt")
"""


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(N, 3, 8, 8, generator=generator), torch.randint(0, CLASSES, (N,), generator=generator)


def run_user_script(tmp_path: Path, script: str, data: tuple, *args: str) -> object:
    """Run `script` as a user would: its own folder, the installed package (here the worktree on PYTHONPATH)."""
    (tmp_path / "train.py").write_text(textwrap.dedent(script))
    torch.save(data, tmp_path / "data.pt")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "train.py", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(tmp_path / "seen.pt", weights_only=False)


def recipe(method_name: str, data: tuple, epochs: int, **params: object) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The runner's mixing of these batches: one generator per epoch, mixing_rng(seed, epoch)."""
    method, (x, y) = create_method(method_name, **params), data
    out = []
    for epoch in range(epochs):
        rng = mixing_rng(SEED, epoch)
        for i in range(0, N, BATCH):
            out.append(method(x[i:i + BATCH], F.one_hot(y[i:i + BATCH], CLASSES).float(), rng))
    return out


def runner_images(data: tuple, epochs: int, method_name: str, **params: object) -> list[torch.Tensor]:
    """What the runner's own Classifier feeds its model for the same batches and seed."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, CLASSES))
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()) if m.training else None)
    cfg = TrainConfig.model_validate({"epochs": epochs, "batch_size": BATCH})
    loader = DataLoader(TensorDataset(*data), batch_size=BATCH)
    module = Classifier(model, create_method(method_name, **params), CLASSES, cfg, len(loader), seed=SEED)
    pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0).fit(module, loader)
    return seen


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_callback_in_a_user_module_gives_the_runners_batches(kind: str, tmp_path: Path, data: tuple) -> None:
    seen = run_user_script(tmp_path, CALLBACK_SCRIPT, data, kind)
    expected = recipe("cutmix", data, 2, alpha=1.0, mode="elem")
    assert len(seen) == len(expected) == 6
    for (images, target), (want_images, want_target) in zip(seen, expected):
        assert torch.equal(images, want_images) and torch.equal(target, want_target)
    assert any(not torch.equal(images, data[0][i * BATCH % N:][:BATCH]) for i, (images, _) in enumerate(seen))
    if kind == "list":  # and the runner's own Classifier feeds its model exactly these images
        runner = runner_images(data, 2, "cutmix", alpha=1.0, mode="elem")
        assert len(runner) == 6 and all(torch.equal(a, b) for a, b in zip(runner, (s[0] for s in seen)))


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_collate_transform_in_a_user_loader_gives_the_runners_batches(kind: str, tmp_path: Path, data: tuple) -> None:
    result = run_user_script(tmp_path, COLLATE_SCRIPT, data, kind)
    expected = recipe("mixup", data, 1, alpha=0.4)
    for batches in (result["batches"], result["seen"]):
        assert len(batches) == len(expected) == 3
        for batch, (want_images, want_target) in zip(batches, expected):
            images, target = (batch["image"], batch["label"]) if isinstance(batch, dict) else batch
            assert torch.equal(images, want_images) and torch.equal(target, want_target)


def test_transform_is_also_a_torchvision_v2_style_call(data: tuple) -> None:
    x, y = data
    mixed, target = MixCollate("cutmix", num_classes=CLASSES, seed=SEED)(x, y)
    want = create_method("cutmix")(x, F.one_hot(y, CLASSES).float(), mixing_rng(SEED, 0))
    assert torch.equal(mixed, want[0]) and torch.equal(target, want[1])


def test_bad_uses_fail_clearly(data: tuple) -> None:
    with pytest.raises(ValueError, match="hidden features"):
        MixingCallback("manifold_mixup", num_classes=CLASSES)
    with pytest.raises(ValueError, match="num_classes"):
        MixCollate("cutmix")
    with pytest.raises(TypeError, match="float"):
        MixCollate("cutmix", num_classes=CLASSES)(data[0].to(torch.uint8), data[1])
    callback = MixingCallback("cutmix", num_classes=CLASSES)
    with pytest.raises(TypeError, match="list"):
        callback.on_train_batch_start(None, None, (data[0], data[1]), 0)


def worker_recipe(method_name: str, x: torch.Tensor, y: torch.Tensor, epoch: int, workers: int,
                  **params: object) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The documented draws with workers: DataLoader hands batch i to worker i % workers, and worker w draws its
    batches in order from default_rng([seed, epoch, 1, w]), started afresh at each epoch."""
    method = create_method(method_name, **params)
    rngs = [np.random.default_rng([SEED, epoch, 1, w]) for w in range(workers)]
    return [method(x[i:i + BATCH], F.one_hot(y[i:i + BATCH], CLASSES).float(), rngs[(i // BATCH) % workers])
            for i in range(0, len(x), BATCH)]


def test_collate_transform_with_persistent_workers_across_a_resume() -> None:
    """Workers that outlive an epoch see each set_epoch (its epoch in shared memory): every epoch's draws are the
    documented ones, differ from the previous epoch's (the same images, unshuffled), and a fresh loader started
    at epoch 2 (a resume) gives exactly the draws of epoch 2 of the uninterrupted loader."""
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(6 * BATCH, 3, 8, 8, generator=generator), torch.randint(0, CLASSES, (6 * BATCH,),
                                                                               generator=generator)

    def loader(mix: MixCollate) -> DataLoader:
        return DataLoader(TensorDataset(x, y), batch_size=BATCH, collate_fn=mix, num_workers=2,
                          persistent_workers=True)

    mix = MixCollate("mixup", num_classes=CLASSES, seed=SEED, alpha=0.4)
    uninterrupted, epochs = loader(mix), []
    for epoch in range(3):
        mix.set_epoch(epoch)
        epochs.append([tuple(batch) for batch in uninterrupted])
    resumed_mix = MixCollate("mixup", num_classes=CLASSES, seed=SEED, alpha=0.4)
    resumed_mix.set_epoch(2)
    resumed = [tuple(batch) for batch in loader(resumed_mix)]
    for epoch, batches in enumerate(epochs):
        want = worker_recipe("mixup", x, y, epoch, 2, alpha=0.4)
        assert all(torch.equal(a, b) for got, exp in zip(batches, want, strict=True) for a, b in zip(got, exp))
    assert not torch.equal(epochs[0][0][0], epochs[1][0][0])
    assert all(torch.equal(a, b) for got, exp in zip(resumed, epochs[2], strict=True) for a, b in zip(got, exp))
