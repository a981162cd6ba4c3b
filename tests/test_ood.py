"""OOD detection: metrics equal sklearn exactly, scores and sets have their defining properties, the
evaluation runs end to end on the smoke suite and writes the three tables and the ROC figure."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from cutmix_bench.errors import BenchError
from cutmix_bench.evaluations import EVALUATIONS
from cutmix_bench.ood import metrics
from cutmix_bench.ood.scores import SCORES, energy, max_logit, msp, odin
from cutmix_bench.ood.sets import gaussian_noise, load_set, parse_spec, random_crop, resize, uniform_noise

REPO = Path(__file__).resolve().parents[1]
SHAPE = (32, 32, 3)


def data_dir() -> Path:
    root = Path(os.environ.get("CUTMIX_BENCH_DATA", REPO.parent / "shared" / "data"))
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set CUTMIX_BENCH_DATA)")
    return root


# --- metrics against sklearn --------------------------------------------------------------------------------

def sklearn_metrics(ins: np.ndarray, oods: np.ndarray) -> dict[str, float]:
    """The reference: sklearn on labels 1 = in-distribution (paper) or 1 = OOD with negated scores (OpenOOD)."""
    scores = np.r_[ins, oods]
    is_in = np.r_[np.ones(len(ins)), np.zeros(len(oods))]
    fpr_in, tpr_in, _ = sk_roc_curve(is_in, scores, drop_intermediate=False)
    fpr_out, tpr_out, _ = sk_roc_curve(1 - is_in, -scores, drop_intermediate=False)
    return {
        "auroc": roc_auc_score(is_in, scores),
        "aupr_in": average_precision_score(is_in, scores),
        "aupr_out": average_precision_score(1 - is_in, -scores),
        "fpr95": fpr_out[np.argmax(tpr_out >= 0.95)],
        "tnr95": 1 - fpr_in[np.argmax(tpr_in >= 0.95)],
        "detection_acc": np.max(0.5 * (tpr_in + 1 - fpr_in)),
    }


def score_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        ("random", rng.normal(1, 1, 500), rng.normal(0, 1, 300)),
        ("random-unbalanced", rng.random(37), rng.random(1000) * 0.8),
        ("tied-integers", rng.integers(0, 6, 400).astype(float), rng.integers(0, 4, 250).astype(float)),
        ("coarse-ties", np.repeat([0.0, 1.0, 2.0], [5, 30, 65]), np.repeat([0.0, 1.0, 2.0], [40, 40, 20])),
        ("all-equal", np.full(50, 0.3), np.full(80, 0.3)),
        ("perfect", rng.random(100) + 2, rng.random(120)),
        ("reversed", rng.random(100), rng.random(120) + 2),
        ("single", np.array([1.0]), np.array([0.0, 2.0])),
    ]


@pytest.mark.parametrize("name,ins,oods", score_pairs(), ids=[p[0] for p in score_pairs()])
def test_metrics_equal_sklearn(name: str, ins: np.ndarray, oods: np.ndarray) -> None:
    ours, reference = metrics.ood_metrics(ins, oods), sklearn_metrics(ins, oods)
    assert set(ours) == set(metrics.METRICS)
    for key in metrics.METRICS:
        assert ours[key] == pytest.approx(reference[key], abs=1e-12), key


def test_roc_curve_equals_sklearn_without_dropped_points() -> None:
    rng = np.random.default_rng(1)
    ins, oods = rng.integers(0, 20, 300).astype(float), rng.integers(0, 15, 200).astype(float)
    fpr, tpr, thresholds = metrics.roc_curve(ins, oods)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(np.r_[np.ones(300), np.zeros(200)], np.r_[ins, oods],
                                          drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr, atol=1e-15)
    np.testing.assert_allclose(tpr, sk_tpr, atol=1e-15)
    np.testing.assert_array_equal(thresholds[1:], sk_thr[1:])


def test_tpr95_point_is_exact_under_ties_where_dropped_points_would_overstate() -> None:
    # Every threshold holds one in- and one OOD score: the ROC is a diagonal; sklearn's default
    # drop_intermediate=True removes the point at TPR 0.95 and lands on TPR 1 (FPR 1).
    scores = np.arange(20, dtype=float)
    assert metrics.fpr_at_tpr(scores, scores) == pytest.approx(0.95)
    fpr, tpr, _ = sk_roc_curve(np.r_[np.ones(20), np.zeros(20)], np.r_[scores, scores])
    assert fpr[np.argmax(tpr >= 0.95)] == 1.0


def test_degenerate_and_separated_scores() -> None:
    equal = metrics.ood_metrics(np.zeros(10), np.zeros(30))
    assert equal["auroc"] == 0.5 and equal["detection_acc"] == 0.5
    assert equal["tnr95"] == 0.0 and equal["fpr95"] == 1.0
    assert equal["aupr_in"] == pytest.approx(10 / 40) and equal["aupr_out"] == pytest.approx(30 / 40)
    perfect = metrics.ood_metrics(np.array([5.0, 6.0, 7.0]), np.array([1.0, 2.0]))
    assert perfect == {"auroc": 1.0, "aupr_in": 1.0, "aupr_out": 1.0, "fpr95": 0.0, "tnr95": 1.0,
                       "detection_acc": 1.0}
    rng = np.random.default_rng(2)
    same = metrics.ood_metrics(rng.normal(size=20000), rng.normal(size=20000))
    assert abs(same["auroc"] - 0.5) < 0.01 and abs(same["tnr95"] - 0.05) < 0.01


def test_metrics_reject_empty_and_nan() -> None:
    with pytest.raises(ValueError, match="at least one"):
        metrics.ood_metrics(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        metrics.ood_metrics(np.array([np.nan]), np.array([1.0]))


# --- scores ---------------------------------------------------------------------------------------------------

def test_logit_scores() -> None:
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) * 5
    p = msp(logits)
    assert ((p > 0) & (p <= 1)).all() and (p >= 1 / 10).all()
    torch.testing.assert_close(p, torch.softmax(logits, 1).max(1).values)
    assert torch.equal(max_logit(logits), logits.max(1).values)
    torch.testing.assert_close(energy(logits), torch.logsumexp(logits, 1))
    reference = 2.0 * np.log(np.exp(logits.double().numpy() / 2.0).sum(1))
    np.testing.assert_allclose(energy(logits, 2.0).numpy(), reference, rtol=1e-5)


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval()


def test_odin_reduces_to_msp_and_perturbs_towards_confidence() -> None:
    model = tiny_model()
    std = torch.tensor([0.25, 0.5, 0.2]).view(1, 3, 1, 1)

    def forward(x01: torch.Tensor) -> torch.Tensor:
        return model((x01 - 0.5) / std)

    x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = forward(x)
    torch.testing.assert_close(odin(forward, x, temperature=1.0, epsilon=0.0), msp(logits))
    torch.testing.assert_close(odin(forward, x, temperature=7.0, epsilon=0.0), msp(logits / 7.0))
    # A small step along the sign of the gradient raises the tempered max softmax of every image.
    assert (odin(forward, x, temperature=7.0, epsilon=1e-3) > msp(logits / 7.0)).all()
    # The step is epsilon per [0, 1] pixel, i.e. epsilon / std per channel on normalised inputs (reference code).
    x_req = x.clone().requires_grad_(True)
    forward(x_req).div(7.0).log_softmax(1).max(1).values.sum().backward()
    stepped = x + 1e-3 * torch.where(x_req.grad > 0, 1.0, -1.0)
    with torch.no_grad():
        torch.testing.assert_close(odin(forward, x, 7.0, 1e-3), msp(forward(stepped) / 7.0))


def test_odin_moves_zero_gradient_pixels_by_minus_epsilon() -> None:
    """The original ODIN code and OpenOOD: sign = torch.ge(grad of the cross entropy, 0) mapped to {-1, +1},
    x' = x - epsilon * sign, so a pixel the logits do not depend on moves by -epsilon."""
    weight = torch.randn(3 * 4 * 4, 5, generator=torch.Generator().manual_seed(2))
    seen = []

    def forward(x01: torch.Tensor) -> torch.Tensor:
        seen.append(x01.detach().clone())
        return x01[:, :, :4, :4].flatten(1) @ weight  # the rest of the 8 x 8 image has zero gradient

    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    odin(forward, x, temperature=10.0, epsilon=0.01)
    step = seen[-1] - x
    outside = torch.ones(8, 8, dtype=torch.bool)
    outside[:4, :4] = False
    torch.testing.assert_close(step[:, :, outside], torch.full_like(step[:, :, outside], -0.01))
    assert (step[:, :, :4, :4].abs() - 0.01).abs().max() < 1e-6


