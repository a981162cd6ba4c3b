"""The evaluation engine: across every evaluation of a suite, no clean test image is forwarded twice for one
model (counted by a hook on the model itself), and the numbers are identical to the engine without sharing."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cutmix_bench import components as components_module
from cutmix_bench import evaluating, runner
from cutmix_bench.evaluations import EvalContext
from cutmix_bench.evaluations.engine import CleanLogits, union
from cutmix_bench.models import create_model
from cutmix_bench.rundir import RunDir, output_dir, suite_runs
from cutmix_bench.suite_data import load_data
from cutmix_bench.suite_file import load_suite

from helpers import REPO, documented_units, tiny_suite

EVALUATIONS = {  # every evaluation, at reduced counts; subsets of the test split where they have a budget
    "clean": {},
    "corruptions": {"corruptions": ["gaussian_noise", "contrast"], "severities": [1, 5], "max_images": 100},
    "occlusion": {"max_images": 100},
    "inbetween": {"pairs": 80},
    "adversarial": {"max_images": 60, "pgd_steps": 2},
    "ood": {"near": [{"name": "synthetic", "label": "other", "params": {"seed": 7, "train_size": 10,
                                                                        "test_size": 256}}], "far": ["gaussian"],
            "scores": ["msp", "energy", "mahalanobis", {"knn": {"k": 10}}, "vim", "react"]},  # fitted: no 2nd forward
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One trained run (tiny CNN, 256 test images, eval batch 64) without any evaluation yet."""
    tmp = tmp_path_factory.mktemp("engine")
    data = {"name": "synthetic", "params": {"num_classes": 4, "train_size": 600, "test_size": 256},
            "train_subset": 512}  # 88 training images held out: corruptions' temperature scaling fits on them
    suite = load_suite(tiny_suite(tmp, methods={"baseline": {}}, eval_batch_size=64, data=data,
                                  evaluations={"clean": {}}))
    runner.run_suite(suite)
    folder = RunDir.of(output_dir(suite), suite_runs(suite)[0])
    for stale in [*folder.path.glob("eval/*"), folder.metrics, folder.done]:
        stale.unlink()
    return tmp, suite.model_copy(update={"evaluations": EVALUATIONS})


def evaluate(trained: tuple[Path, object], name: str, share: bool, monkeypatch: pytest.MonkeyPatch
             ) -> tuple[RunDir, list[tuple[bytes, bool]]]:
    """Evaluate a copy of the trained run; every input row the model saw, with its grad mode."""
    tmp, suite = trained
    source = RunDir.of(output_dir(suite), suite_runs(suite)[0])
    folder = RunDir(tmp / name / source.path.name)
    shutil.copytree(source.path, folder.path)
    seen: list[tuple[bytes, bool]] = []

    def counted(*args, **kwargs) -> torch.nn.Module:
        model = create_model(*args, **kwargs)
        model.register_forward_pre_hook(lambda _, inputs: seen.extend(
            (row.numpy().tobytes(), torch.is_grad_enabled()) for row in inputs[0].detach().contiguous().cpu()))
        return model

    monkeypatch.setattr(components_module, "create_model", counted)  # the factory the runner calls
    torch.set_num_threads(1)
    run = suite_runs(suite)[0]
    evaluating.evaluate_run(suite, run, load_data(suite), torch.device("cpu"), folder, tmp / name / "cache", share)
    return folder, seen


def clean_rows(suite: object) -> list[bytes]:
    """The model inputs of the clean test images, normalised as `EvalContext.forward` does."""
    dataset, _, test = load_data(suite)
    ctx = EvalContext(model=torch.nn.Identity(), dataset=dataset, test=test, device=torch.device("cpu"),
                      batch_size=64, seed=0, run_dir=Path("."), cache_dir=Path("."))
    x = (ctx.to_float(test.x) - ctx.mean) / ctx.std
    return [row.numpy().tobytes() for row in x.contiguous()]


