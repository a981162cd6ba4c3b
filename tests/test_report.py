"""The report builder on hand-made results tables: the summary, the differences to the baseline and their
intervals equal a hand computation with scipy, marks appear only where the interval excludes zero,
missing evaluations are named, one seed uses the per-image interval; figures are real PNGs."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from cutmix_bench.compare import compare_dirs
from cutmix_bench.config import Suite
from cutmix_bench.evaluations.figures import DPI
from cutmix_bench.report import build_report, report_from_dir

SUITE = {"name": "hand", "data": {"name": "synthetic"}, "model": {"name": "tiny"}, "train": {"epochs": 2},
         "methods": {"baseline": {}, "cutmix": {"alpha": 1.0}, "mixup": {"alpha": 1.0}}, "seeds": [0, 1, 2],
         "evaluations": {"clean": {}, "corruptions": {}, "adversarial": {}}}
# clean top-1 error per seed: CutMix is 2 points better on every seed; Mixup's gap changes sign
ERRORS = {"baseline": [20.0, 21.0, 22.5], "cutmix": [18.1, 19.0, 20.4], "mixup": [21.0, 20.0, 23.0]}
ECE = {"baseline": [5.0, 6.0, 5.5], "cutmix": [3.0, 3.5, 3.2], "mixup": [2.0, 1.5, 2.4]}


def results_table(seeds: list[int], with_ci: bool = True) -> pd.DataFrame:
    rows = []
    for method in ERRORS:
        for seed in seeds:
            run = f"{method}-s{seed}"
            base = {"run": run, "method": method, "seed": seed, "model": "tiny", "dataset": "synthetic"}
            err, ece = ERRORS[method][seed], ECE[method][seed]
            ci = {"n": 1000, "ci_low": err - 2.5, "ci_high": err + 2.5} if with_ci else {}
            rows += [{**base, "evaluation": "clean", "metric": "top1_err", "value": err, **ci},
                     {**base, "evaluation": "clean", "metric": "ece", "value": ece},
                     {**base, "evaluation": "train", "metric": "train_minutes", "value": 1.0}]
    return pd.DataFrame(rows)


def table(report: str, heading: str) -> dict[str, list[str]]:
    """The first markdown table after `heading`, as {first cell: other cells}."""
    section = report.split(heading, 1)[1]
    lines = [line for line in section.split("\n\n|", 1)[1].split("\n\n")[0].splitlines()]
    rows = [[cell.strip() for cell in ("|" + line if i == 0 else line).strip("|").split("|")]
            for i, line in enumerate(lines)]
    return {row[0]: row[1:] for row in [rows[0], *rows[2:]]}


def write_dir(out: Path, suite: dict, results: pd.DataFrame) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    (out / "suite.json").write_text(json.dumps(Suite.model_validate(suite).model_dump(mode="json")))
    return out


def test_summary_and_paired_differences_match_scipy(tmp_path: Path) -> None:
    out = write_dir(tmp_path / "r", SUITE, results_table([0, 1, 2]))
    report = report_from_dir(out).read_text()
    assert report.index("## Summary") < report.index("## Clean test set")
    summary = table(report, "## Summary")
    assert summary["Metric"] == ["Baseline", "CutMix", "Mixup"]
    errors = np.array(ERRORS["baseline"])
    assert summary["Clean top-1 error (%) ↓"][0] == f"{errors.mean():.2f} ± {errors.std(ddof=1):.2f}"
    assert summary["Corruption mCE (%) ↓"] == ["missing (no rows)"] * 3  # in the suite, no rows
    assert summary["OOD AUROC near (%) ↑"] == ["not in suite"] * 3
    assert summary["FGSM 8/255 accuracy (%) ↑"] == ["missing (no rows)"] * 3

    diffs = table(report, "### Difference to Baseline")
    assert diffs["Metric"] == ["CutMix", "Mixup"]
    for column, method in enumerate(["cutmix", "mixup"]):
        for label, values in (("Clean top-1 error (%) ↓", ERRORS), ("ECE (%) ↓", ECE)):
            test = stats.ttest_rel(values[method], values["baseline"])
            low, high = test.confidence_interval(0.95)
            delta = np.mean(np.subtract(values[method], values["baseline"]))
            mark = " *" if low > 0 or high < 0 else ""
            assert diffs[label][column] == f"{delta:+.2f} [{low:+.2f}, {high:+.2f}]{mark}", (label, method)
    assert diffs["Clean top-1 error (%) ↓"][0].endswith(" *")  # CutMix: 1.9 to 2.1 better on every seed
    assert not diffs["Clean top-1 error (%) ↓"][1].endswith("*")  # Mixup: the sign changes over seeds
    assert "paired t-test over seeds" in report and "per-image" not in report.split("### Difference")[1][:600]
    assert "**" not in report.split("## Clean test set")[1] and "≈" not in report  # no unbacked marks
    assert "Not evaluated" in report.split("## Corruption robustness")[1]
    assert "n = 1,000 per cell; 95% interval over images ±2.50" in report


def test_one_seed_uses_the_per_image_interval(tmp_path: Path) -> None:
    suite = {**SUITE, "seeds": [0]}
    report = report_from_dir(write_dir(tmp_path / "r", suite, results_table([0]))).read_text()
    diffs = table(report, "### Difference to Baseline")
    half = math.sqrt(2.5 ** 2 + 2.5 ** 2)  # two independent half-widths of 2.5
    delta = ERRORS["cutmix"][0] - ERRORS["baseline"][0]
    assert diffs["Clean top-1 error (%) ↓"][0] == f"{delta:+.2f} [{delta - half:+.2f}, {delta + half:+.2f}]"
    assert diffs["ECE (%) ↓"][0] == f"{ECE['cutmix'][0] - ECE['baseline'][0]:+.2f} (no interval)"  # no ci columns
    assert "with **one seed**, the **per-image** 95% intervals" in report
    table(report, "## Summary")  # one value per cell, no std
    assert table(report, "## Summary")["Clean top-1 error (%) ↓"][0] == f"{ERRORS['baseline'][0]:.2f}"


def test_results_without_interval_columns(tmp_path: Path) -> None:
    report = report_from_dir(write_dir(tmp_path / "r", {**SUITE, "seeds": [0]},
                                       results_table([0], with_ci=False))).read_text()
    diffs = table(report, "### Difference to Baseline")
    assert all(cell.endswith("(no interval)") for cell in diffs["Clean top-1 error (%) ↓"])
    assert "interval over images" not in report


def test_report_rebuild_is_byte_identical_and_figures_are_pngs(tmp_path: Path) -> None:
    out = write_dir(tmp_path / "r", SUITE, results_table([0, 1, 2]))
    curves = pd.DataFrame([{"run": f"{m}-s{s}", "method": m, "seed": s, "epoch": e, "train_loss": 2.0 - e / 2 + s / 10,
                            "train_acc": 50.0, "test_acc": 40.0 + 10 * e, "lr": 0.1, "seconds": 1.0}
                           for m in ERRORS for s in range(3) for e in range(2)])
    curves.to_csv(out / "curves.csv", index=False)
    first = report_from_dir(out).read_bytes()
    assert report_from_dir(out).read_bytes() == first
    suite = Suite.model_validate(SUITE)
    build_report(suite, pd.read_csv(out / "results.csv"), out, {})
    assert (out / "report.md").read_bytes() == first  # the runner's path: same bytes
    for name, size in (("training_curves", (2 * 4.2, 3.4)), ("summary", (2 * 2.6, 2.4))):
        assert f"figures/{name}.png" in first.decode()
        with Image.open(out / "figures" / f"{name}.png") as image:
            assert image.format == "PNG" and image.size == (round(size[0] * DPI), round(size[1] * DPI))
            assert np.asarray(image.convert("L")).std() > 5  # not a blank canvas


def test_compare_matches_welch(tmp_path: Path) -> None:
    a = write_dir(tmp_path / "a", SUITE, results_table([0, 1, 2]))
    shifted = results_table([0, 1, 2])
    shifted.loc[shifted["metric"] == "top1_err", "value"] += [0.5, 1.5, 1.0] * 3
    b = write_dir(tmp_path / "b", {**SUITE, "name": "other"}, shifted)
    text = compare_dirs(a, b, tmp_path / "compare.md").read_text()
    assert text.startswith("# Comparison: hand (A) vs other (B)")
    row = next(line for line in text.splitlines() if line.startswith("| Clean top-1 error (%) ↓ | CutMix"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    before, after = np.array(ERRORS["cutmix"]), np.array(ERRORS["cutmix"]) + [0.5, 1.5, 1.0]
    low, high = stats.ttest_ind(after, before, equal_var=False).confidence_interval(0.95)
    assert cells[2:] == [f"{before.mean():.2f} ± {before.std(ddof=1):.2f}",
                         f"{after.mean():.2f} ± {after.std(ddof=1):.2f}",
                         f"{after.mean() - before.mean():+.2f} [{low:+.2f}, {high:+.2f}]"]  # no mark: spans 0


def compare_row(text: str, metric: str, method: str) -> list[str]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    return next(row for row in rows if row[:2] == [metric, method])


def test_compare_with_one_seed_a_side_shows_the_per_image_intervals(tmp_path: Path) -> None:
    """One seed each: every value with its per-image 95% half-width as results.csv holds it (ci_high - ci_low) / 2,
    and B - A with the two combined as if independent, as the report's one-seed differences; a metric without
    an interval (ECE here) shows none."""
    a = write_dir(tmp_path / "a", {**SUITE, "seeds": [0]}, results_table([0]))
    one = results_table([0])
    clean = one["metric"] == "top1_err"
    one.loc[clean, "value"] -= 6.0
    one.loc[clean, "ci_low"] = one.loc[clean, "value"] - 1.0  # an asymmetric interval: half-width 2.0
    one.loc[clean, "ci_high"] = one.loc[clean, "value"] + 3.0
    b = write_dir(tmp_path / "b", {**SUITE, "name": "other", "seeds": [0]}, one)
    text = compare_dirs(a, b, tmp_path / "compare.md").read_text()
    before = ERRORS["cutmix"][0]
    half = math.hypot(2.5, 2.0)
    assert compare_row(text, "Clean top-1 error (%) ↓", "CutMix")[2:] == [
        f"{before:.2f} ± 2.50", f"{before - 6:.2f} ± 2.00", f"{-6.0:+.2f} [{-6 - half:+.2f}, {-6 + half:+.2f}] *"]
    assert compare_row(text, "ECE (%) ↓", "CutMix")[2:] == [
        f"{ECE['cutmix'][0]:.2f}", f"{ECE['cutmix'][0]:.2f}", "+0.00"]
    assert "With one seed on each side: value ± its per-image 95% half-width" in text


def test_compare_names_every_difference_of_setup_and_execution(tmp_path: Path) -> None:
    """Every differing key of the two sides' setups (data subset, model, epochs, lr, a method's and an
    evaluation's parameters, the recorded image digests) is named in the header (and refused without
    --allow-different), and how the runs executed (devices, strategy, nodes, precision, compilation) too."""
    from cutmix_bench.errors import BenchError

    other = {**SUITE, "name": "other", "data": {"name": "synthetic", "train_subset": 100},
             "model": {"name": "tiny", "params": {"width": 16}},
             "train": {"epochs": 3, "optimizer": {"lr": 0.05}, "devices": 2, "batch_size": 128, "compile": True},
             "methods": {**SUITE["methods"], "cutmix": {"alpha": 0.5}},
             "evaluations": {**SUITE["evaluations"], "adversarial": {"eps": [1, 2]}}}
    a = write_dir(tmp_path / "a", SUITE, results_table([0, 1, 2]))
    b = write_dir(tmp_path / "b", other, results_table([0, 1, 2]))
    for folder, content, infos in ((a, "aaa", {"devices": 1, "strategy": "single_device", "nodes": 1,
                                               "precision": "32-true"}),
                                   (b, "bbb", {"devices": 2, "strategy": "ddp_spawn", "nodes": 1,
                                               "precision": "bf16-mixed"})):
        (folder / "setups.json").write_text(json.dumps({"h": {"data": {"name": "synthetic", "content": content}}}))
        (folder / "runs.json").write_text(json.dumps({"baseline-s0": infos}))
    with pytest.raises(BenchError, match="were made with different setups") as refused:
        compare_dirs(a, b, tmp_path / "refused.md")
    text = compare_dirs(a, b, tmp_path / "compare.md", allow_different=True).read_text()
    setup = ["dataset.train_subset: A null vs B 100", "model.params.width: A (none) vs B 16",
             "training setup.epochs: A 2 vs B 3", "training setup.optimizer.lr: A 0.1 vs B 0.05",
             "dataset images: A \"aaa\" vs B \"bbb\"", "methods.cutmix.alpha: A 1.0 vs B 0.5",
             "evaluations.adversarial.eps: A (none) vs B [1, 2]"]
    ran = ["train.devices: A 1 vs B 2", "train.strategy: A single_device vs B ddp_spawn",
           "precision: A 32-true vs B bf16-mixed", "train.compile: A False vs B True"]
    for line in setup + ran:
        assert f"- {line}\n" in text, line
    for line in setup:
        assert line in str(refused.value), line
    assert "model.params:" not in text
    listed = [line for line in text.split("**Ran differently**")[1].split("\n\nMean")[0].splitlines()
              if line.startswith("- ")]
    assert listed == [f"- {line}" for line in ran]  # nodes, channels_last, eval_compile agree: not named


@pytest.mark.parametrize("missing", ["results.csv", "suite.json"])
def test_report_of_a_non_results_dir_is_one_error(tmp_path: Path, missing: str, capsys) -> None:
    from cutmix_bench.cli import main

    out = write_dir(tmp_path / "r", SUITE, results_table([0]))
    (out / missing).unlink()
    assert main(["report", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (f"cutmix-bench: error: {out}: not a results directory (no {missing}); "
                                               "expected the output_dir of a run made by this version")


def test_ood_headline_prefers_the_recorded_group_mean(tmp_path: Path) -> None:
    """One seed: the near AUROC is the evaluation's `mean_auroc` row with its own (bootstrap) interval, not
    a recomputation from the per-set rows; without that row, the per-set rows are averaged per run."""
    from cutmix_bench.evaluations.ood import OOD
    from cutmix_bench.summary import headline_values

    rows = []
    for method, shift in (("baseline", 0.0), ("cutmix", 4.0)):
        base = {"run": f"{method}-s0", "method": method, "seed": 0, "evaluation": "ood", "score": "msp"}
        rows += [{**base, "metric": "auroc", "subset": s, "group": "near", "value": v + shift, "n": 500,
                  "ci_low": v + shift - 3, "ci_high": v + shift + 3} for s, v in (("a", 70.0), ("b", 80.0))]
        rows.append({**base, "metric": "mean_auroc", "subset": "near", "group": "near", "value": 75.0 + shift,
                     "n": 1000, "ci_low": 74.0 + shift, "ci_high": 76.5 + shift})
    frame = pd.DataFrame(rows)
    headlines = [replace(h, evaluation="ood") for h in OOD.headlines]
    near = headline_values(frame, headlines).query("headline == 'auroc_near'").set_index("method")
    assert near.loc["cutmix", "value"] == 79.0 and near.loc["cutmix", "half"] == 1.25
    per_set = headline_values(frame[frame["metric"] != "mean_auroc"], headlines).query("headline == 'auroc_near'")
    assert per_set.set_index("method").loc["cutmix", "half"] == pytest.approx(math.sqrt(2 * 3 ** 2) / 2)


REFERENCE = {"citation": "Yun et al., CutMix, ICCV 2019, Table 3",
             "results": {"baseline": {"top1_err": 16.45}, "cutmix": {"top1_err": 14.47, "ece": 3.1}}}


def test_published_numbers_stand_beside_ours_with_their_citation(tmp_path: Path) -> None:
    report = report_from_dir(write_dir(tmp_path / "r", {**SUITE, "reference": REFERENCE},
                                       results_table([0, 1, 2]))).read_text()
    summary = table(report, "## Summary")
    assert summary["Clean top-1 error (%), published"] == ["16.45", "14.47", "–"]
    assert summary["ECE (%), published"] == ["–", "3.10", "–"]
    rows = list(summary)
    assert rows.index("Clean top-1 error (%), published") == rows.index("Clean top-1 error (%) ↓") + 1
    clean = table(report, "## Clean test set")
    assert clean["Method"] == ["Top-1 err (%) ↓", "published", "Top-5 err (%) ↓", "NLL ↓", "ECE (%) ↓", "published",
                               "Train time (min)"]
    errors = np.array(ERRORS["cutmix"])
    assert clean["CutMix"][:2] == [f"{errors.mean():.2f} ± {errors.std(ddof=1):.2f}", "14.47"]
    assert (clean["Baseline"][1], clean["Mixup"][1], clean["Baseline"][5]) == ("16.45", "–", "–")
    assert report.count("Published: Yun et al., CutMix, ICCV 2019, Table 3.") == 2  # under both tables
    plain = report_from_dir(write_dir(tmp_path / "plain", SUITE, results_table([0, 1, 2]))).read_text()
    assert "published" not in plain.lower()


def curves_table(seeds: list[int]) -> pd.DataFrame:
    """Test accuracy every other epoch (NaN between, as with eval_every 2); each run peaks before its end."""
    rows = []
    for method in ERRORS:
        for seed in seeds:
            final = 100 - ERRORS[method][seed]
            for epoch, acc in enumerate([final - 10, math.nan, final + 1.5 + seed, math.nan, final]):
                rows.append({"run": f"{method}-s{seed}", "method": method, "seed": seed, "epoch": epoch,
                             "train_loss": 1.0, "test_acc": acc})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seeds", [[0, 1, 2], [1]])
def test_published_numbers_are_set_against_ours_last_and_best_epoch(tmp_path: Path, seeds: list[int]) -> None:
    reference = {"citation": "Tian et al., CRD, ICLR 2020, Table 1", "epoch": "best",
                 "results": {"baseline": {"top1_err": 19.0}, "cutmix": {"top1_err": 18.5}}}
    out = write_dir(tmp_path / "r", {**SUITE, "seeds": seeds, "reference": reference}, results_table(seeds))
    curves_table(seeds).to_csv(out / "curves.csv", index=False)
    report = report_from_dir(out).read_text()
    rows = table(report, "### Against the published numbers")
    assert "The published numbers are from the **best epoch**" in report
    assert "for a trained run the **Best − published** column compares like with like" in report
    for method, published in (("baseline", 19.0), ("cutmix", 18.5)):
        last = np.array([ERRORS[method][s] for s in seeds])
        best = last - 1.5 - np.array(seeds)  # the peak two epochs before the end, epoch 3 counted from 1
        metric, shown, ours_last, ours_best, last_diff, best_diff = rows[{"baseline": "Baseline",
                                                                          "cutmix": "CutMix"}[method]]
        assert (metric, shown) == ("Top-1 error (%)", f"{published:.2f}")
        epochs = ", ".join("3" for _ in seeds)
        if len(seeds) > 1:
            assert ours_last == f"{last.mean():.2f} ± {last.std(ddof=1):.2f}"
            assert ours_best == f"{best.mean():.2f} ± {best.std(ddof=1):.2f} (epochs {epochs})"
            for diff, values in ((last_diff, last), (best_diff, best)):
                ci = stats.ttest_1samp(values, published).confidence_interval(0.95)
                assert diff.startswith(f"{values.mean() - published:+.2f} [{ci.low - published:+.2f}, "
                                       f"{ci.high - published:+.2f}]")
        else:
            assert ours_last == f"{last[0]:.2f} [{last[0] - 2.5:.2f}, {last[0] + 2.5:.2f}]"
            ci = stats.binomtest(round(best[0] * 10), 1000).proportion_ci(method="exact")
            half = 100 * (ci.high - ci.low) / 2
            assert ours_best == f"{best[0]:.2f} [{best[0] - half:.2f}, {best[0] + half:.2f}] (epoch 3)"
            assert last_diff.startswith(f"{last[0] - published:+.2f} [{last[0] - published - 2.5:+.2f}, "
                                        f"{last[0] - published + 2.5:+.2f}]")
            assert best_diff.startswith(f"{best[0] - published:+.2f} [{best[0] - published - half:+.2f}, "
                                        f"{best[0] - published + half:+.2f}]")
    assert "theirs from the best epoch" in report


def test_a_reference_without_its_epoch_says_so_and_a_run_without_a_curve_has_no_best_epoch(tmp_path: Path) -> None:
    out = write_dir(tmp_path / "r", {**SUITE, "reference": REFERENCE}, results_table([0, 1, 2]))
    report = report_from_dir(out).read_text()
    assert "from an epoch the reference block does not state (`reference.epoch`)" in report
    assert "which of the two columns compares like with like is not known" in report
    rows = table(report, "### Against the published numbers")
    assert rows["Baseline"][3] == "not recorded" and rows["Baseline"][5] == "–"


@pytest.mark.parametrize(("results", "message"), [
    ({"cutmx": {"top1_err": 1.0}}, "reference: results.cutmx: 'cutmx' is not a method label of this suite; "
                                   "expected one of baseline, cutmix, mixup"),
    ({"cutmix": {"top1": 1.0}}, "reference: results.cutmix.top1: unknown metric 'top1'; expected one of top1_err, "
                                "top5_err, nll, ece, auroc_near, auroc_far"),
])
def test_reference_names_are_checked(results: dict, message: str) -> None:
    from cutmix_bench.errors import BenchError
    from cutmix_bench.suite_file import validate

    with pytest.raises(BenchError) as error:
        validate({**SUITE, "reference": {"citation": "x", "results": results}}, "s.yaml")
    assert str(error.value) == f"s.yaml: {message}"


def test_the_paper_suite_carries_table_3() -> None:
    from cutmix_bench.suite_file import load_suite

    suite = load_suite(Path(__file__).resolve().parents[1] / "suites" / "cifar100-paper.yaml")
    assert "ICCV 2019, Table 3" in suite.reference.citation
    assert {m: r["top1_err"] for m, r in suite.reference.results.items()} == {
        "baseline": 16.45, "cutout": 16.53, "mixup": 15.63, "cutmix": 14.47}


def holm_by_definition(pvalues: list[float]) -> list[float]:
    """Holm (1979) written from its definition, independently of `summary.holm`: sort ascending, the k-th
    (from 0) of m is compared with alpha / (m - k); the adjusted p-value is the smallest alpha at which the
    step-down procedure rejects it, i.e. the running max of (m - k) p_(k), capped at 1."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for k, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - k) * p))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize("pvalues", [[0.01, 0.04, 0.03, 0.005], [0.5, math.nan, 0.01, 0.2, 0.01, 0.9],
                                     [0.3], [math.nan, math.nan], [0.001, 0.02, 0.0205, 0.4, 0.6, 0.049]])
