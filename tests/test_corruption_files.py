"""CIFAR-C style corruption sets: release format round trip, seeding, loader checks, cache, metrics
and the `corruptions` evaluation end to end on the smoke suite."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from cutmix_bench.cifar_c import cache as cache_module
from cutmix_bench.cifar_c.cache import cached_corruptions
from cutmix_bench.cifar_c.files import open_corruption_dir
from cutmix_bench.cifar_c.generate import generate
from cutmix_bench.cifar_c.metrics import summary_rows
from cutmix_bench.cli import main
from cutmix_bench.corruptions import ALL, BENCHMARK, CHUNK_SIZE, EXTRA, corrupt_seeded
from cutmix_bench.data import Split
from cutmix_bench.errors import BenchError
from cutmix_bench.evaluations import ReportContext
from cutmix_bench.evaluations.corruptions import Corruptions, subset_rows

ROOT = Path(__file__).resolve().parents[1]
PAIR = ["gaussian_noise", "contrast"]


def toy_set(n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def files_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.npy"))}


def test_generated_set_is_release_format_and_reads_back(tmp_path: Path) -> None:
    images, labels = toy_set()
    meta = generate(tmp_path, images, labels, "toy", corruptions=PAIR, seed=3)
    stored = np.load(tmp_path / "labels.npy", allow_pickle=False)
    assert stored.dtype == np.uint8 and np.array_equal(stored, np.tile(labels, 5))
    source = open_corruption_dir(tmp_path, PAIR, [1, 2, 3, 4, 5], labels, (32, 32))
    for name in PAIR:
        array = np.load(tmp_path / f"{name}.npy", allow_pickle=False)
        assert array.dtype == np.uint8 and array.shape == (100, 32, 32, 3)
        for s in range(1, 6):  # severity s = rows N(s-1) .. Ns-1, each the seeded corruption of the whole set
            expected = corrupt_seeded(name, images, s, 3, params="cifar")
            assert np.array_equal(array[20 * (s - 1):20 * s], expected)
            assert np.array_equal(source.images(name, s), expected)
    for file, digest in meta["files"].items():
        assert hashlib.sha256((tmp_path / file).read_bytes()).hexdigest() == digest
    assert meta["severities"] == [1, 2, 3, 4, 5] and meta["corruptions"] == PAIR and meta["images"] == 20


def test_same_seed_byte_identical_whatever_the_workers(tmp_path: Path) -> None:
    images, labels = toy_set(CHUNK_SIZE + 30)  # two chunks, each with its own generator
    names = ["impulse_noise", "contrast"]
    generate(tmp_path / "one", images, labels, "toy", corruptions=names, seed=0, workers=1)
    generate(tmp_path / "again", images, labels, "toy", corruptions=names, seed=0, workers=1)
    generate(tmp_path / "three", images, labels, "toy", corruptions=names, seed=0, workers=3)
    generate(tmp_path / "alone", images, labels, "toy", corruptions=["impulse_noise"], seed=0, severities=[2, 5])
    generate(tmp_path / "other", images, labels, "toy", corruptions=names, seed=1)
    one = files_bytes(tmp_path / "one")
    assert one == files_bytes(tmp_path / "again") == files_bytes(tmp_path / "three")
    n = len(images)
    alone = np.load(tmp_path / "alone" / "impulse_noise.npy")  # blocks don't depend on the other blocks requested
    assert np.array_equal(alone, np.load(tmp_path / "one" / "impulse_noise.npy")[np.r_[n:2 * n, 4 * n:5 * n]])
    partial = open_corruption_dir(tmp_path / "alone", ["impulse_noise"], [5], labels)  # blocks from metadata.json
    assert np.array_equal(partial.images("impulse_noise", 5), alone[n:])
    with pytest.raises(BenchError, match=r"metadata.json: severities \[1\] were not generated"):
        open_corruption_dir(tmp_path / "alone", ["impulse_noise"], [1, 5], labels)
    other = files_bytes(tmp_path / "other")
    assert one["impulse_noise.npy"] != other["impulse_noise.npy"]


def official_dir(root: Path, n: int = 8, names: tuple[str, ...] = ("fog", "pixelate")) -> tuple[np.ndarray, dict]:
    """A directory written by hand in the release layout: block s holds value 10*s + image index."""
    root.mkdir()
    labels = np.arange(n) % 3
    np.save(root / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    arrays = {}
    for k, name in enumerate(names):
        rows = np.concatenate([np.full((n, 32, 32, 3), 0, np.uint8) + (10 * s + np.arange(n) + k).astype(np.uint8)
                               [:, None, None, None] for s in range(1, 6)])
        np.save(root / f"{name}.npy", rows)
        arrays[name] = rows
    return labels, arrays


def test_loader_accepts_hand_made_official_directory(tmp_path: Path) -> None:
    labels, arrays = official_dir(tmp_path / "c")
    source = open_corruption_dir(tmp_path / "c", ["fog", "pixelate"], [2, 5], labels, (32, 32))
    assert source.size == 8 and source.severities == (1, 2, 3, 4, 5)
    assert np.array_equal(source.images("fog", 2), arrays["fog"][8:16])
    assert np.array_equal(source.images("pixelate", 5), arrays["pixelate"][32:40])
    index = np.array([5, 0, 7])
    subset = open_corruption_dir(tmp_path / "c", ["fog"], [3], labels[index], (32, 32), index)
    assert np.array_equal(subset.images("fog", 3), arrays["fog"][16 + index])


def reject(root: Path, labels: np.ndarray, culprit: Path, what: str) -> None:
    with pytest.raises(BenchError, match=re.escape(str(culprit)) + ".*" + what):
        open_corruption_dir(root, ["fog", "pixelate"], [1, 2, 3, 4, 5], labels, (32, 32))


def test_loader_rejects_bad_directories(tmp_path: Path) -> None:
    root = tmp_path / "c"
    labels, arrays = official_dir(root)
    (root / "pixelate.npy").unlink()
    reject(root, labels, root / "pixelate.npy", "not found")
    data = (root / "fog.npy").read_bytes()
    (root / "fog.npy").write_bytes(data[:-100])
    reject(root, labels, root / "fog.npy", "truncated")
    np.save(root / "fog.npy", arrays["fog"].astype(np.float32))
    np.save(root / "pixelate.npy", arrays["pixelate"])
    reject(root, labels, root / "fog.npy", "expected uint8")
    np.save(root / "fog.npy", arrays["fog"][:, :16])
    reject(root, labels, root / "fog.npy", r"expected uint8 \[40, 32, 32, 3\]")
    np.save(root / "fog.npy", arrays["fog"])
    open_corruption_dir(root, ["fog", "pixelate"], [1, 2, 3, 4, 5], labels, (32, 32))  # repaired
    wrong = labels.copy()
    wrong[6] = (wrong[6] + 1) % 3
    reject(root, wrong, root / "labels.npy", "differ from the test set's .first difference at test image 6")
    reject(root, labels[:7], root / "labels.npy", "test set has 7 images")
    (root / "labels.npy").unlink()
    reject(root, labels, root / "labels.npy", "not found")


def test_cache_is_reused_and_a_corrupt_file_regenerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    images, labels = toy_set(12)
    root = cached_corruptions(tmp_path, "toy", images, labels, PAIR)
    files = {p: p.stat().st_mtime_ns for p in root.iterdir()}
    original = files_bytes(root)

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been reused")

    with monkeypatch.context() as patch:
        patch.setattr(cache_module, "generate", no_generation)
        assert cached_corruptions(tmp_path, "toy", images, labels, ["contrast"]) == root
    assert {p: p.stat().st_mtime_ns for p in root.iterdir()} == files
    other = images.copy()
    other[0, 0, 0, 0] ^= 1  # another test split gets its own entry
    assert cached_corruptions(tmp_path, "toy", other, labels, ["contrast"]) != root
    damaged = bytearray(original["contrast.npy"])
    damaged[-1] ^= 0xFF
    (root / "contrast.npy").write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, logger="cutmix_bench"):
        cached_corruptions(tmp_path, "toy", images, labels, PAIR)
    assert "contrast.npy" in caplog.text and "sha256" in caplog.text
    assert files_bytes(root) == original
    assert (root / "gaussian_noise.npy").stat().st_mtime_ns == files[root / "gaussian_noise.npy"]
    cached_corruptions(tmp_path, "toy", images, labels, ["fog"])  # added beside the others
    assert set(json.loads((root / "metadata.json").read_text())["files"]) == {"labels.npy", "fog.npy", *[
        f"{c}.npy" for c in PAIR]}


def _use_cache(cache_dir: Path, images: np.ndarray, labels: np.ndarray) -> None:
    cached_corruptions(cache_dir, "toy", images, labels, PAIR)


def test_parallel_runs_generate_the_cache_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = toy_set(12)
    real_generate = cache_module.generate

    def counted(*args: object, **kwargs: object) -> dict:
        with open(tmp_path / "generations", "a") as log:
            log.write("x")
        time.sleep(0.5)  # hold the lock long enough for the other process to be waiting on it
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(cache_module, "generate", counted)
    context = multiprocessing.get_context("fork")  # the children inherit the patched function
    processes = [context.Process(target=_use_cache, args=(tmp_path / "cache", images, labels)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0]
    assert (tmp_path / "generations").read_text() == "x"


def test_summary_metrics_match_hand_computation() -> None:
    # error of corruption i (position in ALL) at severity s is 10 i + s
    cells = pd.DataFrame([{"subset": c, "level": s, "value": 10.0 * i + s} for i, c in enumerate(ALL)
                          for s in range(1, 6)])
    assert ALL == BENCHMARK + EXTRA
    rows = {(r["metric"], r.get("subset"), r.get("level")): r for r in summary_rows(cells, clean_err=5.0)}
    assert rows[("mce", None, None)]["value"] == pytest.approx(73.0)  # mean of 10 i over i < 15 is 70, of s is 3
    assert rows[("mce", None, None)]["cells"] == 75
    assert rows[("relative_mce", None, None)]["value"] == pytest.approx(68.0)
    expected = {"noise": 13.0, "blur": 48.0, "weather": 88.0, "digital": 128.0}  # i in 0-2, 3-6, 7-10, 11-14
    for category, value in expected.items():
        assert rows[("category_err", category, None)]["value"] == pytest.approx(value)
    assert rows[("extra_err", None, None)]["value"] == pytest.approx(168.0)  # i in 15-18
    for s in range(1, 6):
        assert rows[("severity_err", None, s)]["value"] == pytest.approx(70.0 + s)
    assert rows[("corruption_err", "saturate", None)]["value"] == pytest.approx(183.0)
    partial = summary_rows(cells[cells["subset"].isin(PAIR) & cells["level"].isin([1, 5])], clean_err=1.0)
    names = {r["metric"]: r for r in partial}
    assert "mce" not in names and names["mean_err"]["cells"] == 4
    assert names["mean_err"]["value"] == pytest.approx((1 + 5 + 111 + 115) / 4)  # contrast is ALL[11]
    assert names["relative_mean_err"]["value"] == pytest.approx(57.0)


def test_report_tables_are_mean_and_std_over_seeds(tmp_path: Path) -> None:
    frames = []
    for method, offset in (("baseline", 10.0), ("cutmix", 0.0)):
        for seed, shift in ((0, 0.0), (1, 2.0)):  # two seeds 2 points apart: mean +1, sample std sqrt(2)
            values = [(c, s, 10.0 * i + s + offset + shift) for i, c in enumerate(ALL) for s in range(1, 6)]
            cells = pd.DataFrame([{"metric": "top1_err", "subset": c, "level": s, "value": v} for c, s, v in values])
            rows = [{"metric": "clean_err", "value": 5.0 + offset}, *cells.to_dict("records"),
                    *summary_rows(cells, 5.0 + offset)]
            frames.append(pd.DataFrame(rows).assign(method=method, seed=seed, source="generated, cifar, seed 0"))
    ctx = ReportContext(out_dir=tmp_path, figures_dir=tmp_path / "figures", methods=["baseline", "cutmix"])
    text = Corruptions.report(pd.concat(frames, ignore_index=True), ctx)
    main_table = text.split("Per corruption (mean over its severities):\n\n")[1].split("\n\n")[0].splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in main_table]
    assert cells[0] == ["Corruption", "Baseline", "CutMix"]  # transposed: 2 + 19 rows, page-wide
    assert [row[0] for row in cells[2:5]] == ["Clean err", "mCE", "Gauss"] and len(cells) == 2 + 2 + 19
    # mCE 73 + 10 + 1 and Gauss 3 + 10 + 1 (see test_summary_metrics_match_hand_computation)
    assert [row[1] for row in cells[2:5]] == ["15.00 ± 0.00", "84.00 ± 1.41", "14.00 ± 1.41"]
    assert cells[3][2] == "74.00 ± 1.41" and "**" not in text  # no best-mean bold: not a test
    assert "Rel. mCE" in text and "| Extras" in text and "Severity 5" in text
    assert (tmp_path / "figures" / "corruption_severity.png").stat().st_size > 1000


def test_report_keeps_the_column_of_a_corruption_whose_plugin_is_not_loaded(tmp_path: Path) -> None:
    """Rows of a plug-in corruption (not registered in this process) keep their per-corruption row."""
    cells = pd.DataFrame([{"metric": "top1_err", "subset": c, "level": s, "value": 10.0 * i + s}
                          for i, c in enumerate([*PAIR, "my_plugin_blur"]) for s in (1, 5)])
    rows = [{"metric": "clean_err", "value": 5.0}, *cells.to_dict("records"),
            *summary_rows(cells[cells["subset"].isin(PAIR)], 5.0),
            {"metric": "corruption_err", "subset": "my_plugin_blur", "value": 23.0}]
    frame = pd.DataFrame(rows).assign(method="baseline", seed=0, source="generated")
    ctx = ReportContext(out_dir=tmp_path, figures_dir=tmp_path / "figures", methods=["baseline"])
    main_table = Corruptions.report(frame, ctx).split("Per corruption (mean over its severities):\n\n")[1]
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in main_table.split("\n\n")[0].splitlines()]
    assert lines[-1] == ["my_plugin_blur", "23.00"], lines


def test_official_directory_follows_the_runs_test_subset(tmp_path: Path) -> None:
    """The context says how the split was drawn (`test_draw`); no file of the run folder is read."""
    official_dir(tmp_path / "c", n=8)
    positions = torch.arange(8)
    expected = Split(positions, positions).subset(3, 4).y.numpy()
    ctx = SimpleNamespace(test=Split(torch.zeros(3, 32, 32, 3, dtype=torch.uint8), torch.zeros(3)), test_draw=(3, 4),
                          run_dir=tmp_path / "no-such-folder")
    assert np.array_equal(subset_rows(tmp_path / "c", ctx), expected)
    assert not np.array_equal(expected, Split(positions, positions).subset(3, 5).y.numpy())  # the seed matters
    ctx.test = Split(torch.zeros(5, 32, 32, 3, dtype=torch.uint8), torch.zeros(5))
    with pytest.raises(BenchError, match="holds 8 images per severity but the run's test split has 5"):
        subset_rows(tmp_path / "c", ctx)


def test_corrupt_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "c"
    args = ["corrupt", "--dataset", "synthetic", "--out", str(out), "--corruptions", "contrast", "--workers", "1"]
    assert main(args + ["--severities", "1,2"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["severities"] == [1, 2] and np.load(out / "contrast.npy").shape == (2000, 32, 32, 3)
    assert main(args[:-4] + ["--corruptions", "contrast,nope"]) == 2
    assert "--corruptions: unknown corruption(s) ['nope']" in capsys.readouterr().err


def test_smoke_suite_reports_corruptions(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    evaluation = "{severities: [1, 5], corruptions: [gaussian_noise, contrast]}"
    code = main(["run", str(ROOT / "suites" / "smoke.yaml"), "--set", "seeds=[0]", "--set", "train.epochs=1",
                 "--set", "data.params={num_classes: 4, train_size: 128, test_size: 64}", "--set",
                 "methods={baseline: {}, cutmix: {alpha: 1.0, prob: 1.0}}", "--set", "device=cpu",
                 "--set", f"evaluations={{clean: {{}}, corruptions: {evaluation}}}", "--set", f"output_dir={out}"])
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    cells = results[(results["evaluation"] == "corruptions") & (results["metric"] == "top1_err")]
    assert len(cells) == 2 * 4 and set(cells["level"]) == {1, 5}
    report = (out / "report.md").read_text()
    assert "## Corruption robustness (CIFAR-C)" in report and "Mean err (4 cells)" in report
    severity_header = next(line for line in report.splitlines() if "Severity" in line)
    assert [c.strip() for c in severity_header.strip("|").split("|")] == ["Method", "Clean", "Severity 1", "Severity 5"]
    assert "figures/corruption_severity.png" in report and (out / "figures" / "corruption_severity.png").is_file()
    assert len(list((out / "cache" / "corruptions").glob("*/contrast.npy"))) == 1  # both runs share one set