def test_no_clean_image_is_forwarded_twice_and_results_are_identical(trained, monkeypatch) -> None:
    shared, seen = evaluate(trained, "shared", True, monkeypatch)
    unshared, seen_before = evaluate(trained, "unshared", False, monkeypatch)
    clean = set(clean_rows(trained[1]))
    assert len(clean) == 256
    inference = Counter(row for row, grad in seen if not grad and row in clean)
    assert set(inference) == clean and set(inference.values()) == {1}  # every clean image exactly once
    before = Counter(row for row, grad in seen_before if not grad and row in clean)
    assert sum(before.values()) > 2.5 * len(clean)  # without sharing: the clean pass, OOD, corruptions, ...
    # Gradients: FGSM's epsilons share one per scored image (4 before); PGD starts off the clean images.
    gradient = Counter(row for row, grad in seen if grad and row in clean)
    assert len(gradient) == 60 and set(gradient.values()) == {1}
    assert set(Counter(row for row, grad in seen_before if grad and row in clean).values()) == {4}
    assert len(seen) < len(seen_before)
    documented = documented_units()
    for label in EVALUATIONS:
        assert shared.eval_file(label).read_bytes() == unshared.eval_file(label).read_bytes(), label
        rows = pd.read_csv(shared.eval_file(label), keep_default_na=False)  # every emitted metric: unit as documented
        assert rows["unit"].tolist() == [documented.get((label, metric)) for metric in rows["metric"]], label
    temperature = pd.read_csv(shared.eval_file("corruptions")).query("metric == 'temperature'")
    assert temperature["n"].tolist() == [88] and 0.05 < temperature["value"].item() < 20