def test_holm_equals_its_definition_and_statsmodels(pvalues: list[float]) -> None:
    from cutmix_bench.summary import holm

    adjusted = holm(pvalues)
    np.testing.assert_allclose(adjusted, holm_by_definition(pvalues), rtol=0, atol=1e-15)
    try:
        from statsmodels.stats.multitest import multipletests
    except ImportError:  # not a dependency; the definition above is the oracle then
        return
    tested = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    if tested:
        reference = multipletests([pvalues[i] for i in tested], alpha=0.05, method="holm")[1]
        np.testing.assert_allclose([adjusted[i] for i in tested], reference, rtol=1e-12)


def p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def test_every_pair_is_tested_and_holm_adjusted_per_metric(tmp_path: Path) -> None:
    report = report_from_dir(write_dir(tmp_path / "r", SUITE, results_table([0, 1, 2]))).read_text()
    pairs = table(report, "### Every pair of methods, Holm-adjusted")
    assert pairs["Metric"] == ["CutMix − Baseline", "Mixup − Baseline", "Mixup − CutMix"]
    assert "Holm's step-down over the 3 pairs of each metric" in report
    for label, values in (("Clean top-1 error (%) ↓", ERRORS), ("ECE (%) ↓", ECE)):
        named = [("cutmix", "baseline"), ("mixup", "baseline"), ("mixup", "cutmix")]
        p = [stats.ttest_rel(values[a], values[b]).pvalue for a, b in named]
        adjusted = holm_by_definition(p)
        for column, (a, b) in enumerate(named):
            delta = np.mean(np.subtract(values[a], values[b]))
            mark = " *" if adjusted[column] < 0.05 else ""
            cell = f"{delta:+.2f} (p {p_text(p[column])}, Holm {p_text(adjusted[column])}){mark}"
            assert pairs[label][column] == cell, (label, a, b)
    saved = pd.read_csv(tmp_path / "r" / "tables" / "summary_pairs.csv")
    assert len(saved) == 2 * 3 and set(saved["test"]) == {"paired-t"}
    assert "Differences that survive Holm at 5%:" in report


