"""Data sources and the device loader: npz round trip and its errors, synthetic determinism and
learnability, the shared CIFAR files, crop/flip against a per-sample reference, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cutmix_bench.data import DATASETS, Split, create_dataset
from cutmix_bench.data.base import channel_stats
from cutmix_bench.data.cifar import STATS
from cutmix_bench.errors import BenchError
from cutmix_bench.training.loader import BatchLoader, crop_flip, normalise


def tiny_arrays(n: int, classes: int, seed: int, side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8), np.arange(n, dtype=np.int64) % classes


def write_npz_dir(root: Path, classes: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {"train": tiny_arrays(24, classes, 0), "test": tiny_arrays(12, classes, 1)}
    for split, (x, y) in arrays.items():
        np.savez(root / f"{split}.npz", x=x, y=y)
    return arrays


def reference_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255
    return flat.mean(0), flat.std(0, ddof=1)


# ---------------------------------------------------------------- npz


def test_npz_round_trip(tmp_path: Path) -> None:
    arrays = write_npz_dir(tmp_path / "d")
    dataset = create_dataset("npz", root=tmp_path / "d")
    assert dataset.num_classes == 4
    for split, (x, y) in arrays.items():
        loaded = dataset.load(split)
        assert loaded.x.dtype == torch.uint8 and loaded.y.dtype == torch.int64
        assert np.array_equal(loaded.x.numpy(), x) and np.array_equal(loaded.y.numpy(), y)
    mean, std = reference_stats(arrays["train"][0])
    assert np.allclose(dataset.mean, mean, atol=1e-12) and np.allclose(dataset.std, std, atol=1e-12)


def test_npz_class_count_from_classes_txt_and_grey_images(tmp_path: Path) -> None:
    x, y = tiny_arrays(6, 3, 2)
    np.savez(tmp_path / "test.npz", x=x[..., :1], y=y)  # only a test split, one channel
    (tmp_path / "classes.txt").write_text("\n".join(f"c{i}" for i in range(7)) + "\n")
    dataset = create_dataset("npz", root=tmp_path)
    assert dataset.num_classes == 7
    loaded = dataset.load("test")
    assert loaded.x.shape == (6, 8, 8, 3)
    assert all(torch.equal(loaded.x[..., c], torch.from_numpy(x[..., 0])) for c in range(3))


def test_channel_stats_equal_float_reference() -> None:
    x = np.random.default_rng(3).integers(0, 256, (40, 5, 7, 3), dtype=np.uint8)
    mean, std = channel_stats(torch.from_numpy(x))
    ref_mean, ref_std = reference_stats(x)
    assert np.allclose(mean, ref_mean, rtol=0, atol=1e-14) and np.allclose(std, ref_std, rtol=0, atol=1e-14)


@pytest.mark.parametrize("case,expected", [
    ("x_3d", "shape"), ("four_channels", "shape"), ("float_images", "uint8"), ("float_labels", "integers"),
    ("negative_label", "labels must be in"), ("label_too_large", "labels must be in"),
    ("length_mismatch", "labels must have shape"), ("pickled", "not a readable .npz"),
    ("missing_y", "missing array"), ("not_a_zip", "not a readable .npz"),
])
def test_bad_npz_files_name_the_path(tmp_path: Path, case: str, expected: str) -> None:
    x, y = tiny_arrays(6, 3, 4)
    path = tmp_path / "train.npz"
    arrays: dict[str, np.ndarray] = {"x": x, "y": y}
    if case == "x_3d":
        arrays["x"] = x[..., 0]
    elif case == "four_channels":
        arrays["x"] = np.concatenate([x, x[..., :1]], axis=3)
    elif case == "float_images":
        arrays["x"] = x.astype(np.float32)
    elif case == "float_labels":
        arrays["y"] = y.astype(np.float64)
    elif case == "negative_label":
        arrays["y"] = y - 1
    elif case == "label_too_large":
        (tmp_path / "classes.txt").write_text("a\nb\n")  # 2 classes, labels go up to 2
    elif case == "length_mismatch":
        arrays["y"] = y[:-1]
    elif case == "pickled":
        arrays["x"] = np.array([{"image": 1}, None], dtype=object)
    elif case == "missing_y":
        del arrays["y"]
    if case == "not_a_zip":
        path.write_bytes(b"this is not a zip archive")
    elif case == "pickled":
        np.savez(path, allow_pickle=True, **arrays)
    else:
        np.savez(path, **arrays)
    with pytest.raises(BenchError) as info:
        create_dataset("npz", root=tmp_path).load("train")
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_npz_data_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=str(tmp_path / "absent")):
        create_dataset("npz", root=tmp_path / "absent")
    with pytest.raises(BenchError, match=f"{tmp_path}.*neither train.npz nor test.npz"):
        create_dataset("npz", root=tmp_path)
    x, y = tiny_arrays(4, 2, 5)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    with pytest.raises(BenchError, match=str(tmp_path / "test.npz")):
        create_dataset("npz", root=tmp_path).load("test")
    with pytest.raises(BenchError, match="data.root"):
        create_dataset("npz")


def test_split_names_are_checked(tmp_path: Path) -> None:
    write_npz_dir(tmp_path)
    with pytest.raises(BenchError, match="'val'"):
        create_dataset("npz", root=tmp_path).load("val")


def test_subset_is_seeded_and_without_repeats() -> None:
    x, y = tiny_arrays(50, 5, 6)
    split = Split(torch.from_numpy(x), torch.from_numpy(y))
    a, b, c = split.subset(20, seed=0), split.subset(20, seed=0), split.subset(20, seed=1)
    assert len(a) == 20 and torch.equal(a.x, b.x) and not torch.equal(a.y, c.y)
    rows = {bytes(img.numpy()) for img in a.x}
    assert len(rows) == 20 and rows <= {bytes(img) for img in x}
    assert split.subset(None) is split and split.subset(50) is split


# ---------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_per_seed() -> None:
    params = {"num_classes": 5, "train_size": 60, "test_size": 30}
    a, b = create_dataset("synthetic", seed=3, **params), create_dataset("synthetic", seed=3, **params)
    other = create_dataset("synthetic", seed=4, **params)
    for split in ("train", "test"):
        assert a.load(split).x.numpy().tobytes() == b.load(split).x.numpy().tobytes()
        assert torch.equal(a.load(split).y, b.load(split).y)
        assert a.load(split).x.numpy().tobytes() != other.load(split).x.numpy().tobytes()
    assert not torch.equal(a.load("train").x[:30], a.load("test").x)
    assert a.mean == b.mean and a.std == b.std


@pytest.mark.parametrize("classes", [3, 10, 37])
def test_synthetic_classes_are_learnable(classes: int) -> None:
    """Nearest class mean (fitted on train) classifies the test split far above chance, but not
    perfectly: the default noise keeps the task hard enough for methods to differ."""
    dataset = create_dataset("synthetic", num_classes=classes, train_size=100 * classes, test_size=10 * classes)
    train, test = dataset.load("train"), dataset.load("test")
    assert dataset.num_classes == classes
    assert train.x.shape == (100 * classes, 32, 32, 3) and train.x.dtype == torch.uint8
    assert torch.equal(torch.bincount(test.y, minlength=classes), torch.full((classes,), 10))
    means = torch.stack([train.x[train.y == k].double().mean(0) for k in range(classes)])
    distance = ((test.x.double()[:, None] - means[None]) ** 2).flatten(2).sum(-1)
    accuracy = (distance.argmin(1) == test.y).double().mean().item()
    assert 1.5 / classes < accuracy < 1.0, accuracy  # chance is 1 / classes


def test_synthetic_bad_parameters() -> None:
    for params in ({"num_classes": 1}, {"train_size": 0}, {"size": 4}):
        with pytest.raises(BenchError, match="synthetic"):
            create_dataset("synthetic", **params)


# ---------------------------------------------------------------- CIFAR names


def test_cifar_without_root_or_data_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="data.root"):
        create_dataset("cifar100")
    with pytest.raises(BenchError) as info:
        create_dataset("cifar10", root=tmp_path / "nowhere").load("test")
    assert str(tmp_path / "nowhere") in str(info.value) and "download" in str(info.value)


def test_cifar_names_read_the_npz_layout(tmp_path: Path) -> None:
    arrays = write_npz_dir(tmp_path, classes=10)
    dataset = create_dataset("cifar10", root=tmp_path)
    assert dataset.num_classes == 10 and (dataset.mean, dataset.std) == STATS["cifar10"]
    assert np.array_equal(dataset.load("test").x.numpy(), arrays["test"][0])


@pytest.fixture(scope="module")
def cifar100(data_dir: Path):  # noqa: ANN201
    root = data_dir / "cifar100"
    if not (root / "train.npz").is_file():
        pytest.skip(f"{root}/train.npz not found")
    dataset = create_dataset("cifar100", root=root)
    return dataset, dataset.load("train"), dataset.load("test")


def test_shared_cifar100_matches_the_published_dataset(cifar100) -> None:  # noqa: ANN001
    dataset, train, test = cifar100
    assert dataset.num_classes == 100
    assert train.x.shape == (50000, 32, 32, 3) and test.x.shape == (10000, 32, 32, 3)
    assert torch.equal(torch.bincount(train.y, minlength=100), torch.full((100,), 500))
    assert torch.equal(torch.bincount(test.y, minlength=100), torch.full((100,), 100))
    mean, std = channel_stats(train.x)
    assert np.allclose(mean, STATS["cifar100"][0], atol=1e-3) and np.allclose(std, STATS["cifar100"][1], atol=1e-3)
    assert (dataset.mean, dataset.std) == STATS["cifar100"]


def test_shared_cifar10_test_split(data_dir: Path) -> None:
    root = data_dir / "cifar10"
    if not (root / "test.npz").is_file():
        pytest.skip(f"{root}/test.npz not found")
    dataset = create_dataset("cifar10", root=root)
    test = dataset.load("test")
    assert dataset.num_classes == 10 and test.x.shape == (10000, 32, 32, 3)
    assert torch.equal(torch.bincount(test.y, minlength=10), torch.full((10,), 1000))
    with pytest.raises(BenchError, match="train.npz"):
        dataset.load("train")


def test_every_registered_dataset_rejects_a_missing_root() -> None:
    for name in DATASETS.names():
        if name == "synthetic":
            continue
        with pytest.raises(BenchError, match="data.root"):
            create_dataset(name)


# ---------------------------------------------------------------- loader


def reference_crop_flip(x: torch.Tensor, rng: np.random.Generator, pad: int = 4) -> torch.Tensor:
    """Per sample: zero-pad, slice the crop, flip; the same three draws (rows, cols, flips) as the loader."""
    batch, height, width, _ = x.shape
    oy, ox = rng.integers(0, 2 * pad + 1, batch), rng.integers(0, 2 * pad + 1, batch)
    flip = rng.random(batch) < 0.5
    out = []
    for i in range(batch):
        image = F.pad(x[i].permute(2, 0, 1), (pad, pad, pad, pad))  # CHW, zero padding
        crop = image[:, oy[i]:oy[i] + height, ox[i]:ox[i] + width]
        out.append((crop.flip(2) if flip[i] else crop).permute(1, 2, 0))
    return torch.stack(out)


@pytest.mark.parametrize("height,width", [(32, 32), (12, 20)])
def test_crop_flip_equals_per_sample_reference(height: int, width: int) -> None:
    x = torch.from_numpy(np.random.default_rng(7).integers(1, 256, (64, height, width, 3), dtype=np.uint8))
    out = crop_flip(x, np.random.default_rng(8))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out, reference_crop_flip(x, np.random.default_rng(8)))


def test_crop_flip_covers_all_offsets_and_flips() -> None:
    """An image that is one bright pixel at (0, 0): its position after crop/flip reveals the draw."""
    x = torch.zeros(3000, 16, 16, 1, dtype=torch.uint8)
    x[:, 0, 0] = 255
    out = crop_flip(x, np.random.default_rng(9))[..., 0]
    visible = out.flatten(1).amax(1) > 0
    rows = out.amax(2).argmax(1)[visible]
    cols = out.amax(1).argmax(1)[visible]
    assert set(rows.tolist()) == set(range(5))  # offsets 0..8 move the pixel to rows 4..-4
    assert set(cols.tolist()) == set(range(5)) | set(range(11, 16))  # flipped copies land on the right
    assert 0.2 < visible.float().mean() < 0.4  # 5/9 * 5/9 of the crops keep the pixel


def loader_split(n: int = 50) -> Split:
    """Label i for sample i, so the labels of a batch identify its samples."""
    x, y = tiny_arrays(n, n, 10, side=16)
    return Split(torch.from_numpy(x), torch.from_numpy(y))


def test_train_loader_drops_last_and_covers_distinct_samples() -> None:
    split = loader_split(50)
    loader = BatchLoader(split, 16, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), torch.device("cpu"), train=True, seed=0)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    labels = torch.cat([y for _, y in batches])
    for x, y in batches:
        assert x.shape == (16, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.is_contiguous(memory_format=torch.channels_last)
    assert len(labels) == 48 and len(set(labels.tolist())) == 48  # 48 distinct samples, the last 2 dropped


def test_test_loader_keeps_order_and_normalises_exactly() -> None:
    split = loader_split(50)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    loader = BatchLoader(split, 16, mean, std, torch.device("cpu"), train=False)
    batches = list(loader)
    assert len(loader) == 4 == len(batches) and [len(y) for _, y in batches] == [16, 16, 16, 2]
    x = torch.cat([b[0] for b in batches])
    assert torch.equal(torch.cat([b[1] for b in batches]), split.y)
    expected = (split.x.permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[
        :, None, None]
    assert torch.allclose(x, expected, atol=1e-6)
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)


def test_normalise_output_is_channels_last_view() -> None:
    x = torch.randint(0, 256, (2, 4, 4, 3), dtype=torch.uint8)
    out = normalise(x, torch.zeros(3), torch.ones(3))
    assert out.shape == (2, 3, 4, 4) and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, x.permute(0, 3, 1, 2).float() / 255)


def epoch(loader: BatchLoader, number: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.sampler.set_epoch(number)
    return list(loader)


def test_train_batches_depend_only_on_seed_and_epoch() -> None:
    def make(seed: int) -> BatchLoader:
        return BatchLoader(loader_split(40), 8, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"), train=True, seed=seed)

    a, b, c = make(0), make(0), make(1)
    first = epoch(a, 0)
    second = epoch(a, 1)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(first, epoch(b, 0)))
    assert not torch.equal(first[0][1], second[0][1])
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(second, epoch(b, 1)))  # b skipped to epoch 1
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(first, epoch(a, 0)))  # replay after a resume
    assert not torch.equal(first[0][1], epoch(c, 0)[0][1])


def test_train_loader_smaller_than_a_batch_is_empty() -> None:
    loader = BatchLoader(loader_split(10), 16, (0.5,) * 3, (0.25,) * 3, torch.device("cpu"), train=True)
    assert len(loader) == 0 and list(loader) == []


# ---------------------------------------------------------------- imagefolder


def write_image_folder(root: Path, colours: dict[str, tuple[int, int, int]], per_class: int = 2) -> None:
    from PIL import Image

    for split in ("train", "test"):
        for name, colour in colours.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                size = (40 + 8 * i, 30)  # different sizes and aspect ratios
                Image.new("RGB", size, colour).save(root / split / name / f"{i}.png")


def test_imagefolder_reads_classes_sorted_and_resizes(tmp_path: Path) -> None:
    colours = {"zebra": (250, 10, 10), "apple": (10, 200, 30), "mango": (0, 0, 255)}
    write_image_folder(tmp_path, colours)
    dataset = create_dataset("imagefolder", root=tmp_path, size=16)
    assert dataset.num_classes == 3
    test = dataset.load("test")
    assert test.x.shape == (6, 16, 16, 3) and test.x.dtype == torch.uint8
    for image, label in zip(test.x, test.y):
        colour = colours[sorted(colours)[int(label)]]  # labels follow sorted folder names
        assert torch.equal(image, torch.tensor(colour, dtype=torch.uint8).expand(16, 16, 3))


def test_imagefolder_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=str(tmp_path)):
        create_dataset("imagefolder", root=tmp_path)
    write_image_folder(tmp_path, {"a": (1, 2, 3), "b": (4, 5, 6)})
    (tmp_path / "test" / "c").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "test" / "c" / "0.png")  # a class the training split lacks
    with pytest.raises(BenchError, match=f"{tmp_path / 'test'}: class folders \\['c'\\] are not among"):
        create_dataset("imagefolder", root=tmp_path, size=8).load("test")
    (tmp_path / "test" / "d").mkdir()  # a class folder without images
    with pytest.raises(BenchError, match=f"{tmp_path / 'test'}: .*classes d"):
        create_dataset("imagefolder", root=tmp_path, size=8).load("test")