def test_clean_logits_forward_each_position_once_in_the_planned_batches() -> None:
    images = torch.arange(10)
    calls: list[list[int]] = []

    def logits(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(batch.tolist())
        return torch.stack([batch.float(), -batch.float()], 1), 10 * batch.float()[:, None]

    cache = CleanLogits(images, logits)
    cache.plan(union([np.array([7, 2, 7]), np.array([5])], 10))
    assert calls == []  # lazy
    assert cache(np.array([5, 2, 5])).tolist() == [[5, -5], [2, -2], [5, -5]]
    assert cache.features(np.array([2, 5])).tolist() == [[20], [50]]  # the same pass
    assert calls == [[2, 5, 7]]  # the planned union, sorted, at once
    assert cache(np.array([7])).tolist() == [[7, -7]] and len(calls) == 1
    assert cache(np.array([9, 0, 7, 9])).tolist() == [[9, -9], [0, 0], [7, -7], [9, -9]]
    assert calls[1] == [0, 9]  # only the missing ones
    full = CleanLogits(images, logits)
    full.plan(union([None, np.array([3])], 10))
    assert full().tolist() == [[i, -i] for i in range(10)] and calls[2] == list(range(10))
    assert CleanLogits(images, logits)(np.empty(0, dtype=np.int64)).shape == (0, 0)


@pytest.mark.parametrize("name", ["tiny", "resnet8"])
def test_a_row_of_logits_does_not_depend_on_the_other_images_of_its_batch(name: str) -> None:
    """What makes the shared logits identical to an evaluation's own pass over its subset (engine.py), at
    batches of 64 and more (smaller batches may take other kernels)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = create_model(name, 10).eval().to(memory_format=torch.channels_last)
    x = torch.rand(300, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    order = torch.randperm(300)
    with torch.inference_mode():
        canonical = torch.cat([model(x[i:i + 128]) for i in range(0, 300, 128)])
        shuffled = torch.cat([model(x[order[i:i + 64]]) for i in range(0, 256, 64)])
    assert torch.equal(canonical[order[:256]], shuffled)


def test_eval_engine_benchmark_runs_quick(capsys: pytest.CaptureFixture) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    threads = torch.get_num_threads()
    try:
        results = {r.label: r.value for r in importlib.import_module("eval_engine").main(["--quick"])}
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(REPO / "benchmarks"))
    assert set(results) == {"eval_engine.engine_vs_pure_inference", "eval_engine.before_vs_pure_inference",
                            "eval_engine.speedup_vs_before", "eval_engine.forward_rows_saved_share",
                            "eval_engine.engine_seconds"}
    assert 0.1 < results["eval_engine.forward_rows_saved_share"] < 0.5  # counted by the hook: the engine forwards less
    out = capsys.readouterr().out
    for label in EVALUATIONS:
        assert f"\n   {label:<12} " in out  # one profile line per evaluation


@pytest.mark.slow
def test_eval_compile_gives_the_same_predictions(trained, monkeypatch) -> None:
    """`eval_compile: true` (torch.compile): the logits may move in the last bits, the predictions do not."""
    tmp, suite = trained
    eager, _ = evaluate(trained, "eager", True, monkeypatch)
    evaluations = {label: EVALUATIONS[label] for label in ("clean", "occlusion")}
    compiled_suite = suite.model_copy(update={"eval_compile": True, "evaluations": evaluations})
    compiled, _ = evaluate((tmp, compiled_suite), "compiled", True, monkeypatch)
    for label in ("clean", "occlusion"):
        a, b = (pd.read_csv(folder.eval_file(label)) for folder in (eager, compiled))
        errors = a["metric"].str.endswith("_err")
        assert a[errors]["value"].tolist() == b[errors]["value"].tolist(), label
        assert np.allclose(a["value"], b["value"], rtol=1e-5, atol=1e-6), label


USER_MAHALANOBIS = '''"""A user's Mahalanobis score in the user's own file: a FeatureScore gets the cached features."""
import numpy as np

from cutmix_bench.ood.fitted import FeatureScore
from cutmix_bench.ood.scores import SCORES


@SCORES.register("user_mahalanobis")
class UserMahalanobis(FeatureScore):
    """Class means and the shared maximum-likelihood covariance of the training features (Lee et al. 2018)."""

    def fit(self, features, labels, weight, bias):
        classes = np.unique(labels)
        self.means = np.stack([features[labels == c].mean(0) for c in classes])
        centred = features - self.means[np.searchsorted(classes, labels)]
        self.precision = np.linalg.pinv(centred.T @ centred / len(centred))

    def from_features(self, logits, features):
        f = features.double().numpy()[:, None, :] - self.means[None]
        return -np.einsum("nci,ij,ncj->nc", f, self.precision, f).min(1)
'''


def test_a_plugin_feature_score_costs_no_forward_pass_of_its_own(trained, monkeypatch, tmp_path: Path) -> None:
    """A Mahalanobis score written as a plug-in (a .py file outside the package) is fitted and scored on the cached
    penultimate features: with it, every image (the training split it fits on, the test split, each OOD set) is
    forwarded exactly once, and its AUROCs equal the built-in `mahalanobis`."""
    from cutmix_bench.plugins import load_plugins

    (tmp_path / "user_scores.py").write_text(USER_MAHALANOBIS)
    load_plugins([str(tmp_path / "user_scores.py")])
    tmp, suite = trained
    ood = {name: {**EVALUATIONS["ood"], "scores": scores} for name, scores in
           {"logit_only": ["msp"], "plugin": ["msp", "user_mahalanobis", "mahalanobis"]}.items()}
    seen = {}
    for name, config in ood.items():
        folder, rows = evaluate((tmp, suite.model_copy(update={"evaluations": {"ood": config}})), name, True,
                                monkeypatch)
        seen[name] = Counter(row for row, grad in rows if not grad)
    train_rows = len(load_data(suite)[1].x)
    assert set(seen["plugin"].values()) == {1}  # no image twice, the fitted scores' own included
    assert sum(seen["plugin"].values()) == sum(seen["logit_only"].values()) + train_rows  # + one pass over training
    results = pd.read_csv(folder.eval_file("ood"))
    by_score = {score: rows.set_index(["subset", "group", "metric"])["value"] for score, rows in
                results.groupby("score")}
    pd.testing.assert_series_equal(by_score["user_mahalanobis"], by_score["mahalanobis"], check_names=False,
                                   rtol=1e-9)
    assert {"auroc", "fpr95"} <= set(by_score["mahalanobis"].index.get_level_values("metric"))