def test_score_registry_validates_parameters() -> None:
    assert {"msp", "maxlogit", "energy", "odin"} <= set(SCORES.names())
    with pytest.raises(BenchError, match="scores.odin.eps"):
        SCORES.create("odin", "scores.odin", eps=0.1)
    with pytest.raises(BenchError, match="temperature"):
        SCORES.create("odin", "scores.odin", temperature=0)


# --- sets -----------------------------------------------------------------------------------------------------

def test_noise_sets_are_seeded_and_distributed_as_specified() -> None:
    gauss, uniform = gaussian_noise(300, SHAPE, seed=3), uniform_noise(300, SHAPE, seed=3)
    assert gauss.dtype == torch.uint8 and gauss.shape == (300, *SHAPE)
    assert torch.equal(gauss, gaussian_noise(300, SHAPE, seed=3)) and torch.equal(uniform, uniform_noise(300, SHAPE, 3))
    assert not torch.equal(gauss, gaussian_noise(300, SHAPE, seed=4))
    levels = np.arange(256)
    # Exact distribution of the uint8 levels: rint(255 * clip(N(0.5, 1), 0, 1)) and rint(255 * U(0, 1)).
    edges = np.clip((levels + 0.5) / 255, 0, 1)
    gauss_cdf = np.where(levels == 255, 1.0, stats.norm.cdf(edges, loc=0.5, scale=1.0))
    uniform_cdf = np.where(levels == 255, 1.0, edges)
    for sample, cdf in ((gauss, gauss_cdf), (uniform, uniform_cdf)):
        counts = np.bincount(sample.numpy().ravel(), minlength=256)
        empirical = np.cumsum(counts) / counts.sum()
        assert np.abs(empirical - cdf).max() < 0.004  # KS bound for 921,600 pixels is ~0.0014 at 1%
    assert abs((gauss.numpy() == 0).mean() - stats.norm.cdf(-0.5 + 0.5 / 255)) < 0.003


