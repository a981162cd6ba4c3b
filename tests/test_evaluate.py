"""`cutmix-bench evaluate` and `cb.evaluate`: published checkpoint formats give the logits of their official
networks (oracles_published.py, re-written from the official sources), a finished run evaluated again gives its
recorded numbers exactly, and each bad model (class count, image size, key) is one clear error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from oracles_published import OfficialCifarResNet, OfficialPyramidNet, OpenOODResNet18, randomise, save_cutmix_official

from cutmix_bench.checkpoints import CUTMIX_CIFAR, OPENOOD
from cutmix_bench.cli import main
from cutmix_bench.data import create_dataset
from cutmix_bench.evaluations.clean import classification_metrics
from cutmix_bench.scoring import ModelSpec, load_model

from helpers import REPO

CLASSES, TEST = 4, 48
DATA = ["--data", "synthetic", "--set", f"data.params={{num_classes: {CLASSES}, train_size: 16, test_size: {TEST}}}",
        "--set", "train.channels_last=false", "--device", "cpu"]


def dataset():
    return create_dataset("synthetic", num_classes=CLASSES, train_size=16, test_size=TEST)


def normalised(x: np.ndarray, norm: tuple[list[float], list[float]]) -> torch.Tensor:
    """As torchvision's ToTensor + Normalize in the official test transforms."""
    x01 = torch.as_tensor(x).permute(0, 3, 1, 2).float().div(255)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in norm)
    return (x01 - mean) / std


def evaluate(tmp_path: Path, *args: str) -> pd.DataFrame:
    assert main(["evaluate", *DATA, "--out", str(tmp_path / "out"), *args]) == 0
    return pd.read_csv(tmp_path / "out" / "results.csv")


def clean_metrics(results: pd.DataFrame, label: str) -> dict[str, float]:
    rows = results[(results["method"] == label) & (results["evaluation"] == "clean")]
    return dict(zip(rows["metric"], rows["value"], strict=True))


OFFICIAL = {  # format, our model, its parameters, the oracle, how it is saved
    "cutmix-pyramidnet-bottleneck": ("cutmix-official", "pyramidnet", {"depth": 11, "widening": 12},
                                     lambda: OfficialPyramidNet(11, 12, CLASSES, True), "pyramidnet"),
    "cutmix-pyramidnet-basic": ("cutmix-official", "pyramidnet", {"depth": 14, "widening": 24, "bottleneck": False},
                                lambda: OfficialPyramidNet(14, 24, CLASSES, False), "pyramidnet"),
    "cutmix-resnet20": ("cutmix-official", "resnet20", {}, lambda: OfficialCifarResNet(20, CLASSES), "resnet"),
    "openood-resnet18": ("openood", "resnet18", {}, lambda: OpenOODResNet18(CLASSES), None),
}


def save_official(oracle: torch.nn.Module, path: Path, arch: str | None) -> None:
    if arch is None:  # OpenOOD saves net.state_dict() as it is
        torch.save(oracle.state_dict(), path)
    else:
        save_cutmix_official(oracle, str(path), arch)


