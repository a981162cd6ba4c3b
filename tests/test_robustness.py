"""Occlusion, in-between class and adversarial evaluations: exact geometry, exact mixing, attack
constraints, agreement with the clean evaluation, determinism, and the report end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from cutmix_bench.data.synthetic import Synthetic
from cutmix_bench.errors import BenchError
from cutmix_bench.evaluations import EVALUATIONS, EvalContext
from cutmix_bench.evaluations.clean import classification_metrics
from cutmix_bench.models import create_model
from cutmix_bench.robustness.attacks import fgsm, pgd
from cutmix_bench.robustness.inbetween import different_class_pairs, mix, paste_centre, prediction_rates
from cutmix_bench.robustness.occlusion import centred_bounds, centred_mask, default_sizes, normalised_auc, occlude
from cutmix_bench.runner import run_suite
from cutmix_bench.suite_file import load_suite

SIDE = 16


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> EvalContext:
    """A tiny CNN trained for a few seconds on 16x16 synthetic data (4 classes), in eval mode."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = Synthetic(num_classes=4, train_size=800, test_size=200, size=SIDE, separation=0.5, seed=0)  # easy
    train, test = data.load("train"), data.load("test")
    model = create_model("tiny", data.num_classes, width=8)
    mean, std = torch.tensor(data.mean).view(1, -1, 1, 1), torch.tensor(data.std).view(1, -1, 1, 1)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        for index in torch.randperm(len(train), generator=generator).split(50):
            x = (train.x[index].permute(0, 3, 1, 2).float() / 255 - mean) / std
            loss = F.cross_entropy(model(x), train.y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.zero_grad(set_to_none=True)
    folder = tmp_path_factory.mktemp("ctx")
    return EvalContext(model=model.eval(), dataset=data, test=test, device=torch.device("cpu"), batch_size=64,
                       seed=0, run_dir=folder, cache_dir=folder, channels_last=False)


def frame(rows: list[dict]) -> pd.DataFrame:
    result = pd.DataFrame(rows)
    result["level"] = result["level"].astype(float)
    return result


def value(rows: pd.DataFrame, metric: str, subset: str, level: float) -> float:
    selected = rows[(rows["metric"] == metric) & (rows["subset"] == subset) & (rows["level"] == level)]
    assert len(selected) == 1
    return float(selected["value"].iloc[0])


# --- occlusion geometry -------------------------------------------------------------------------------

@pytest.mark.parametrize(("height", "width", "size", "expected"), [
    (32, 32, 4, (14, 18, 14, 18)),    # even image, even s: 14 rows above and below
    (32, 32, 5, (13, 18, 13, 18)),    # even image, odd s: 13 above, 14 below (half a pixel up-left)
    (31, 31, 5, (13, 18, 13, 18)),    # odd image, odd s: 13 above and below
    (31, 31, 4, (13, 17, 13, 17)),    # odd image, even s: 13 above, 14 below
    (7, 10, 3, (2, 5, 3, 6)),         # rectangular
    (32, 32, 0, (16, 16, 16, 16)),    # empty
    (32, 32, 32, (0, 32, 0, 32)),     # whole image
    (8, 12, 12, (0, 8, 0, 12)),       # larger than the height: clipped
])
def test_centred_square_position(height: int, width: int, size: int, expected: tuple[int, ...]) -> None:
    assert centred_bounds(size, height, width) == expected
    mask = centred_mask(size, height, width)
    rows, cols = mask.any(1).nonzero().flatten().tolist(), mask.any(0).nonzero().flatten().tolist()
    y0, y1, x0, x1 = expected
    assert rows == list(range(y0, y1)) and cols == list(range(x0, x1))
    assert int(mask.sum()) == (y1 - y0) * (x1 - x0)


@pytest.mark.parametrize(("side", "size"), [(32, 0), (32, 5), (32, 16), (31, 4), (31, 7), (31, 31), (32, 32)])
def test_occlusion_fills_exactly_the_stated_area(side: int, size: int) -> None:
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    fill = torch.tensor([-1.0, -2.0, -3.0])  # outside [0, 1], so filled pixels are recognisable
    for mode, area in (("centre", size * size), ("boundary", side * side - size * size)):
        out = occlude(x, size, mode, fill)
        filled = out == fill.view(1, -1, 1, 1)
        assert int(filled[:, 0].sum()) == 2 * area
        assert torch.equal(filled[:, 0], filled[:, 1]) and torch.equal(filled[:, 0], filled[:, 2])
        assert torch.equal(out[~filled], x[~filled])
        inside = centred_mask(size, side, side)
        assert torch.equal(filled[0, 0], inside if mode == "centre" else ~inside)


def test_default_sizes_and_auc() -> None:
    assert default_sizes(32) == [0, 4, 8, 12, 16, 20, 24, 28, 32]
    assert default_sizes(64)[:3] == [0, 8, 16] and default_sizes(64)[-1] == 64
    assert normalised_auc([0, 16, 32], [30.0, 30.0, 30.0], 32) == pytest.approx(30.0)
    assert normalised_auc([0, 8, 32], [0.0, 25.0, 100.0], 32) == pytest.approx(50.0)  # linear: mean of ends
    sizes, errors = [0, 4, 12, 32], [10.0, 20.0, 60.0, 90.0]
    assert normalised_auc(sizes, errors, 32) == pytest.approx(np.trapezoid(errors, np.array(sizes) / 32))
    assert normalised_auc([8, 16], [20.0, 40.0], 32) == pytest.approx(30.0)  # divided by the span 0.25
    with pytest.raises(ValueError):
        normalised_auc([8], [1.0], 32)


def test_occlusion_zero_size_is_the_clean_error(ctx: EvalContext) -> None:
    clean = classification_metrics(ctx.logits(ctx.test.x), ctx.test.y)["top1_err"]
    rows = frame(EVALUATIONS.create("occlusion", sizes=[SIDE, 0, 5, 8]).run(ctx))
    one_image = 100 / len(ctx.test)
    assert value(rows, "top1_err", "centre", 0) == pytest.approx(clean, abs=one_image / 100)
    assert value(rows, "top1_err", "boundary", SIDE) == pytest.approx(clean, abs=one_image / 100)
    assert value(rows, "top1_err", "centre", SIDE) > clean + 10  # the whole image grey: near chance (75%)
    assert sorted(rows["level"].dropna().unique()) == [0, 5, 8, SIDE]
    auc = rows[rows["metric"] == "auc_err"].set_index("subset")["value"]
    centre = rows[(rows["metric"] == "top1_err") & (rows["subset"] == "centre")].sort_values("level")
    assert auc["centre"] == pytest.approx(normalised_auc(centre["level"], centre["value"], SIDE))
    assert (rows["setting"] == f"fill dataset mean colour; {len(ctx.test)} test images").all()
    assert rows.equals(frame(EVALUATIONS.create("occlusion", sizes=[0, 5, 8, SIDE]).run(ctx)))  # deterministic


def test_occlusion_fill_value_and_subset(ctx: EvalContext) -> None:
    mean_fill = frame(EVALUATIONS.create("occlusion", sizes=[0, SIDE], max_images=50).run(ctx))
    black = frame(EVALUATIONS.create("occlusion", sizes=[0, SIDE], fill=0, max_images=50).run(ctx))
    assert "50 test images" in mean_fill["setting"].iloc[0] and "grey 0 on [0, 1]" in black["setting"].iloc[0]
    assert value(mean_fill, "top1_err", "centre", 0) == value(black, "top1_err", "centre", 0)
    # A whole image of one colour gets one prediction, so the error is the share of the other classes.
    labels = ctx.test.subset(50, 0).y
    for rows, colour in ((mean_fill, ctx.mean.view(1, 3, 1, 1)), (black, torch.zeros(1, 3, 1, 1))):
        predicted = int(ctx.forward(colour.expand(1, 3, SIDE, SIDE)).argmax(1))
        expected = 100 * float((labels != predicted).float().mean())
        assert value(rows, "top1_err", "centre", SIDE) == pytest.approx(expected)


@pytest.mark.parametrize("params", [{"fill": "red"}, {"fill": 1.5}, {"fill": True}, {"sizes": [4, -1]},
                                    {"sizes": []}, {"max_images": 0}])
def test_occlusion_rejects_bad_parameters(params: dict) -> None:
    with pytest.raises(BenchError, match="evaluations.occlusion"):
        EVALUATIONS.create("occlusion", "evaluations.occlusion", **params)


def test_occlusion_size_larger_than_image(ctx: EvalContext) -> None:
    with pytest.raises(BenchError, match="evaluations.occlusion.sizes: 40 is larger than the image side 16"):
        EVALUATIONS.create("occlusion", sizes=[0, 40]).run(ctx)


# --- in-between class ---------------------------------------------------------------------------------

def test_pairs_are_of_different_classes_and_seeded() -> None:
    labels = np.repeat(np.arange(5), 20)  # grouped by class, as in the shared files
    a, b = different_class_pairs(labels, 500, seed=3)
    assert len(a) == len(b) == 500 and (labels[a] != labels[b]).all()
    again = different_class_pairs(labels, 500, seed=3)
    assert np.array_equal(a, again[0]) and np.array_equal(b, again[1])
    other = different_class_pairs(labels, 500, seed=4)
    assert not np.array_equal(a, other[0])
    assert len(np.unique(labels[b])) == 5 and len(np.unique(a)) > 90  # spread over images and classes
    with pytest.raises(ValueError, match="two classes"):
        different_class_pairs(np.zeros(10, dtype=int), 5, seed=0)


def test_mixup_inputs_are_exact_convex_combinations() -> None:
    generator = torch.Generator().manual_seed(0)
    x_a, x_b = torch.rand(3, 3, 9, 9, generator=generator), torch.rand(3, 3, 9, 9, generator=generator)
    assert torch.equal(mix(x_a, x_b, 1.0), x_a) and torch.equal(mix(x_a, x_b, 0.0), x_b)
    for lam in (0.1, 0.25, 0.7):
        reference = lam * x_a.double() + (1 - lam) * x_b.double()
        assert torch.allclose(mix(x_a, x_b, lam).double(), reference, atol=1e-7)


@pytest.mark.parametrize(("side", "size"), [(16, 0), (16, 5), (16, 8), (15, 4), (15, 15)])
def test_cutmix_inputs_paste_exactly_the_centred_square(side: int, size: int) -> None:
    x_a, x_b = torch.zeros(2, 3, side, side), torch.ones(2, 3, side, side)
    out = paste_centre(x_a, x_b, size)
    assert int(out[:, 0].sum()) == 2 * size * size
    y0, y1, x0, x1 = centred_bounds(size, side, side)
    assert bool((out[:, :, y0:y1, x0:x1] == 1).all())
    generator = torch.Generator().manual_seed(0)
    x_a, x_b = torch.rand(2, 3, side, side, generator=generator), torch.rand(2, 3, side, side, generator=generator)
    out, inside = paste_centre(x_a, x_b, size), centred_mask(size, side, side)
    assert torch.equal(out[..., inside], x_b[..., inside]) and torch.equal(out[..., ~inside], x_a[..., ~inside])


def test_prediction_rates() -> None:
    rates = prediction_rates(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 1, 2]))
    assert rates == {"p_a": 25.0, "p_b": 50.0, "p_neither": 25.0}