def test_crop_and_resize_variants() -> None:
    images = torch.arange(2 * 64 * 64 * 3).remainder(251).to(torch.uint8).view(2, 64, 64, 3)
    crops = random_crop(images, 32, 32, seed=0)
    assert torch.equal(crops, random_crop(images, 32, 32, seed=0))
    top, left = np.random.default_rng(0).integers(0, 33, 2), np.random.default_rng(0).integers(0, 33, 4)[2:]
    for i in range(2):
        assert torch.equal(crops[i], images[i, top[i]:top[i] + 32, left[i]:left[i] + 32])
    blocks = torch.randint(0, 256, (3, 16, 16, 3), dtype=torch.uint8)
    upsampled = blocks.repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert torch.equal(resize(upsampled, 16, 16), blocks)  # 2x2-constant blocks shrink back exactly


def test_dataset_sets_skip_missing_roots_with_a_note(tmp_path: Path) -> None:
    spec = parse_spec({"name": "cifar10", "root": str(tmp_path / "absent")}, "near[0]")
    skipped = load_set(spec, SHAPE, 100)
    assert skipped.images is None and "not found" in skipped.note
    assert "no ood_root" in load_set(parse_spec("svhn", "far[0]"), SHAPE, 100).note
    empty = tmp_path / "empty"
    empty.mkdir()
    unreadable = load_set(parse_spec({"name": "imagedir", "root": str(empty)}, "far[0]"), SHAPE, 100)
    assert unreadable.images is None and "no image files" in unreadable.note


