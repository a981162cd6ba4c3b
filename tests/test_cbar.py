"""The C-bar family in the corruption pipeline: choosing it (`families`), its summary (`cbar_err`, apart from the
mCE), the report's C-bar column, `cutmix-bench corrupt --families c-bar` and a suite run that evaluates it.
(The corruptions themselves are compared with the reference in test_oracles_cbar.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cutmix_bench.cifar_c.generate import check_request, family_names
from cutmix_bench.cifar_c.metrics import summary_rows
from cutmix_bench.cli import main
from cutmix_bench.corruptions import ALL, BENCHMARK, CBAR, corrupt_seeded
from cutmix_bench.errors import BenchError
from cutmix_bench.evaluations import ReportContext
from cutmix_bench.evaluations.corruptions import Corruptions

from helpers import REPO


def cells_of(names: list[str], offset: float = 0.0) -> pd.DataFrame:
    """Error of the i-th name at severity s: 10 i + s + offset."""
    return pd.DataFrame([{"metric": "top1_err", "subset": c, "level": s, "value": 10.0 * i + s + offset}
                         for i, c in enumerate(names) for s in range(1, 6)])


def test_families_choose_the_corruptions_and_c_stays_the_default() -> None:
    assert family_names(["c"]) == ALL and family_names(["c-bar"]) == CBAR
    assert family_names(["c-bar", "c"]) == ALL + CBAR  # the registry's order, whatever the list's
    assert Corruptions().corruptions == ALL and Corruptions(families=["c-bar"]).corruptions == CBAR
    assert Corruptions(corruptions=["ripple", "fog"]).corruptions == ["fog", "ripple"]
    with pytest.raises(BenchError, match=r"evaluations.corruptions.families: expected one or more of \['c', 'c-bar'\]"):
        Corruptions(families=["cbar"])
    with pytest.raises(BenchError, match="corruptions and families both given"):
        Corruptions(corruptions=["fog"], families=["c"])
    with pytest.raises(BenchError, match=r"evaluations.corruptions.params: 'imagenet', but the C-bar corruptions"):
        Corruptions(families=["c", "c-bar"], params="imagenet")
    assert check_request(["lines", "fog"], [5, 1], "cifar") == (["fog", "lines"], [1, 5])


def test_cbar_error_is_the_plain_mean_of_its_50_cells_and_not_in_the_mce() -> None:
    # C-bar corruption i (0..9) has error 10 i + s + 1000: the mean of 10 i over i < 10 is 45, of s is 3
    cells = pd.concat([cells_of(ALL), cells_of(CBAR, 1000.0)], ignore_index=True)
    rows = {(r["metric"], r.get("subset")): r for r in summary_rows(cells, clean_err=5.0)}
    assert rows[("cbar_err", None)]["value"] == pytest.approx(1048.0) and rows[("cbar_err", None)]["cells"] == 50
    assert rows[("relative_cbar_err", None)]["value"] == pytest.approx(1043.0)
    assert rows[("mce", None)]["value"] == pytest.approx(73.0)  # the 15 x 5 benchmark cells only
    assert rows[("corruption_err", "sparkles")]["value"] == pytest.approx(1083.0)  # CBAR[8]
    assert ("cbar_mean_err", None) not in rows
    partial = {r["metric"]: r for r in summary_rows(cells[cells["subset"].isin(["ripple", "lines"])
                                                          & cells["level"].isin([1, 5])], clean_err=1.0)}
    assert "cbar_err" not in partial and "mce" not in partial and "mean_err" not in partial
    assert partial["cbar_mean_err"]["cells"] == 4
    assert partial["cbar_mean_err"]["value"] == pytest.approx((1041 + 1045 + 1071 + 1075) / 4)  # ripple 4, lines 7
    assert partial["relative_cbar_mean_err"]["value"] == pytest.approx(1058.0 - 1.0)


def test_report_has_a_cbar_column_beside_the_mce_only_with_cbar_rows(tmp_path: Path) -> None:
    ctx = ReportContext(out_dir=tmp_path, figures_dir=tmp_path / "figures", methods=["baseline"])

    def report(names: list[str]) -> str:
        cells = pd.concat([cells_of(n, 1000.0 * (n is CBAR)) for n in names], ignore_index=True)
        rows = [{"metric": "clean_err", "value": 5.0}, *cells.to_dict("records"), *summary_rows(cells, 5.0)]
        return Corruptions.report(pd.DataFrame(rows).assign(method="baseline", seed=0, source="generated"), ctx)

    text = report([ALL, CBAR])

    def table(title: str) -> list[list[str]]:  # transposed: one row per quantity
        lines = text.split(f"{title}:\n\n")[1].split("\n\n")[0].splitlines()[2:]
        return [[c.strip() for c in line.strip("|").split("|")] for line in lines]

    summary = table("Summary by category")
    assert [row[0] for row in summary] == ["Clean err", "mCE", "Rel. mCE", "Noise", "Blur", "Weather", "Digital",
                                           "Extras", "C-bar", "Rel. C-bar"]
    assert summary[1][1] == "73.00" and [row[1] for row in summary[-2:]] == ["1048.00", "1043.00"]
    per_corruption = table("Per corruption (mean over its severities)")
    assert [row[0] for row in per_corruption[:4]] == ["Clean err", "mCE", "C-bar", "Gauss"]
    assert per_corruption[-2] == ["Sparkles", "1083.00"] and per_corruption[-1][0] == "TransChrom"
    assert "C-bar = plain mean error over the 10 CIFAR-10-C-bar corruptions x 5 severities" in text
    assert "no AlexNet normalisation exists for C-bar" in text
    assert "C-bar" not in report([ALL])
    assert "C-bar mean (50 cells)" not in text and "| C-bar |" not in report([BENCHMARK])


def test_corrupt_command_writes_a_cbar_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "test.npz", x=images, y=np.arange(6))
    out = tmp_path / "cbar"
    args = ["corrupt", "--dataset", "npz", "--data-root", str(tmp_path / "data"), "--out", str(out), "--families",
            "c-bar", "--severities", "2", "--workers", "1"]
    assert main(args) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["corruptions"] == CBAR and meta["severities"] == [2]
    assert np.array_equal(np.load(out / "labels.npy"), np.arange(6))
    for name in CBAR:
        assert np.array_equal(np.load(out / f"{name}.npy"), corrupt_seeded(name, images, 2, 0)), name
    assert main(args + ["--params", "imagenet"]) == 2
    assert "--params: 'imagenet', but the C-bar corruptions" in capsys.readouterr().err
    assert main(args + ["--corruptions", "lines"]) == 2
    assert "--corruptions and --families both given" in capsys.readouterr().err


def test_a_suite_evaluates_the_cbar_family(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    evaluation = "{severities: [1], families: [c-bar], calibration: false}"
    code = main(["run", str(REPO / "suites" / "smoke.yaml"), "--set", "seeds=[0]", "--set", "train.epochs=1",
                 "--set", "data.params={num_classes: 4, train_size: 128, test_size: 64}", "--set",
                 "data.train_subset=null", "--set", "methods={baseline: {}}", "--set", "device=cpu",
                 "--set", f"evaluations={{corruptions: {evaluation}}}", "--set", f"output_dir={out}"])
    assert code == 0
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    corruptions = results[results["evaluation"] == "corruptions"]
    assert sorted(corruptions.loc[corruptions["metric"] == "top1_err", "subset"]) == sorted(CBAR)
    mean = corruptions[corruptions["metric"] == "cbar_mean_err"]
    assert len(mean) == 1 and mean["value"].iloc[0] == pytest.approx(
        corruptions.loc[corruptions["metric"] == "top1_err", "value"].mean())
    assert set(corruptions.loc[corruptions["metric"].str.contains("cbar"), "unit"]) == {"percent",
                                                                                       "percentage points"}
    report = (out / "report.md").read_text()
    assert "C-bar mean (10 cells)" in report and "C-bar error (%)" in report  # the column and the summary row