def test_inbetween_endpoints_match_plain_predictions(ctx: EvalContext) -> None:
    rows = frame(EVALUATIONS.create("inbetween", pairs=150, lams=[0, 0.5, 1], sizes=[0, 8, SIDE], seed=1).run(ctx))
    a, b = different_class_pairs(ctx.test.y.numpy(), 150, seed=1)
    accuracy_a = 100 * float((ctx.logits(ctx.test.x[a]).argmax(1) == ctx.test.y[a]).float().mean())
    accuracy_b = 100 * float((ctx.logits(ctx.test.x[b]).argmax(1) == ctx.test.y[b]).float().mean())
    assert value(rows, "p_a", "mixup", 1) == pytest.approx(accuracy_a)
    assert value(rows, "p_a", "cutmix", 0) == pytest.approx(accuracy_a)
    assert value(rows, "p_b", "mixup", 0) == pytest.approx(accuracy_b)
    assert value(rows, "p_b", "cutmix", SIDE) == pytest.approx(accuracy_b)
    totals = rows.groupby(["subset", "level"])["value"].sum()
    assert np.allclose(totals, 100) and len(totals) == 6
    again = frame(EVALUATIONS.create("inbetween", pairs=150, lams=[0, 0.5, 1], sizes=[0, 8, SIDE], seed=1).run(ctx))
    assert rows.equals(again)