@pytest.mark.parametrize("case", list(OFFICIAL))
def test_official_checkpoint_gives_the_oracles_logits_and_metrics(case: str, tmp_path: Path) -> None:
    fmt, name, params, build, arch = OFFICIAL[case]
    oracle = randomise(build(), seed=3)
    path = tmp_path / "model.pth.tar"
    save_official(oracle, path, arch)
    data = dataset()
    test = data.load("test")
    norm = CUTMIX_CIFAR if fmt == "cutmix-official" else OPENOOD[CLASSES] if CLASSES in OPENOOD else None
    spec = ModelSpec("m", "checkpoint", path, name, params, fmt, normalisation=None if norm else "imagenet")
    loaded = load_model(spec, data)
    norm = loaded.normalisation
    x = normalised(test.x.numpy(), norm)
    with torch.inference_mode():
        expected, ours = oracle(x), loaded.model.eval()(x)
        if isinstance(oracle.avgpool, torch.nn.AvgPool2d):
            # the official AvgPool2d(8) and our AdaptiveAvgPool2d(1) sum the 64 values in another order (last bits);
            # with the oracle's pool swapped for ours, every other op is the same: the same bits
            assert (ours - expected).abs().max() <= 2e-6 * expected.abs().max()
            oracle.avgpool = torch.nn.AdaptiveAvgPool2d(1)
            assert torch.equal(ours, oracle(x))
        else:
            assert torch.equal(ours, expected)
    results = evaluate(tmp_path, "--model", name, "--model-params", yaml.safe_dump(params, default_flow_style=True),
                       "--format", fmt, "--checkpoint", f"m={path}",
                       *([] if fmt == "cutmix-official" else ["--normalisation", "imagenet"]))
    recorded, oracle_metrics = clean_metrics(results, "m"), classification_metrics(expected, test.y)
    assert recorded["top1_err"] == oracle_metrics["top1_err"] and recorded["top5_err"] == oracle_metrics["top5_err"]
    assert recorded == pytest.approx(oracle_metrics, rel=1e-6, abs=1e-9)


def test_cutmix_normalisation_is_the_official_one() -> None:
    assert CUTMIX_CIFAR == ([125.3 / 255, 123.0 / 255, 113.9 / 255], [63.0 / 255, 62.1 / 255, 66.7 / 255])