def test_one_seed_pairs_use_the_normal_p_value_of_the_per_image_interval(tmp_path: Path) -> None:
    from cutmix_bench.aggregate import paired_difference as difference

    mine = pd.DataFrame({"seed": [0], "value": [18.0], "half": [2.5]})
    base = pd.DataFrame({"seed": [0], "value": [25.0], "half": [2.5]})
    diff = difference(mine, base)
    se = math.sqrt(2 * 2.5 ** 2) / stats.norm.ppf(0.975)
    assert diff.test == "per-image" and diff.p == pytest.approx(2 * stats.norm.cdf(-7.0 / se), rel=1e-12)
    assert (diff.p < 0.05) == diff.significant  # the p-value and the interval agree


def test_an_evaluation_under_another_label_is_in_the_summary_and_the_main_table(tmp_path: Path) -> None:
    """`clean_big: {evaluation: clean}` beside `clean`: both labels' rows reach the summary and a main table
    each (the report asks each label's evaluation for its headlines and main-table columns); a suite with only
    the other label loses nothing either."""
    suite = {**SUITE, "evaluations": {"clean": {}, "clean_big": {"evaluation": "clean", "ece_bins": 10}}}
    frame = results_table([0, 1, 2])
    big = frame[frame["evaluation"] == "clean"].assign(evaluation="clean_big")
    big["value"] += 10  # distinct numbers: each table must show its own label's rows
    report = report_from_dir(write_dir(tmp_path / "two", suite, pd.concat([frame, big]))).read_text()
    summary = table(report, "## Summary")
    for label, shift in (("Clean top-1 error (%) ↓", 0), ("Clean top-1 error (%) (clean_big) ↓", 10)):
        errors = np.array(ERRORS["baseline"]) + shift
        assert summary[label][0] == f"{errors.mean():.2f} ± {errors.std(ddof=1):.2f}"
    ece = np.array(ECE["cutmix"])
    assert summary["ECE (%) (clean_big) ↓"][1] == f"{ece.mean() + 10:.2f} ± {ece.std(ddof=1):.2f}"
    assert "Clean top-1 error (%) (clean_big) ↓" in table(report, "### Difference to Baseline")
    main, other = table(report, "## Clean test set"), table(report, "## Clean test set (`clean_big`)")
    errors = np.array(ERRORS["cutmix"])
    assert main["CutMix"][0] == f"{errors.mean():.2f} ± {errors.std(ddof=1):.2f}"
    assert other["CutMix"][0] == f"{errors.mean() + 10:.2f} ± {errors.std(ddof=1):.2f}"
    assert main["Method"][-1] == other["Method"][-1] == "Train time (min)"

    only = {**SUITE, "evaluations": {"clean_big": {"evaluation": "clean"}}}
    report = report_from_dir(write_dir(tmp_path / "only", only, pd.concat([frame[frame["evaluation"] == "train"],
                                                                           big]))).read_text()
    assert table(report, "## Summary")["Clean top-1 error (%) (clean_big) ↓"][0].startswith(
        f"{np.mean(ERRORS['baseline']) + 10:.2f}")
    assert table(report, "## Clean test set (`clean_big`)")["Baseline"][0].startswith(
        f"{np.mean(ERRORS['baseline']) + 10:.2f}")