# --- adversarial --------------------------------------------------------------------------------------

def losses(ctx: EvalContext, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(ctx.forward(x), y, reduction="none")


def test_attacks_stay_in_the_ball_raise_the_loss_and_leave_the_model_alone(ctx: EvalContext) -> None:
    x, y = ctx.to_float(ctx.test.x[:100]), ctx.test.y[:100]
    state = {k: v.clone() for k, v in ctx.model.state_dict().items()}
    clean = losses(ctx, x, y).mean()
    for eps in (2 / 255, 8 / 255):
        sign = torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
        random_noise = losses(ctx, (x + eps * sign).clamp(0, 1), y).mean()
        attacks = {"fgsm": fgsm(ctx.forward, x, y, eps),
                   "pgd": pgd(ctx.forward, x, y, eps, 2 / 255, 5, torch.Generator().manual_seed(0)),
                   "pgd-no-start": pgd(ctx.forward, x, y, eps, 2 / 255, 5)}
        for name, adv in attacks.items():
            assert float((adv - x).abs().max()) <= eps + 1e-6, name
            assert float(adv.min()) >= 0 and float(adv.max()) <= 1, name
            attacked = losses(ctx, adv, y).mean()
            assert attacked > 1.5 * clean and attacked > 1.5 * random_noise, (name, eps, attacked, random_noise, clean)
    changed = [k for k, v in ctx.model.state_dict().items() if not torch.equal(v, state[k])]
    assert changed == []  # BN statistics frozen
    assert all(p.grad is None for p in ctx.model.parameters())
    assert not ctx.model.training


def test_pgd_is_deterministic_under_a_seed(ctx: EvalContext) -> None:
    x, y = ctx.to_float(ctx.test.x[:20]), ctx.test.y[:20]
    runs = [pgd(ctx.forward, x, y, 8 / 255, 2 / 255, 2, torch.Generator().manual_seed(s)) for s in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert torch.equal(fgsm(ctx.forward, x, y, 4 / 255), fgsm(ctx.forward, x, y, 4 / 255))


def test_adversarial_evaluation(ctx: EvalContext) -> None:
    evaluation = EVALUATIONS.create("adversarial", epsilons=[1, 8], pgd_steps=3, max_images=120)
    rows = frame(evaluation.run(ctx))
    assert list(zip(rows["subset"], rows["level"])) == [("clean", 0), ("fgsm", 1), ("fgsm", 8), ("pgd", 8)]
    subset = ctx.test.subset(120, 0)
    clean = 100 - classification_metrics(ctx.logits(subset.x), subset.y)["top1_err"]
    assert value(rows, "top1_acc", "clean", 0) == pytest.approx(clean, abs=1e-3)
    assert value(rows, "top1_acc", "fgsm", 8) < value(rows, "top1_acc", "fgsm", 1) <= clean
    assert value(rows, "top1_acc", "pgd", 8) < clean
    assert rows.equals(frame(evaluation.run(ctx)))  # deterministic, random start included
    assert rows["setting"].iloc[0] == "120 test images; PGD 3 steps of 2/255, random start (seed 0)"


class ThirdLargeGradientRunsOutOfMemory(EvalContext):
    """Raises CUDA out-of-memory on the third gradient pass over more than 32 images (PGD's second step: the
    FGSM epsilons share one gradient, so after the random start was drawn)."""

    large_gradient_calls = 0

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        if x01.requires_grad and len(x01) > 32:
            self.large_gradient_calls += 1
            if self.large_gradient_calls == 3:
                raise torch.cuda.OutOfMemoryError("fake: out of memory")
        return super().forward(x01)


def test_adversarial_halves_the_batch_on_out_of_memory(ctx: EvalContext, caplog: pytest.LogCaptureFixture) -> None:
    params = {"epsilons": [1, 8], "pgd_steps": 2, "max_images": 120}
    small = frame(EVALUATIONS.create("adversarial", batch_size=32, **params).run(ctx))
    fields = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx) if f.init}
    limited = ThirdLargeGradientRunsOutOfMemory(**fields)
    rows = frame(EVALUATIONS.create("adversarial", batch_size=64, **params).run(limited))
    assert limited.large_gradient_calls == 3
    assert "batch size lowered to 32" in caplog.text
    assert rows.equals(small)  # same images, same random start