def test_set_specs_are_validated() -> None:
    with pytest.raises(ValueError, match=r"near\[0\].name: unknown OOD set 'cifar11'"):
        parse_spec("cifar11", "near[0]")
    with pytest.raises(ValueError, match=r"far\[1\].variant"):
        parse_spec({"name": "svhn", "variant": "zoom"}, "far[1]")
    with pytest.raises(ValueError, match=r"far\[0\].colour: unknown key"):
        parse_spec({"name": "gaussian", "colour": 1}, "far[0]")
    with pytest.raises(ValueError, match=r"near\[0\].params.depth: unknown parameter"):
        parse_spec({"name": "tinyimagenet", "params": {"depth": 3}}, "near[0]")
    with pytest.raises(ValueError, match=r"far\[0\].root: the dataset 'synthetic' reads no files"):
        parse_spec({"name": "synthetic", "root": "/x"}, "far[0]")
    with pytest.raises(ValueError, match=r"far\[0\].params.root: give the root as far\[0\].root"):
        parse_spec({"name": "svhn", "params": {"root": "/x"}}, "far[0]")
    assert parse_spec({"name": "tinyimagenet", "variant": "crop"}, "k").label == "tinyimagenet-crop"
    with pytest.raises(BenchError, match=r"evaluations.ood: near\[0\].name: unknown OOD set"):
        EVALUATIONS.create("ood", "evaluations.ood", near=["lsun"])
    with pytest.raises(BenchError, match="appears twice"):
        EVALUATIONS.create("ood", "evaluations.ood", near=["gaussian"], far=["gaussian"])
    with pytest.raises(BenchError, match="evaluations.ood: scores.odin.eps: unknown parameter"):
        EVALUATIONS.create("ood", "evaluations.ood", scores=["msp", {"odin": {"eps": 1}}])


def write_images(folder: Path, count: int, side: int, seed: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_flat_and_class_folders_with_variants(tmp_path: Path) -> None:
    write_images(tmp_path / "flat", 3, 48, seed=0)
    write_images(tmp_path / "tree" / "b", 2, 40, seed=1)
    write_images(tmp_path / "tree" / "a", 2, 40, seed=2)
    flat = load_set(parse_spec({"name": "imagedir", "root": str(tmp_path / "flat")}, "k"), SHAPE, 10)
    assert flat.images is not None and flat.images.shape == (3, *SHAPE)
    from cutmix_bench.data import create_dataset

    tree = create_dataset("imagedir", root=str(tmp_path / "tree"))
    assert tree.num_classes == 2 and tree.load("test").y.tolist() == [0, 0, 1, 1]
    big = {"name": "imagedir", "root": str(tmp_path / "flat"), "params": {"size": 48}}
    assert "set variant crop or resize" in load_set(parse_spec(big, "k"), SHAPE, 10).note
    for variant in ("crop", "resize"):
        assert load_set(parse_spec({**big, "variant": variant}, "k"), SHAPE, 10).images.shape == (3, *SHAPE)


def test_svhn_mat_and_tinyimagenet_tree(tmp_path: Path) -> None:
    from scipy.io import savemat

    from cutmix_bench.data import create_dataset

    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 5), dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": np.array([[10], [1], [2], [10], [9]])})
    svhn = create_dataset("svhn", root=str(tmp_path)).load("test")
    assert svhn.y.tolist() == [0, 1, 2, 0, 9] and torch.equal(svhn.x[1], torch.from_numpy(x[..., 1]))

    root = tmp_path / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("n01\nn02\n")
    write_images(root / "train" / "n02" / "images", 2, 64, seed=3)
    write_images(root / "val" / "images", 3, 64, seed=4)
    (root / "val" / "val_annotations.txt").write_text("0.png\tn02\t0\n1.png\tn01\t0\n2.png\tn02\t0\n")
    tiny = create_dataset("tinyimagenet", root=str(root))
    assert tiny.load("test").y.tolist() == [1, 0, 1] and tiny.load("test").x.shape == (3, 64, 64, 3)
    assert tiny.load("train").y.tolist() == [1, 1]
    resized = load_set(parse_spec({"name": "tinyimagenet", "root": str(root), "variant": "resize"}, "k"), SHAPE, 9)
    assert resized.images.shape == (3, *SHAPE)


