"""Calibration under shift (evaluations/calibration.py): ECE equals torchmetrics and the clean evaluation's, NLL
equals torch's cross entropy, Brier equals sklearn's multiclass `brier_score_loss`; the temperature minimises
the NLL and recovers a known over-confidence; held-out training images never overlap the training split; the
means over cells and the pooled reliability diagram equal direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import brier_score_loss
from torchmetrics.classification import MulticlassCalibrationError

from cutmix_bench import intervals
from cutmix_bench.data import Split
from cutmix_bench.evaluations.calibration import (
    CellStats,
    cell_rows,
    fit_temperature,
    held_out_training_images,
    summary_rows,
)
from cutmix_bench.evaluations.clean import expected_calibration_error

K, N = 6, 700


def logits_labels(seed: int, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(z): a model whose logits are z is calibrated; scale * z is over-confident."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(N, K, generator=generator, dtype=torch.float64) * 2
    labels = torch.multinomial(z.softmax(1), 1, generator=generator).squeeze(1)
    return (scale * z).float(), labels


@pytest.mark.parametrize("seed", [0, 1])
def test_cell_metrics_equal_torchmetrics_torch_and_sklearn(seed: int) -> None:
    logits, labels = logits_labels(seed, 2.5)
    values = CellStats(logits, labels, 15).values()
    ece = MulticlassCalibrationError(num_classes=K, n_bins=15, norm="l1")(logits.softmax(1), labels)
    assert values["ece"] == pytest.approx(100 * float(ece), abs=1e-4)
    assert values["ece"] == pytest.approx(100 * expected_calibration_error(logits, labels, 15), abs=1e-5)  # fp32 sums
    assert values["nll"] == pytest.approx(float(F.cross_entropy(logits.double(), labels)), rel=1e-12)
    brier = brier_score_loss(labels.numpy(), logits.double().softmax(1).numpy(), labels=list(range(K)))
    assert values["brier"] == pytest.approx(brier, rel=1e-12)


def test_temperature_minimises_the_nll_and_recovers_a_known_overconfidence() -> None:
    logits, labels = logits_labels(2, scale=3.0)  # the calibrated logits divided by T = 3 ... times 3
    t = fit_temperature(logits, labels)
    assert 2.6 < t < 3.4

    def nll(temperature: float) -> float:
        return float(F.cross_entropy(logits.double() / temperature, labels))

    assert all(nll(t) <= nll(t * factor) for factor in (0.9, 0.99, 0.999, 1.001, 1.01, 1.1))
    before, after = CellStats(logits, labels, 15).values(), CellStats(logits / t, labels, 15).values()
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"]


def test_held_out_training_images_are_the_rest_of_the_training_draw() -> None:
    x = torch.arange(50).view(50, 1, 1, 1).to(torch.uint8)
    full = Split(x, torch.arange(50))
    trained = full.subset(30, seed=4)
    held = held_out_training_images(full, (30, 4), limit=15)
    assert len(held) == 15 and not set(held.y.tolist()) & set(trained.y.tolist())
    assert set(held_out_training_images(full, (30, 4), 100).y.tolist()) == set(range(50)) - set(trained.y.tolist())
    assert held_out_training_images(full, None, 10) is None and held_out_training_images(full, (50, 0), 10) is None


def test_means_over_cells_and_the_pooled_reliability_diagram() -> None:
    cells = []
    for i, scale in enumerate((1.0, 2.0, 4.0)):
        logits, labels = logits_labels(10 + i, scale)
        cells.append((f"c{i}", 1, CellStats(logits, logits_labels(10)[1], 10)))  # the same labels: the same images
    rows = {(r["metric"], r.get("level")): r for r in summary_rows(cells, "")}
    per_cell = {(r["subset"], r["metric"]): r["value"] for r in cell_rows(cells, "")}
    for metric in ("ece", "nll", "brier"):
        expected = np.mean([per_cell[c, metric] for c, _, _ in cells])
        assert rows[f"mean_{metric}", None]["value"] == pytest.approx(expected, rel=1e-12)
        assert rows[f"mean_{metric}", None]["ci_low"] <= expected <= rows[f"mean_{metric}", None]["ci_high"]
    nll = torch.stack([s.nll for _, _, s in cells]).mean(0).numpy()  # the NLL interval, by another path
    expected_low, expected_high = np.percentile(intervals.mean_replicates(nll), [2.5, 97.5])
    assert rows["mean_nll", None]["ci_low"] == pytest.approx(expected_low, rel=1e-12)
    assert rows["mean_nll", None]["ci_high"] == pytest.approx(expected_high, rel=1e-12)
    confidence = torch.cat([s.confidence for _, _, s in cells]).numpy()
    correct = torch.cat([s.correct for _, _, s in cells]).numpy()
    edges = np.linspace(0, 1, 11)
    for b in range(10):
        members = (confidence > edges[b]) & (confidence <= edges[b + 1])
        level = (b + 1) / 10
        if not members.any():
            assert ("reliability_acc", level) not in rows
            continue
        assert rows["reliability_acc", level]["value"] == pytest.approx(100 * correct[members].mean(), rel=1e-12)
        assert rows["reliability_conf", level]["value"] == pytest.approx(100 * confidence[members].mean(), rel=1e-12)
        assert rows["reliability_share", level]["value"] == pytest.approx(100 * members.mean(), rel=1e-12)


def test_report_section_tables_and_reliability_figure(tmp_path) -> None:
    import pandas as pd
    from PIL import Image

    from cutmix_bench.evaluations.calibration import report_section

    rows, expected = [], {}
    for method, scale in (("baseline", 3.0), ("cutmix", 1.0)):
        for seed in (0, 1):
            logits, labels = logits_labels(20 + seed, scale)
            cells = [("gaussian_noise", s, CellStats(logits * s, labels, 15)) for s in (1, 2)]
            scaled = [(c, s, CellStats(stats_logits, labels, 15)) for c, s, stats_logits in
                      [(c, s, logits * s / scale) for c, s, _ in cells]]
            made = (cell_rows([("clean", 0, CellStats(logits, labels, 15))], "") + cell_rows(cells, "")
                    + summary_rows(cells, "") + [{"metric": "temperature", "value": scale, "n": 50}]
                    + cell_rows(scaled, "_ts") + summary_rows(scaled, "_ts"))
            rows += [{**r, "run": f"{method}-s{seed}", "method": method, "seed": seed} for r in made]
            expected.setdefault(method, []).append(next(r["value"] for r in made if r["metric"] == "mean_ece"))
    section = report_section(pd.DataFrame(rows), ["baseline", "cutmix"], tmp_path / "figures")
    line = next(row for row in section.splitlines() if row.startswith("| ECE under corruption (%)"))
    mean = np.mean(expected["baseline"])
    assert f"| {mean:.2f} ± {np.std(expected['baseline'], ddof=1):.2f}" in line
    assert "T fitted per model by minimising the NLL of logits / T on 50 training images held out" in section
    assert "T-scaled, severity 2" in section and "figures/reliability_corruptions.png" in section
    assert Image.open(tmp_path / "figures" / "reliability_corruptions.png").size[0] > 500
    assert report_section(pd.DataFrame(rows).query("metric != 'mean_ece'"), ["baseline"], tmp_path) == ""
