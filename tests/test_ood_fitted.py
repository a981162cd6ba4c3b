"""Fitted OOD scores (ood/fitted.py) equal OpenOOD v1.5's postprocessors (commit 3c35632,
openood/postprocessors/{mds,knn,vim,react}_postprocessor.py), re-written here from that code step by step
(its loops, its library calls, its normaliser) on random features; and the engine hands them the features of
the single forward of each image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sklearn.covariance
import torch
from numpy.linalg import norm, pinv
from scipy.special import logsumexp

from cutmix_bench.data.synthetic import Synthetic
from cutmix_bench.evaluations import EvalContext
from cutmix_bench.models import create_model
from cutmix_bench.ood.fitted import KNN, Mahalanobis, ReAct, ViM
from cutmix_bench.ood.scores import SCORES

CLASSES, DIM = 5, 12


@pytest.fixture(scope="module")
def fitted_data() -> dict[str, np.ndarray]:
    """Training features (ReLU-like: non-negative, some zeros), labels, a head, and test features."""
    rng = np.random.default_rng(0)
    labels = np.arange(400) % CLASSES
    centres = rng.normal(0, 2, (CLASSES, DIM))
    train = np.maximum(centres[labels] + rng.normal(0, 1, (400, DIM)), 0)
    test = np.maximum(np.concatenate([centres[np.arange(60) % CLASSES] + rng.normal(0, 1, (60, DIM)),
                                      rng.normal(1, 3, (40, DIM))]), 0)
    weight, bias = rng.normal(0, 0.5, (CLASSES, DIM)), rng.normal(0, 0.3, CLASSES)
    return {"train": train, "labels": labels, "test": test, "weight": weight, "bias": bias,
            "logits": test @ weight.T + bias}


def ours(score, data: dict[str, np.ndarray]) -> np.ndarray:
    score.fit(data["train"], data["labels"], data["weight"], data["bias"])
    return score.from_features(torch.from_numpy(data["logits"]), torch.from_numpy(data["test"]))


def test_mahalanobis_equals_openood_mds(fitted_data) -> None:
    d = fitted_data
    feats, labels = torch.from_numpy(d["train"]), torch.from_numpy(d["labels"])
    class_mean, centered = [], []
    for c in range(CLASSES):  # MDSPostprocessor.setup
        samples = feats[labels.eq(c)]
        class_mean.append(samples.mean(0))
        centered.append(samples - class_mean[c].view(1, -1))
    class_mean = torch.stack(class_mean)
    covariance = sklearn.covariance.EmpiricalCovariance(assume_centered=False).fit(torch.cat(centered).numpy())
    precision = torch.from_numpy(covariance.precision_)
    features = torch.from_numpy(d["test"])
    class_scores = torch.zeros((len(features), CLASSES), dtype=torch.float64)
    for c in range(CLASSES):  # MDSPostprocessor.postprocess
        tensor = features - class_mean[c].view(1, -1)
        class_scores[:, c] = -torch.matmul(torch.matmul(tensor, precision), tensor.t()).diag()
    expected = torch.max(class_scores, dim=1)[0].numpy()
    np.testing.assert_allclose(ours(Mahalanobis(), d), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("k", [1, 7, 50])
def test_knn_equals_openood_knn(fitted_data, k: int) -> None:
    d = fitted_data
    normalizer = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True) + 1e-10  # noqa: E731  (OpenOOD's, verbatim)
    bank, queries = normalizer(d["train"]), normalizer(d["test"])
    squared = ((queries[:, None, :] - bank[None, :, :]) ** 2).sum(-1)  # faiss IndexFlatL2: squared L2, exact
    expected = -np.sort(squared, axis=1)[:, k - 1]  # D[:, -1] of a search for K neighbours
    np.testing.assert_allclose(ours(KNN(k), d), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dim", [3, 6, None])
def test_vim_equals_openood_vim(fitted_data, dim: int | None) -> None:
    d = fitted_data
    w, b = d["weight"], d["bias"]
    u = -np.matmul(pinv(w), b)  # VIMPostprocessor.setup
    ec = sklearn.covariance.EmpiricalCovariance(assume_centered=True).fit(d["train"] - u)
    eig_vals, eigen_vectors = np.linalg.eig(ec.covariance_)
    ns = np.ascontiguousarray((eigen_vectors.T[np.argsort(eig_vals * -1)[(dim or DIM // 2):]]).T)
    vlogit_train = norm(np.matmul(d["train"] - u, ns), axis=-1)
    alpha = (d["train"] @ w.T + b).max(axis=-1).mean() / vlogit_train.mean()
    logit_ood = d["test"] @ w.T + b  # postprocess
    expected = -norm(np.matmul(d["test"] - u, ns), axis=-1) * alpha + logsumexp(logit_ood, axis=-1)
    np.testing.assert_allclose(ours(ViM(dim), d), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("percentile", [90, 65.5])
def test_react_equals_openood_react(fitted_data, percentile: float) -> None:
    d = fitted_data
    threshold = np.percentile(d["train"].flatten(), percentile)  # fitted on our training split (OpenOOD: ID val)
    output = np.clip(d["test"], None, threshold) @ d["weight"].T + d["bias"]  # ResNet18_32x32.forward_threshold
    expected = torch.logsumexp(torch.from_numpy(output), dim=1).numpy()
    np.testing.assert_allclose(ours(ReAct(percentile), d), expected, rtol=1e-12)


def test_fitted_score_parameters_are_checked(fitted_data) -> None:
    for name, params in (("knn", {"k": 0}), ("vim", {"dim": 0}), ("react", {"percentile": 0})):
        with pytest.raises(Exception, match=name):
            SCORES.create(name, f"scores.{name}", **params)
    with pytest.raises(ValueError, match="knn: needs at least 500 training images, got 400"):
        ours(KNN(500), fitted_data)
    with pytest.raises(ValueError, match="vim dim must be between 1 and the feature dimension - 1"):
        ours(ViM(DIM), fitted_data)


def test_context_features_are_the_head_input_of_the_one_forward() -> None:
    torch.manual_seed(0)
    dataset = Synthetic(num_classes=4, train_size=64, test_size=40)
    train, test = dataset.load("train"), dataset.load("test")
    model = create_model("tiny", 4, width=4).eval()
    ctx = EvalContext(model=model, dataset=dataset, test=test, device=torch.device("cpu"), batch_size=16, seed=0,
                      run_dir=Path("."), cache_dir=Path("."), channels_last=False)
    seen = []
    model.register_forward_pre_hook(lambda _, inputs: seen.append(len(inputs[0])))
    positions = np.array([3, 0, 17])
    logits, features = ctx.clean_logits(positions), ctx.clean_features(positions)
    assert sum(seen) == 3  # one forward of the three images gives both
    with torch.inference_mode():
        x = ctx.to_float(test.x[positions])
        expected = model[:-1]((x - ctx.mean) / ctx.std)  # everything before the final Linear
    assert features.shape == (3, 16) and torch.equal(features, expected)
    assert torch.equal(logits, ctx.logits(test.x[positions]))  # the hook changes no logit
    seen.clear()
    for name in ("mahalanobis", "knn", "vim", "react"):
        score = SCORES.create(name, name, **({"k": 5} if name == "knn" else {}))
        score.setup(ctx, train)
        standalone = score(ctx, test.x[positions], logits)
        assert np.array_equal(standalone, score.from_features(logits, features)), name
    assert sum(seen) == 64 + 4 * 3  # the training split once for all four; the standalone calls forward