def test_shared_near_sets_load(tmp_path: Path) -> None:
    root = data_dir()
    for spec, name in (({"name": "cifar10", "size": 50}, "cifar10"), ({"name": "tinyimagenet", "size": 50},
                                                                       "tinyimagenet32")):
        loaded = load_set(parse_spec({**spec, "root": str(root / name)}, "k"), SHAPE, 1000)
        assert loaded.images.shape == (50, *SHAPE) and loaded.images.dtype == torch.uint8


# --- end to end -----------------------------------------------------------------------------------------------

def test_smoke_suite_end_to_end(tmp_path: Path) -> None:
    from cutmix_bench.runner import run_suite
    from cutmix_bench.suite_file import load_suite

    ood = ("{near: [{name: synthetic, label: other-synthetic, params: {seed: 7, train_size: 10, test_size: 300}}], "
           f"far: [gaussian, uniform, {{name: svhn, root: {tmp_path / 'no-svhn'}}}], "
           "scores: [msp, maxlogit, energy, {odin: {temperature: 1000, epsilon: 0.0014}}], max_images: 300}")
    suite = load_suite(REPO / "suites" / "smoke.yaml", [
        "seeds=[0]", "methods={baseline: {}, cutmix: {alpha: 1.0}}", "jobs=1",
        f"evaluations={{clean: {{}}, ood: {ood}}}", f"output_dir={tmp_path / 'out'}"])
    assert suite.evaluations["ood"]["far"][2]["root"] == str(tmp_path / "no-svhn")
    out, failures = run_suite(suite)
    assert not failures
    import pandas as pd

    rows = pd.read_csv(out / "results.csv")
    ood_rows = rows[rows["evaluation"] == "ood"]
    auroc = ood_rows[(ood_rows["metric"] == "auroc") & (ood_rows["subset"] == "uniform")]
    # The smoke schedule's tiny CNN: every score is well above chance (50) against uniform noise (an
    # undertrained one is not: it is more confident on noise than on its own noisy classes).
    assert len(auroc) == 2 * 4 and (auroc["value"] > 65).all(), auroc[["method", "score", "value"]]
    skipped = ood_rows[ood_rows["metric"] == "skipped"]
    assert skipped["subset"].tolist() == ["svhn", "svhn"] and skipped["note"].str.contains("not found").all()
    saved = np.load(out / "runs" / "baseline-s0" / "ood_scores.npz")
    assert saved["in__msp"].shape == (300,) and saved["uniform__odin"].shape == (300,)
    recomputed = metrics.ood_metrics(saved["in__msp"], saved["gaussian__msp"])["auroc"] * 100
    stored = ood_rows[(ood_rows["run"] == "baseline-s0") & (ood_rows["subset"] == "gaussian")
                      & (ood_rows["score"] == "msp") & (ood_rows["metric"] == "auroc")]["value"]
    assert stored.item() == pytest.approx(recomputed)
    report = (out / "report.md").read_text()
    for heading in ("### Paper protocol (MSP detector", "### OpenOOD v1.5 protocol", "### Per-set results"):
        assert heading in report
    assert "**Skipped sets**" in report and "figures/ood_roc.png" in report
    assert (out / "figures" / "ood_roc.png").stat().st_size > 1000


# --- defaults, paths and report aggregation -------------------------------------------------------------------

def write_npz(folder: Path, n: int, classes: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    np.savez(folder / "test.npz", x=rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8), y=np.arange(n) % classes)