def test_adversarial_requires_eval_mode(ctx: EvalContext) -> None:
    ctx.model.train()
    try:
        with pytest.raises(BenchError, match="eval mode"):
            EVALUATIONS.create("adversarial", max_images=10).run(ctx)
    finally:
        ctx.model.eval()


@pytest.mark.parametrize("params", [{"epsilons": []}, {"epsilons": [0]}, {"pgd_step": -1}, {"pgd_steps": 0},
                                    {"max_images": -5}, {"batch_size": 0}])
def test_adversarial_rejects_bad_parameters(params: dict) -> None:
    with pytest.raises(BenchError, match="evaluations.adversarial"):
        EVALUATIONS.create("adversarial", "evaluations.adversarial", **params)


# --- end to end ---------------------------------------------------------------------------------------

def test_smoke_suite_report_has_the_robustness_sections(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    suite_file = Path(__file__).resolve().parents[1] / "suites" / "smoke.yaml"
    suite = load_suite(suite_file, [
        "seeds=[0]", "train.epochs=1", "data.params.train_size=256", "data.params.test_size=100",
        f"output_dir={tmp_path / 'out'}", "evaluations.occlusion={sizes: [0, 16, 32]}",
        "evaluations.inbetween={pairs: 50, lams: [0, 0.5, 1], sizes: [0, 16, 32]}",
        "evaluations.adversarial={epsilons: [8], pgd_steps: 2}"])
    out, failures = run_suite(suite)
    assert failures == {}
    report = (out / "report.md").read_text()
    for heading in ("## Occlusion", "## In-between class", "## Adversarial robustness (white-box)"):
        assert heading in report
    for name in ("occlusion", "inbetween", "adversarial"):
        assert f"![{name}](figures/{name}.png)" in report
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    for method in ("Baseline", "Cutout", "Mixup", "CutMix"):
        assert report.count(f"| {method} ") >= 10
    results = pd.read_csv(out / "results.csv")
    robust = results[results["evaluation"].isin(["occlusion", "inbetween", "adversarial"])]
    assert set(robust["method"]) == {"baseline", "cutout", "mixup", "cutmix"}
    assert len(robust) == 4 * ((2 * 3 + 2) + 3 * 6 + 3)
    assert "fill dataset mean colour" in report and "units of 1/255" in report
