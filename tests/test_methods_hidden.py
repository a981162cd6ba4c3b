"""Manifold Mixup and feature CutMix: they mix at the drawn stage only (hooks record every stage), the label
weights are the features' mix shares, evaluation is untouched, and a run trains end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from cutmix_bench.errors import BenchError
from cutmix_bench.methods import create_method
from cutmix_bench.methods.hidden import stage_ends
from cutmix_bench.models import create_model
from cutmix_bench.rundir import Run
from cutmix_bench.suite_data import load_data
from cutmix_bench.suite_file import validate
from cutmix_bench.training import train_run

# Small members of every family, on small images: the test is about where the hook mixes, not about size.
MODELS = [("resnet8", {"width": 4}, 16), ("preact_resnet18", {}, 8), ("wide_resnet", {"depth": 10, "width": 1}, 16),
          ("pyramidnet", {"depth": 20, "widening": 12}, 16)]


def stage_outputs(model: torch.nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Outputs of every stage end and the logits. Forward hooks run in registration order and each sees the
    value the previous one returned, so these (registered after the method's hook) see the mixed features."""
    outputs: list[torch.Tensor] = []
    ends = stage_ends(model)
    handles = [end.register_forward_hook(lambda m, i, o: outputs.append(o.detach().clone())) for end in ends]
    try:
        logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return outputs, logits


@pytest.mark.parametrize("model_name,params,size", MODELS)
@pytest.mark.parametrize("name", ["manifold_mixup", "feature_cutmix"])
def test_mixes_at_the_drawn_stage_only(name: str, model_name: str, params: dict, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(model_name, 10, **params).double().train()
    layers = [0, 1, 2, 3] if name == "feature_cutmix" else [0, 1, 2]
    method = create_method(name, layers=layers)
    method.attach(model)
    x = torch.randn(6, 3, size, size, dtype=torch.float64)
    y = torch.eye(6, dtype=torch.float64)
    clean, _ = stage_outputs(model, x)
    rng = np.random.default_rng(1)
    for point in layers[1:]:
        params_ = method.sample(6, size, size, rng)
        while params_["point"] != point:  # draw until the point under test comes up (the box depends on it)
            params_ = method.sample(6, size, size, rng)
        same_x, target = method.apply(x, y, params_)
        assert same_x is x  # the image is untouched: mixing happens inside the forward
        mixed, _ = stage_outputs(model, x)
        perm = params_["perm"]
        for k in range(1, len(clean) + 1):
            if k < point:
                assert torch.equal(mixed[k - 1], clean[k - 1]), f"stage {k} before the mixing point changed"
        h = clean[point - 1]
        if name == "manifold_mixup":
            lam = torch.from_numpy(params_["lam"])[:, None, None, None]
            assert torch.allclose(mixed[point - 1], lam * h + (1 - lam) * h[perm], rtol=0, atol=1e-12)
            share = torch.from_numpy(params_["lam"])
        else:
            y0, y1, x0, x1 = params_["box"]
            inside = torch.zeros_like(h[:, :1], dtype=torch.bool)
            for i in range(6):
                inside[i, :, y0[i]:y1[i], x0[i]:x1[i]] = True
            assert params_["size"] == tuple(h.shape[2:])
            assert torch.equal(mixed[point - 1], torch.where(inside, h[perm], h))
            share = 1 - inside.double().mean((1, 2, 3))
        for i in range(6):
            assert target[i, i].item() == pytest.approx(share[i].item() + (1 - share[i].item()) * (perm[i] == i),
                                                        abs=1e-12)
        after, _ = stage_outputs(model, x)  # the hook fired once and removed itself
        assert all(torch.equal(a, c) for a, c in zip(after, clean))


@pytest.mark.parametrize("name", ["manifold_mixup", "feature_cutmix"])
def test_evaluation_is_untouched_and_point_zero_mixes_the_image(name: str) -> None:
    torch.manual_seed(0)
    model = create_model("resnet8", 10, width=4).double()
    method = create_method(name)
    method.attach(model)
    x, y = torch.randn(5, 3, 32, 32, dtype=torch.float64), torch.eye(5, dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        reference = model(x)
    rng = np.random.default_rng(2)
    for _ in range(30):
        params = method.sample(5, 32, 32, rng)
        out_x, _ = method.apply(x, y, params)
        if params["point"] == 0:
            assert not torch.equal(out_x, x) or (params["perm"] == np.arange(5)).all()
            continue
        with torch.no_grad():
            assert torch.equal(model(x), reference)  # armed, but eval mode: no mixing
        method.disarm()


@pytest.mark.parametrize("name,layers", [("manifold_mixup", [0, 1, 2]), ("feature_cutmix", [0, 1, 2, 3])])
def test_the_point_is_uniform_over_the_layers(name: str, layers: list[int]) -> None:
    method = create_method(name, layers=layers)
    method.attach(create_model("resnet8", 10, width=4))
    rng = np.random.default_rng(3)
    points = [method.sample(2, 32, 32, rng)["point"] for _ in range(4000)]
    counts = np.bincount(points, minlength=len(layers))
    assert stats.chisquare(counts).pvalue > 1e-3 and len(counts) == len(layers)


def test_models_without_stages_are_rejected_with_a_clear_error() -> None:
    method = create_method("manifold_mixup")
    with pytest.raises(BenchError, match="layers.*stages"):
        method.attach(create_model("tiny", 10, width=4))
    with pytest.raises(BenchError, match="layers"):
        create_method("feature_cutmix", layers=[0, 1, 2, 3, 4]).attach(create_model("resnet8", 10, width=4))
    with pytest.raises(BenchError, match="methods.m.*layers"):
        create_method("manifold_mixup", "methods.m", layers=[])


@pytest.mark.parametrize("name", ["manifold_mixup", "feature_cutmix"])
def test_a_run_trains_end_to_end(name: str, tmp_path: Path) -> None:
    suite = validate({
        "name": "hidden",
        "data": {"name": "synthetic", "params": {"num_classes": 4, "train_size": 64, "test_size": 32, "size": 16}},
        "model": {"name": "resnet8", "params": {"width": 4}},
        "train": {"epochs": 1, "batch_size": 32, "threads": 1},
        "methods": {name: {"smoothing": 0.1}},
        "seeds": [0],
        "device": "cpu",
    })
    rows = train_run(suite, Run(name, 0), load_data(suite), torch.device("cpu"), tmp_path / "run")
    assert rows and np.isfinite([r["train_loss"] for r in rows if "train_loss" in r]).all()