def test_openood_normalisation_follows_the_class_count(tmp_path: Path) -> None:
    oracle = randomise(OpenOODResNet18(10), seed=1)
    torch.save(oracle.state_dict(), tmp_path / "best.ckpt")
    data = create_dataset("synthetic", num_classes=10, train_size=16, test_size=8)
    loaded = load_model(ModelSpec("m", "checkpoint", tmp_path / "best.ckpt", "resnet18", {}, "openood"), data)
    assert loaded.normalisation == OPENOOD[10] and loaded.input_size == 32


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny suite (2 methods, 1 epoch) run to the end."""
    root = tmp_path_factory.mktemp("suite")
    suite = {"name": "tiny", "data": {"name": "synthetic", "params": {"num_classes": CLASSES, "train_size": 128,
                                                                      "test_size": 64}},
             "model": {"name": "tiny", "params": {"width": 4}},
             "train": {"epochs": 1, "batch_size": 32, "threads": 1}, "methods": {"baseline": {}, "cutmix": {}},
             "seeds": [0], "output_dir": str(root / "out"),
             "evaluations": {"clean": {}, "occlusion": {"max_images": 32, "sizes": [8]},
                             "ood": {"far": ["gaussian"], "scores": ["msp", "energy"], "max_images": 64}}}
    (root / "suite.yaml").write_text(yaml.safe_dump(suite))
    assert main(["run", str(root / "suite.yaml"), "--quiet"]) == 0
    return root / "out"


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[frame["evaluation"] != "train"].drop(columns=["setup"])
    keys = [c for c in frame.columns if c != "value"]
    return frame.sort_values(keys).reset_index(drop=True)


def test_evaluating_a_finished_run_reproduces_its_numbers_exactly(finished_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    assert main(["evaluate", "--run", str(finished_run / "runs" / "baseline-s0"), "--run",
                 str(finished_run / "runs" / "cutmix-s0"), "--out", str(out)]) == 0
    recorded, again = pd.read_csv(finished_run / "results.csv"), pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(comparable(recorded), comparable(again), check_exact=True)
    # the run's own Lightning checkpoint read as a `lightning` checkpoint of `tiny`: the same numbers again
    lightning = tmp_path / "lightning"
    assert main(["evaluate", "--run", str(finished_run / "runs" / "cutmix-s0"), "--out", str(lightning)]) == 0
    report = (out / "report.md").read_text()
    assert "| Baseline" in report and "CutMix" in report and "cutmix-bench evaluate" in report


def test_a_checkpoint_evaluated_beside_the_trained_runs_shares_their_report(finished_run: Path,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "beside"
    shutil.copytree(finished_run, out)
    before = {p: p.read_bytes() for p in (out / "runs").rglob("*") if p.is_file()}
    assert main(["evaluate", "--model", "tiny", "--model-params", "{width: 4}", "--format", "lightning",
                 "--normalisation", "dataset", "--checkpoint", f"again={out / 'runs' / 'cutmix-s0' / 'last.ckpt'}",
                 "--set", "evaluations.ood.scores=[msp, energy]", "--out", str(out),
                 str(finished_run.parent / "suite.yaml")]) == 0
    after = {p: p.read_bytes() for p in before}
    assert after == before  # the trained runs' files are untouched
    results = pd.read_csv(out / "results.csv")
    assert list(dict.fromkeys(results["method"])) == ["baseline", "cutmix", "again"]
    mine = comparable(results[results["method"] == "again"]).drop(columns=["run", "method", "model"])
    theirs = comparable(results[results["method"] == "cutmix"]).drop(columns=["run", "method", "model"])
    pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
    assert "| Again" in (out / "report.md").read_text() or "again" in (out / "report.md").read_text()
    assert main(["compare", str(finished_run), str(out), "--out", str(tmp_path / "c.md")]) == 0
    assert main(["report", str(out)]) == 0


def test_torchscript_and_exported_programs_give_the_checkpoints_numbers(tmp_path: Path) -> None:
    oracle = randomise(OpenOODResNet18(CLASSES), seed=5)
    torch.save(oracle.state_dict(), tmp_path / "best.ckpt")
    x = torch.zeros(2, 3, 32, 32)
    torch.jit.save(torch.jit.trace(oracle, x), tmp_path / "scripted.pt")
    batch = torch.export.Dim("batch", min=1)
    torch.export.save(torch.export.export(oracle, (x,), dynamic_shapes={"x": {0: batch}}), tmp_path / "exported.pt2")
    norm = ["--mean", ",".join(map(str, OPENOOD[10][0])), "--std", ",".join(map(str, OPENOOD[10][1]))]
    results = evaluate(tmp_path, "--model", "resnet18", "--format", "openood", "--checkpoint",
                       f"ckpt={tmp_path}/best.ckpt",
                       "--program", f"script={tmp_path}/scripted.pt", "--program", f"export={tmp_path}/exported.pt2",
                       *norm)
    reference = clean_metrics(results, "ckpt")
    for label in ("script", "export"):
        assert clean_metrics(results, label) == pytest.approx(reference, rel=1e-5, abs=1e-6)


def test_a_program_exported_with_a_fixed_batch_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, CLASSES))
    torch.export.save(torch.export.export(model, (torch.zeros(8, 3, 32, 32),)), tmp_path / "fixed.pt2")
    assert main(["evaluate", *DATA, "--out", str(tmp_path / "o"), "--normalisation", "dataset", "--program",
                 str(tmp_path / "fixed.pt2")]) == 2
    assert "fixed batch of 8" in one_error_line(capsys)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("cutmix-bench: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


def _pyramid(tmp_path: Path, classes: int = CLASSES, drop: str | None = None, extra: str | None = None) -> Path:
    state = randomise(OfficialPyramidNet(11, 12, classes, True), 0).state_dict()
    if drop:
        del state[drop]
    if extra:
        state[extra] = torch.zeros(1)
    path = tmp_path / "ck.pth.tar"
    torch.save({"arch": "pyramidnet", "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return path


PYRAMID = ["--model", "pyramidnet", "--model-params", "{depth: 11, widening: 12}", "--format", "cutmix-official"]
BAD = {  # name -> (arguments after the data, what the one error line must say)
    "class count": (lambda t: [*PYRAMID, "--checkpoint", str(_pyramid(t, classes=10))],
                    r"'fc\.weight' has shape \[10, 112\].*10 classes, the data 4"),
    "image size": (lambda t: [*PYRAMID, "--checkpoint", str(_pyramid(t)), "--set", "data.params.size=16"],
                   "takes 32-pixel images, the data .* 16-pixel"),
    "missing key": (lambda t: [*PYRAMID, "--checkpoint", str(_pyramid(t, drop="layer2.0.conv3.weight"))],
                    r"missing key for pyramidnet's 'blocks\.1\.body\.7\.weight'"),
    "unexpected key": (lambda t: [*PYRAMID, "--checkpoint", str(_pyramid(t, extra="layer1.0.se.weight"))],
                       r"unexpected key 'layer1\.0\.se\.weight'"),
    "no normalisation": (lambda t: ["--model", "resnet20", "--checkpoint", str(t / "plain.pt")],
                         "state the normalisation"),
    "wrong output": (lambda t: ["--normalisation", "dataset", "--program", str(t / "ten.pt")],
                     r"gives \[1, 10\] for one image, expected \[1, 4\]"),
    "pickled object": (lambda t: [*PYRAMID, "--checkpoint", str(t / "pickled.pt")], "weights_only=True"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_model_is_one_clear_error(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cutmix_bench.models import create_model

    torch.save(create_model("resnet20", CLASSES).state_dict(), tmp_path / "plain.pt")
    ten = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    torch.jit.save(torch.jit.script(ten), tmp_path / "ten.pt")
    torch.save({"state_dict": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")
    args, message = BAD[name]
    assert main(["evaluate", *DATA, "--out", str(tmp_path / "out"), *args(tmp_path)]) == 2
    assert re.search(message, one_error_line(capsys)), name
    assert not (tmp_path / "out" / "runs").exists()  # nothing written


def test_an_evaluated_label_never_writes_over_a_trained_run(finished_run: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(finished_run, out)
    before = (out / "runs" / "cutmix-s0" / "metrics.csv").read_bytes()
    assert main(["evaluate", "--model", "tiny", "--model-params", "{width: 4}", "--format", "lightning",
                 "--normalisation", "dataset", "--checkpoint", f"cutmix={out / 'runs' / 'baseline-s0' / 'last.ckpt'}",
                 "--out", str(out), str(finished_run.parent / "suite.yaml")]) == 2
    assert "did not write" in one_error_line(capsys)
    assert (out / "runs" / "cutmix-s0" / "metrics.csv").read_bytes() == before


def readme_api_example() -> str:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return next(b for b in blocks if "cb.evaluate(" in b)


def test_the_readme_api_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_api_example(), "README.md", "exec"), namespace)  # noqa: S102 (our own README's example)
    table = namespace["table"]
    assert {"evaluation", "metric", "value"} <= set(table.columns)
    assert (tmp_path / "scored" / "report.md").is_file()
    errors = table[(table["evaluation"] == "clean") & (table["metric"] == "top1_err")]["value"]
    assert len(errors) == 1 and 0 <= errors.iloc[0] <= 100


@pytest.mark.parametrize("path", sorted((REPO / "suites" / "published").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_published_suites_validate_with_their_reference(path: Path) -> None:
    from cutmix_bench.scoring import evaluation_suite

    label = next(iter(yaml.safe_load(path.read_text())["reference"]["results"]))
    suite, reference = evaluation_suite(path, [], [ModelSpec(label, "checkpoint")])
    assert reference is not None and reference.results[label]["top1_err"] in (22.75, 14.47)
    assert reference.results[label].get("auroc_near", 80.27) == 80.27
    assert suite.data.name == "cifar100" and "clean" in suite.evaluations


def test_files_under_one_label_are_its_seeds_beside_their_published_numbers(finished_run: Path,
                                                                             tmp_path: Path) -> None:
    suite = yaml.safe_load((finished_run.parent / "suite.yaml").read_text())
    suite["reference"] = {"citation": "A paper", "results": {"both": {"top1_err": 12.5, "auroc_far": 91.25}}}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    runs = finished_run / "runs"
    assert main(["evaluate", str(tmp_path / "suite.yaml"), "--model", "tiny", "--model-params", "{width: 4}",
                 "--format", "lightning", "--normalisation", "dataset", "--out", str(tmp_path / "out"),
                 "--checkpoint", f"both={runs / 'baseline-s0' / 'last.ckpt'}",
                 "--checkpoint", f"both={runs / 'cutmix-s0' / 'last.ckpt'}"]) == 0
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    recorded = pd.read_csv(finished_run / "results.csv")
    for seed, method in ((0, "baseline"), (1, "cutmix")):
        mine = comparable(results[results["seed"] == seed]).drop(columns=["run", "method", "model", "seed"])
        theirs = comparable(recorded[recorded["method"] == method]).drop(columns=["run", "method", "model", "seed"])
        pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
    report = (tmp_path / "out" / "report.md").read_text()
    published = [line for line in report.splitlines() if "published" in line and line.startswith("|")]
    assert any("12.50" in line for line in published) and any("91.25" in line for line in published)
    assert "±" in report  # two seeds: mean ± std


def test_cutmix_imagenet_resnet_reads_with_torchvision_names_and_imagenet_preprocessing(tmp_path: Path) -> None:
    from torchvision.models import resnet18

    official = randomise(resnet18(num_classes=1000), seed=2)  # CutMix's ImageNet resnet.py is torchvision's
    save_cutmix_official(official, str(tmp_path / "imagenet.pth.tar"), "resnet")
    data = create_dataset("synthetic", num_classes=1000, train_size=1, test_size=2, size=224)
    loaded = load_model(ModelSpec("m", "checkpoint", tmp_path / "imagenet.pth.tar", "torchvision:resnet18", {},
                                  "cutmix-official"), data)
    assert loaded.normalisation == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) and loaded.input_size == 224
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(loaded.model.eval()(x), official(x))


def test_a_timm_model_brings_its_own_preprocessing_and_size(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("timm")
    from cutmix_bench.models import create_model

    model = create_model("timm:resnet10t", CLASSES)
    torch.save(model.state_dict(), tmp_path / "timm.pth")
    loaded = load_model(ModelSpec("m", "checkpoint", tmp_path / "timm.pth", "timm:resnet10t"), dataset())
    assert loaded.normalisation == (list(model.pretrained_cfg["mean"]), list(model.pretrained_cfg["std"]))
    side = model.pretrained_cfg["input_size"][-1]
    assert main(["evaluate", *DATA, "--out", str(tmp_path / "o"), "--model", "timm:resnet10t", "--checkpoint",
                 str(tmp_path / "timm.pth")]) == 2
    assert f"takes {side}-pixel images, the data (synthetic) has 32-pixel images" in one_error_line(capsys)


def test_a_run_scored_on_data_of_other_classes_is_one_clear_error(finished_run: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--run", str(finished_run / "runs" / "cutmix-s0"), "--set",
                 "data.params.num_classes=7", "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys)
    assert "does not fit tiny for the 7 classes" in line and "delete" not in line
    assert (finished_run / "runs" / "cutmix-s0" / "DONE").is_file()


def test_evaluating_beside_a_failed_run_keeps_that_failure_in_the_report(finished_run: Path, tmp_path: Path) -> None:
    """`evaluate` ends as `run` and `report` do (finish.finish_suite): a suite run that failed in this folder
    stays in failures.json and the report's failure section (it used to be written as {})."""
    out = tmp_path / "failed"
    shutil.copytree(finished_run, out)
    broken = out / "runs" / "cutmix-s0"
    (broken / "DONE").unlink()
    (broken / "FAILED").write_text("RuntimeError: the test broke it\n\ntraceback\n")
    assert main(["evaluate", "--model", "tiny", "--model-params", "{width: 4}", "--format", "lightning",
                 "--normalisation", "dataset", "--checkpoint", f"again={out / 'runs' / 'baseline-s0' / 'last.ckpt'}",
                 "--set", "evaluations.ood.scores=[msp, energy]", "--out", str(out),
                 str(finished_run.parent / "suite.yaml")]) == 0
    failures = json.loads((out / "failures.json").read_text())
    assert failures == {"cutmix-s0": "RuntimeError: the test broke it"}
    assert "the test broke it" in (out / "report.md").read_text()
