"""Suite files: shipped suites validate, every mistake is one BenchError naming the key path,
`--set` overrides reach any schema key, and relative paths resolve against the right directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cutmix_bench.errors import BenchError
from cutmix_bench.suite_file import load_suite

REPO_ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((REPO_ROOT / "suites").glob("*.yaml"))

MINIMAL = {
    "name": "t",
    "data": {"name": "synthetic", "params": {"num_classes": 4}},
    "model": {"name": "tiny"},
    "train": {"epochs": 1, "batch_size": 8},
    "methods": {"baseline": {}, "cutmix": {"alpha": 1.0, "prob": 0.5}},
    "seeds": [0, 1],
}


def write_suite(directory: Path, suite: dict, name: str = "suite.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def with_change(key: str, value: object) -> dict:
    """A copy of MINIMAL with `key` (a dotted path) set to `value`."""
    suite = yaml.safe_load(yaml.safe_dump(MINIMAL))
    *parents, last = key.split(".")
    node = suite
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return suite


def error_of(path: Path, overrides: list[str] = ()) -> str:
    with pytest.raises(BenchError) as info:
        load_suite(path, list(overrides))
    message = str(info.value)
    assert "\n" not in message, "the error must be one line"
    return message


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_shipped_suites_validate(path: Path) -> None:
    suite = load_suite(path)
    assert suite.seeds and suite.methods and suite.train.epochs > 0
    if suite.data.root is not None:
        assert Path(suite.data.root).is_absolute()


@pytest.mark.parametrize("stem", ["smoke", "cifar100", "cifar100-paper", "cifar10"])
def test_spine_suites_compare_the_four_methods(stem: str) -> None:
    suite = load_suite(REPO_ROOT / "suites" / f"{stem}.yaml")
    assert suite.name == stem
    assert list(suite.methods) == ["baseline", "cutout", "mixup", "cutmix"]


def test_paper_suite_has_the_cutmix_paper_recipe() -> None:
    suite = load_suite(REPO_ROOT / "suites" / "cifar100-paper.yaml")
    assert suite.model.name == "pyramidnet"
    assert suite.model.params == {"depth": 200, "widening": 240, "bottleneck": True}
    assert (suite.train.epochs, suite.train.batch_size) == (300, 64)
    opt, sched = suite.train.optimizer, suite.train.schedule
    assert (opt.name, opt.lr, opt.momentum, opt.nesterov, opt.weight_decay) == ("sgd", 0.25, 0.9, True, 1e-4)
    assert (sched.name, sched.milestones, sched.gamma) == ("multistep", [150, 225], 0.1)
    assert suite.methods["cutmix"] == {"alpha": 1.0, "prob": 0.5}
    assert suite.methods["cutout"] == {"size": 16} and suite.methods["mixup"] == {"alpha": 1.0}
    assert len(suite.seeds) == 3


def test_minimal_suite_fills_defaults(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, MINIMAL))
    assert suite.evaluations == {"clean": {}}
    assert suite.output_dir is None
    assert suite.train.optimizer.name == "sgd" and suite.train.schedule.name == "cosine"
    assert suite.method_spec("cutmix") == ("cutmix", {"alpha": 1.0, "prob": 0.5})


def test_method_label_can_name_a_registered_method(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, with_change("methods.cutmix_a05", {"method": "cutmix", "alpha": 0.5})))
    assert suite.method_spec("cutmix_a05") == ("cutmix", {"alpha": 0.5})


def test_null_method_parameters_mean_defaults(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(MINIMAL).replace("baseline: {}", "baseline:"))
    assert load_suite(path).methods["baseline"] == {}


# ---------------------------------------------------------------- errors name the key path


@pytest.mark.parametrize("key,value,expected", [
    ("colour", "red", "colour"),                              # unknown top-level key
    ("train.epochz", 3, "train.epochz"),                       # unknown nested key
    ("train.optimizer.momentun", 0.9, "train.optimizer.momentun"),
    ("data.subset", 10, "data.subset"),
    ("train.epochs", "two", "train.epochs"),                   # wrong types
    ("train.batch_size", [64], "train.batch_size"),
    ("seeds", 0, "seeds"),
    ("methods", ["cutmix"], "methods"),
    ("train.optimizer", "sgd", "train.optimizer"),
    ("train.epochs", 0, "train.epochs"),                       # out of range
    ("train.batch_size", -1, "train.batch_size"),
    ("train.optimizer.lr", 0.0, "train.optimizer.lr"),
    ("train.optimizer.momentum", 1.0, "train.optimizer.momentum"),
    ("train.optimizer.weight_decay", -1e-4, "train.optimizer.weight_decay"),
    ("data.train_subset", 0, "data.train_subset"),
    ("seeds", [], "seeds"),
    ("train.optimizer.name", "lamb", "train.optimizer.name"),  # not one of the choices
    ("train.precision", "fp8", "train.precision"),
    ("device", "tpu", "device"),
    ("methods.cutmax", {}, "methods.cutmax"),                  # unknown component names
    ("methods.mine", {"method": "cutmax"}, "methods.mine"),
    ("model.name", "resnet19", "model.name"),
    ("evaluations", {"clean": {}, "cleen": {}}, "evaluations.cleen"),
    ("data.name", "cifar1000", "data.name"),
    ("methods.cutmix", {"alpha": 0.0}, "methods.cutmix"),      # component parameters
    ("methods.mixup", {"alpha": -1.0}, "methods.mixup"),
    ("methods.cutmix", {"prob": 1.5}, "methods.cutmix"),
    ("methods.cutmix", {"alpha": 1.0, "mode": "pixel"}, "methods.cutmix"),
    ("methods.cutout", {"size": 0}, "methods.cutout"),
    ("methods.cutmix", {"alpah": 1.0}, "methods.cutmix.alpah"),
    ("evaluations", {"clean": {"bins": 3}}, "evaluations.clean.bins"),
    ("model.params", {"depht": 20}, "model.params.depht"),
    ("data.params", {"num_clases": 4}, "data.params.num_clases"),
    ("methods", {}, "methods"),
])
def test_invalid_suite_gives_one_error_naming_the_key(tmp_path: Path, key: str, value: object, expected: str) -> None:
    message = error_of(write_suite(tmp_path, with_change(key, value)))
    assert expected in message


@pytest.mark.parametrize("label", ["train", "Train"])
def test_an_evaluation_label_the_training_rows_use_is_refused(tmp_path: Path, label: str) -> None:
    """eval/train.csv holds the training rows: an evaluation labelled `train` would never run (its file exists
    once the model is trained) and its rows would be read as training rows."""
    message = error_of(write_suite(tmp_path, with_change("evaluations", {"clean": {}, label: {"evaluation": "clean"}})))
    assert f"evaluations.{label}" in message and "reserved" in message


@pytest.mark.parametrize("label", ["../clean", "a/b", ".hidden", "x" * 65])
def test_evaluation_labels_are_checked_like_method_labels(tmp_path: Path, label: str) -> None:
    message = error_of(write_suite(tmp_path, with_change("evaluations", {label: {"evaluation": "clean"}})))
    assert message.startswith("evaluations: ") and "is not a valid name" in message


@pytest.mark.parametrize("key,value,word", [
    ("methods.cutmix", {"alpha": 0.0}, "alpha"), ("methods.mixup", {"alpha": -1.0}, "alpha"),
    ("methods.cutmix", {"prob": 1.5}, "prob"), ("methods.cutout", {"size": 0}, "size"),
])
def test_parameter_errors_name_the_parameter(tmp_path: Path, key: str, value: object, word: str) -> None:
    assert word in error_of(write_suite(tmp_path, with_change(key, value)))


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    suite = yaml.safe_load(yaml.safe_dump(MINIMAL))
    del suite["train"]["epochs"]
    assert "train.epochs" in error_of(write_suite(tmp_path, suite))


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: t\ntrain:\n  epochs: [1, 2\n  batch_size: 3\n")
    message = error_of(path)
    assert str(path) in message and "line" in message and "YAML" in message


def test_missing_suite_file_and_non_mapping(tmp_path: Path) -> None:
    assert "not found" in error_of(tmp_path / "absent.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    assert "mapping" in error_of(path)


# ---------------------------------------------------------------- overrides


def test_overrides_of_existing_and_default_keys(tmp_path: Path) -> None:
    path = write_suite(tmp_path, MINIMAL)
    suite = load_suite(path, ["train.epochs=2", "seeds=[0]", "methods.cutmix.alpha=0.5",
                              "train.optimizer.lr=0.05", "train.schedule.milestones=[1]",
                              "train.schedule.name=multistep",
                              "data.train_subset=100", "data.params.noise=0.1", "device=cpu"])
    assert suite.train.epochs == 2
    assert suite.seeds == [0]
    assert suite.methods["cutmix"] == {"alpha": 0.5, "prob": 0.5}
    assert suite.train.optimizer.lr == 0.05 and suite.train.optimizer.momentum == 0.9  # others keep defaults
    assert suite.train.schedule.milestones == [1]
    assert suite.data.train_subset == 100 and suite.data.params == {"num_classes": 4, "noise": 0.1}
    assert suite.device == "cpu"


def test_overrides_can_add_a_method_and_an_evaluation(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, MINIMAL), ["methods.mixup={alpha: 0.2}", "evaluations.clean.ece_bins=10"])
    assert suite.methods["mixup"] == {"alpha": 0.2}
    assert suite.evaluations["clean"] == {"ece_bins": 10}


@pytest.mark.parametrize("value,expected", [("32", "32"), ("'32'", "32"), ("bf16", "bf16"), ("auto", "auto")])
def test_precision_accepts_the_number_32(tmp_path: Path, value: str, expected: str) -> None:
    assert load_suite(write_suite(tmp_path, MINIMAL), [f"train.precision={value}"]).train.precision == expected


def test_override_values_are_validated(tmp_path: Path) -> None:
    path = write_suite(tmp_path, MINIMAL)
    assert "train.epochs" in error_of(path, ["train.epochs=0"])
    assert "methods.cutmix" in error_of(path, ["methods.cutmix.alpha=-1"])


@pytest.mark.parametrize("item,expected", [
    ("train.epochz=2", "train.epochz"),
    ("colour=red", "colour"),
    ("train.optimizer.lrr=0.1", "train.optimizer.lrr"),
    ("nothing.below.here=1", "nothing"),
    ("train.epochs", "train.epochs"),
    ("train.epochs.deeper=1", "train.epochs"),
])
def test_bad_overrides_are_errors(tmp_path: Path, item: str, expected: str) -> None:
    message = error_of(write_suite(tmp_path, MINIMAL), [item])
    assert expected in message and "--set" in message


# ---------------------------------------------------------------- path resolution


def test_paths_in_the_file_are_relative_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "suites").mkdir()
    suite = with_change("data", {"name": "npz", "root": "../data/x"})
    suite["output_dir"] = "out"
    path = write_suite(tmp_path / "suites", suite)
    monkeypatch.chdir("/")  # anything but the file's directory
    loaded = load_suite(path)
    assert Path(loaded.data.root).is_absolute() and Path(loaded.output_dir).is_absolute()
    assert Path(loaded.data.root).resolve() == (tmp_path / "data" / "x").resolve()
    assert Path(loaded.output_dir).resolve() == (tmp_path / "suites" / "out").resolve()


def test_paths_given_with_set_are_relative_to_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "work").mkdir()
    path = write_suite(tmp_path / "suites", MINIMAL)
    monkeypatch.chdir(tmp_path / "work")
    loaded = load_suite(path, ["data={name: npz}", "data.root=here/data", "output_dir=results/x"])
    assert Path(loaded.data.root) == tmp_path / "work" / "here" / "data"
    assert Path(loaded.output_dir) == tmp_path / "work" / "results" / "x"


def test_absolute_and_home_paths_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_suite(tmp_path, with_change("data", {"name": "npz", "root": "/abs/data"}))
    loaded = load_suite(path, ["output_dir=~/runs"])
    assert loaded.data.root == "/abs/data"
    assert Path(loaded.output_dir) == tmp_path / "home" / "runs"


def test_data_keys_the_dataset_does_not_take_are_errors(tmp_path: Path) -> None:
    """synthetic has no files: a data.root there is a mistake, caught before any run starts."""
    assert "data.root" in error_of(write_suite(tmp_path, with_change("data.root", "/abs/data")))
    assert "data.download" in error_of(write_suite(tmp_path, with_change("data.download", True)))


def test_non_path_strings_are_not_resolved(tmp_path: Path) -> None:
    loaded = load_suite(write_suite(tmp_path, MINIMAL), ["name=relative"])  # resolved, it would hold a "/"
    assert loaded.name == "relative"