def test_default_sets_are_found_next_to_the_data_root(tmp_path: Path) -> None:
    from cutmix_bench.data import create_dataset
    from cutmix_bench.evaluations import EvalContext

    write_npz(tmp_path / "cifar100", 40, 100, seed=0)
    write_npz(tmp_path / "cifar10", 30, 10, seed=1)
    dataset = create_dataset("cifar100", root=str(tmp_path / "cifar100"))
    ctx = EvalContext(model=tiny_model(), dataset=dataset, test=dataset.load("test"), device=torch.device("cpu"),
                      batch_size=16, seed=0, run_dir=tmp_path, cache_dir=tmp_path, channels_last=False)
    rows = EVALUATIONS.create("ood", "evaluations.ood", scores=["msp"]).run(ctx)
    counts = {r["subset"]: r["value"] for r in rows if r["metric"] == "n_images"}
    assert counts == {"cifar10": 30, "gaussian": 40, "uniform": 40}
    skipped = {r["subset"]: (r["group"], r["note"]) for r in rows if r["metric"] == "skipped"}
    assert skipped == {"tinyimagenet": ("near", f"{tmp_path / 'tinyimagenet32'} not found"),
                       "svhn": ("far", f"{tmp_path / 'svhn'} not found"),
                       "textures": ("far", f"{tmp_path / 'textures'} not found"),
                       "places365": ("far", f"{tmp_path / 'places365'} not found")}
    assert {r["group"] for r in rows if r["subset"] == "cifar10"} == {"near"}
    with np.load(tmp_path / "ood_scores.npz") as saved:
        assert sorted(saved.files) == ["cifar10__msp", "gaussian__msp", "in__msp", "uniform__msp"]


def test_set_roots_inside_lists_are_resolved_against_the_suite_file(tmp_path: Path) -> None:
    from cutmix_bench.suite_file import load_suite

    suite_file = tmp_path / "suites" / "s.yaml"
    suite_file.parent.mkdir()
    smoke = (REPO / "suites" / "smoke.yaml").read_text()
    text = smoke[:smoke.index("evaluations:")] + (
        "evaluations:\n  ood: {near: [{name: cifar10, root: ../data/c10}], far: [uniform], ood_root: x}\n")
    suite_file.write_text(text)
    suite = load_suite(suite_file)
    assert suite.evaluations["ood"]["near"][0]["root"] == str(tmp_path / "suites" / "../data/c10")
    assert suite.evaluations["ood"]["ood_root"] == str(tmp_path / "suites" / "x")


def test_report_averages_sets_per_run_then_seeds(tmp_path: Path) -> None:
    import pandas as pd

    from cutmix_bench.evaluations import ReportContext

    rows = []
    for seed, (near, far) in enumerate([(80.0, 90.0), (70.0, 80.0)]):
        for subset, group, value in (("c10", "near", near), ("noise", "far", far)):
            rows += [{"run": f"cutmix-s{seed}", "method": "cutmix", "seed": seed, "metric": metric, "value": value,
                      "subset": subset, "group": group, "score": "msp", "note": ""} for metric in metrics.METRICS]
    rows.append({"run": "cutmix-s0", "method": "cutmix", "seed": 0, "metric": "skipped", "value": float("nan"),
                 "subset": "svhn", "group": "far", "score": "", "note": "/x/svhn not found"})
    ctx = ReportContext(out_dir=tmp_path, figures_dir=tmp_path / "figures", methods=["cutmix"])
    text = EVALUATIONS.get("ood").report(pd.DataFrame(rows), ctx)
    paper = text.split("### Paper protocol")[1].split("###")[0]
    assert "| CutMix   | 80.00 ± 7.07" in paper  # run means 85 and 75 -> 80 ± 7.07 over seeds
    openood = text.split("### OpenOOD")[1].split("### Per-set")[0]
    assert "| CutMix   | 75.00 ± 7.07 | 85.00 ± 7.07 |" in openood  # near, far columns of MSP
    assert "`svhn` (far): …/x/svhn not found" in text  # the note, without the machine's absolute path
    assert "figures/ood_roc.png" not in text  # no saved scores -> no figure, no broken link
