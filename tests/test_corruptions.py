"""The 19 corruptions: contract, seeding, severity ordering on real images, and fidelity to `imagecorruptions`.

Real images: the first 200 of cifar100/test.npz under $CUTMIX_BENCH_DATA or ../shared/data (skipped if absent).
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters
from PIL import Image

from cutmix_bench import corruptions as C
from cutmix_bench.corruptions import blur, digital, imagecorruptions_compat, parallel
from cutmix_bench.corruptions.params import CIFAR, IMAGENET
from cutmix_bench.corruptions.registry import CorruptionRegistry
from cutmix_bench.errors import BenchError

from helpers import LegacyRng, data_root

# no randomness at all: equal outputs for any two generators
DETERMINISTIC = {"defocus_blur", "zoom_blur", "gaussian_blur", "contrast", "brightness", "saturate",
                 "jpeg_compression", "pixelate"}


@pytest.fixture(scope="module")
def real_images(data_dir: Path) -> np.ndarray:
    path = data_dir / "cifar100" / "test.npz"
    if not path.is_file():
        pytest.skip(f"real data not found at {path}")
    with np.load(path) as data:
        return np.ascontiguousarray(data["x"][:200])


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Smooth random colour images (blurred noise) so that blurs and JPEG act as on photographs."""
    rng = np.random.default_rng(123)
    noise = rng.uniform(0, 255, size=(6, 32, 32, 3))
    return np.clip(ndi.gaussian_filter(noise, (0, 1.5, 1.5, 0)) * 3 - 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(images: np.ndarray) -> np.ndarray:
    """Six real test images when the data is present, else the synthetic ones: the fidelity checks compare two
    implementations of the same algorithm, which must agree on any input, so they always run."""
    path = data_root() / "cifar100" / "test.npz"
    if not path.is_file():
        return images
    with np.load(path) as data:
        return np.ascontiguousarray(data["x"][:6])


def test_names_follow_the_release_order() -> None:
    ic = imagecorruptions_compat.load()
    assert C.ALL == ic.get_corruption_names("all") and len(C.BENCHMARK) == 15 and len(C.EXTRA) == 4
    assert C.EXTRA == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    for category in ("noise", "blur", "weather", "digital"):
        assert [n for n in C.BENCHMARK if C.CATEGORY[n] == category] == ic.get_corruption_names(category)
    assert set(C.CATEGORY) == set(C.ALL) == set(C.OPS) == set(CIFAR)
    assert set(IMAGENET) == set(C.ALL) - {"elastic_transform"}


@pytest.mark.parametrize("name", C.ALL)
def test_uint8_same_shape_and_seeded(name: str, images: np.ndarray) -> None:
    for severity in C.SEVERITIES:
        first = C.corrupt(name, images, severity, np.random.default_rng(7))
        again = C.corrupt(name, images, severity, np.random.default_rng(7))
        other = C.corrupt(name, images, severity, np.random.default_rng(8))
        assert first.dtype == np.uint8 and first.shape == images.shape
        assert first.tobytes() == again.tobytes()
        assert (first.tobytes() == other.tobytes()) == (name in DETERMINISTIC), severity
        assert not np.array_equal(first, images), severity


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_batching_does_not_change_deterministic_results(name: str, images: np.ndarray) -> None:
    batch = C.corrupt(name, images, 3, np.random.default_rng(0))
    single = np.concatenate([C.corrupt(name, images[i:i + 1], 3, np.random.default_rng(0))
                             for i in range(len(images))])
    assert np.array_equal(batch, single)


def test_seeded_sets_do_not_depend_on_chunk_order(images: np.ndarray) -> None:
    many = np.concatenate([images] * 4)  # 24 images, chunks of 5
    whole = C.corrupt_seeded("impulse_noise", many, 4, seed=11, chunk_size=5)
    assert whole.tobytes() == C.corrupt_seeded("impulse_noise", many, 4, seed=11, chunk_size=5).tobytes()
    pieces = {k: C.corrupt("impulse_noise", many[5 * k:5 * k + 5], 4, C.chunk_rng(11, "impulse_noise", 4, k))
              for k in reversed(range(5))}  # as a pool might finish them
    assert np.array_equal(whole, np.concatenate([pieces[k] for k in range(5)]))
    assert not np.array_equal(whole, C.corrupt_seeded("impulse_noise", many, 4, seed=12, chunk_size=5))
    # chunks with equal images still get independent noise
    assert not np.array_equal(whole[0:5], whole[6:11])


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


def test_distance_grows_with_severity(real_images: np.ndarray) -> None:
    """mean |corrupted - clean| (grey levels) per severity, CIFAR-10-C parameters, 200 CIFAR-100 test images.
    Strictly increasing except where the official parameters themselves are not monotone (checked below)."""
    d = {name: [_distance(C.corrupt(name, real_images, s, np.random.default_rng(s)), real_images)
                for s in C.SEVERITIES] for name in C.ALL}
    exceptions = {"saturate", "spatter", "frost", "glass_blur", "elastic_transform", "motion_blur"}
    for name in set(C.ALL) - exceptions:
        assert all(a < b for a, b in zip(d[name], d[name][1:])), (name, d[name])
    s = d["saturate"]  # saturation * .3, * .1 (desaturate), then * 1.5, 2 + .1, 2.5 + .2 (oversaturate)
    assert s[0] < s[1] and s[2] < s[3] < s[4], s
    s = d["spatter"]  # severities 1-3 add water, 4-5 mud: two different effects
    assert s[0] < s[1] < s[2] and s[3] < s[4], s
    # frost: c0 * x + c1 * frost with (c0, c1) = (1, .2) (1, .3) (.9, .4) (.85, .4) (.75, .45); from severity 3 on
    # the image weight falls while the bright frost term barely grows, so the difference partly cancels
    s = d["frost"]
    assert s[0] < s[1] < s[2] and min(s[2:]) > s[1], s
    # glass blur: severities 1-3 are one shuffle pass (blur sigma .05/.25/.4), 4-5 two passes; the pass count
    # dominates the distance, the sigma barely changes it
    s = d["glass_blur"]
    assert min(s[3:]) > 1.3 * max(s[:3]), s
    # motion blur: severities 3 and 4 are (radius 6, sigma 2) and (radius 8, sigma 2); taps 7-8 weigh < 0.3%
    s = d["motion_blur"]
    assert s[0] < s[1] < s[2] <= s[3] * 1.01 and s[3] < s[4], s
    # elastic: the affine jitter falls from 2.56 px (severity 1) to 0.96 px (5) while the local displacement
    # field grows, so the global distance falls; every severity still moves the image substantially
    s = d["elastic_transform"]
    assert min(s) > 0.4 * max(s) and min(s) > 5, s


def _reference_and_own(name: str, severity: int, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`imagecorruptions` (ImageNet-C parameters) and this implementation with the same parameters
    (`params="imagenet-fast"`), image i under np.random.seed(i) for both."""
    ic = imagecorruptions_compat.load()
    reference, own = [], []
    for i, image in enumerate(images):
        np.random.seed(i)
        reference.append(ic.corrupt(image, severity=severity, corruption_name=name))
        np.random.seed(i)
        rng = imagecorruptions_compat.legacy_child_rng() if name == "impulse_noise" else LegacyRng()
        own.append(C.corrupt(name, image[None], severity, rng, "imagenet-fast")[0])  # the path users get
    return np.array(reference), np.array(own)


@pytest.mark.parametrize("name", sorted(IMAGENET))
def test_fidelity_to_imagecorruptions(name: str, photos: np.ndarray) -> None:
    """Same algorithm, same random numbers: byte-identical, except zoom blur. There the reference sums
    float32 zoom layers and this applies their float64 sum as one operator, so a value that is an integer up to
    rounding can be truncated to the integer below: at most 1 grey level on at most 0.5% of values."""
    for severity in C.SEVERITIES:
        reference, own = _reference_and_own(name, severity, photos)
        diff = np.abs(reference.astype(np.int16) - own)
        if name == "zoom_blur":
            assert diff.max() <= 1 and (diff > 0).mean() <= 0.005, (severity, diff.max(), (diff > 0).mean())
        else:
            assert diff.max() == 0, (severity, diff.max(), (diff > 0).mean())


def test_imagenet_fast_runs_the_own_code_with_the_imagenet_table(images: np.ndarray) -> None:
    """imagenet-fast = this project's function on the ImageNet-C row; elastic_transform, which has no ImageNet-C row
    of its own, is `imagecorruptions` itself (params="imagenet"); the CIFAR row differs."""
    for name in ("fog", "glass_blur", "saturate"):
        own = C.OPS[name](images, IMAGENET[name][2], np.random.default_rng(4), "imagenet").astype(np.uint8)
        assert np.array_equal(C.corrupt(name, images, 3, np.random.default_rng(4), "imagenet-fast"), own)
        assert not np.array_equal(C.corrupt(name, images, 3, np.random.default_rng(4), "cifar"), own)
    fast = C.corrupt("elastic_transform", images[:2], 2, np.random.default_rng(1), "imagenet-fast")
    assert np.array_equal(fast, C.corrupt("elastic_transform", images[:2], 2, np.random.default_rng(1), "imagenet"))


def test_registry_orders_checks_and_describes() -> None:
    """Release order first (benchmark, then extras), other names in registration order; bad registrations
    raise; each corruption carries its category, extra flag, short name and both tables."""
    reg = CorruptionRegistry()
    for name, category, extra in [("mine_b", "blur", False), ("saturate", "digital", True), ("mine_a", "noise", True),
                                  ("fog", "weather", False), ("gaussian_noise", "noise", False)]:
        reg.register(name, category=category, extra=extra, cifar=[1] * 5)(lambda x, c, rng, variant: x)
    assert reg.names() == ["gaussian_noise", "fog", "mine_b", "saturate", "mine_a"]
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("fog", category="weather", cifar=[1] * 5)
    with pytest.raises(ValueError, match="category 'rain'"):
        reg.register("rain", category="rain", cifar=[1] * 5)
    with pytest.raises(ValueError, match="imagenet has 4 severities"):
        reg.register("rain", category="weather", cifar=[1] * 5, imagenet=[1] * 4)
    entry = C.CORRUPTIONS["brightness"]
    assert (entry.category, entry.extra, entry.short, entry.fn) == ("weather", False, "Bright", digital.brightness)
    assert entry.tables == {"cifar": tuple(CIFAR["brightness"]), "imagenet": tuple(IMAGENET["brightness"])}
    assert C.PARAMS == ("cifar", "imagenet", "imagenet-fast")


def test_glass_blur_fast_path_equals_sequential_copies() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(4, 12, 10, 3), dtype=np.uint8)
    offsets = rng.integers(-1, 1, size=(4, 10, 8, 2))
    fast = x.copy()
    blur._glass_shuffle(fast, offsets, 1)
    slow = x.copy()
    for n in range(4):
        for i, h in enumerate(range(11, 1, -1)):
            for j, w in enumerate(range(9, 1, -1)):
                dx, dy = offsets[n, i, j]
                slow[n, h, w] = slow[n, h + dy, w + dx]
    assert np.array_equal(fast, slow)


def test_cifar_clipped_zoom_matches_scipy_with_centre_trim() -> None:
    """CIFAR-10-C's clipped_zoom: crop ceil(32 / z), scipy zoom order 1, keep the central 32 rows/cols."""
    layer = np.random.default_rng(0).normal(size=(32, 32))
    for zoom in (1.0, 1.25, 1.75, 2.25, 1.21):
        crop = int(np.ceil(32 / zoom))
        top = (32 - crop) // 2
        big = ndi.zoom(layer[top:top + crop, top:top + crop], zoom, order=1)
        trim = (big.shape[0] - 32) // 2
        expected = big[trim:trim + 32, trim:trim + 32]
        np.testing.assert_allclose(blur.clipped_zoom(layer[None], zoom, "centre")[0], expected, atol=1e-12)


def test_impulse_noise_is_reproducible_in_both_parameter_sets(images: np.ndarray) -> None:
    for params in C.PARAMS:
        a = C.corrupt("impulse_noise", images, 5, np.random.default_rng(1), params)
        b = C.corrupt("impulse_noise", images, 5, np.random.default_rng(1), params)
        assert a.tobytes() == b.tobytes()
        changed = a != images
        assert np.isin(a[changed], [0, 255]).all() and changed.any()


def test_imagecorruptions_backend_runs_everything_on_current_stacks(images: np.ndarray) -> None:
    state = np.random.get_state()
    for name in C.ALL:
        for severity in C.SEVERITIES:
            a = C.corrupt(name, images[:2], severity, np.random.default_rng(5), "imagenet")
            assert a.dtype == np.uint8 and a.shape == (2, 32, 32, 3)
            if name == "glass_blur":
                continue  # slow in imagecorruptions (per-pixel Python loop); seeding is covered by the others
            assert a.tobytes() == C.corrupt(name, images[:2], severity, np.random.default_rng(5), "imagenet").tobytes()
    assert all(np.array_equal(u, v) for u, v in zip(state[1:], np.random.get_state()[1:]))  # state restored
    # nothing leaks out of the compat layer
    assert skimage.filters.gaussian.__module__.startswith("skimage")
    if int(np.__version__.split(".")[0]) >= 2:
        assert not hasattr(np, "float_")
    assert sys.modules.get("pkg_resources") is None or hasattr(sys.modules["pkg_resources"], "working_set")


def test_imagecorruptions_gaussian_keeps_colour_channels_apart() -> None:
    """multichannel=True must become channel_axis=-1: a pure red image stays pure red after the blur."""
    red = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    red[..., 0] = 200
    red[:, 8:24, 8:24, 0] = 50
    out = C.corrupt("gaussian_blur", red, 3, np.random.default_rng(0), "imagenet")
    assert out[..., 1:].max() == 0 and out[..., 0].std() > 10


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "fig"}, "unknown"),
    ({"severity": 0}, "1..5"),
    ({"severity": 6}, "1..5"),
    ({"severity": 2.0}, "1..5"),
    ({"severity": True}, "1..5"),
    ({"images": np.zeros((2, 32, 32, 3), dtype=np.float32)}, "uint8"),
    ({"images": [[0]]}, "uint8"),
    ({"images": np.zeros((2, 32, 32), dtype=np.uint8)}, "[N, H, W, 3]"),
    ({"images": np.zeros((2, 32, 32, 4), dtype=np.uint8)}, "[N, H, W, 3]"),
    ({"images": np.zeros((2, 16, 16, 3), dtype=np.uint8), "params": "imagenet"}, "at least 32x32"),
    ({"params": "tiny"}, "cifar, imagenet"),
])
def test_bad_input_names_what_was_expected(kwargs: dict, message: str) -> None:
    args = {"name": "fog", "images": np.zeros((2, 32, 32, 3), dtype=np.uint8), "severity": 1,
            "rng": np.random.default_rng(0), "params": "cifar", **kwargs}
    with pytest.raises(BenchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        C.corrupt(**args)


def test_elastic_bilinear_equals_scipy_map_coordinates() -> None:
    """The batched bilinear sampler reproduces the reference's map_coordinates(order=1, mode='reflect') exactly,
    including coordinates outside the image (reflected) and exact borders."""
    rng = np.random.default_rng(0)
    images = rng.random((5, 16, 12, 3)).astype(np.float32)
    rows = np.arange(16)[None, :, None] + (rng.normal(size=(5, 16, 12)) * 3).astype(np.float32)
    cols = np.arange(12)[None, None, :] + (rng.normal(size=(5, 16, 12)) * 3).astype(np.float32)
    rows[0, 0, :4] = [-1e-16, -0.5, 15.5, -16.5]
    cols[0, 1, :2] = [23.2, -11.0]
    own = digital.bilinear_reflect(images, rows, cols)
    channel = np.broadcast_to(np.arange(3), (16, 12, 3)).reshape(1, -1)
    for i in range(5):
        coords = (np.repeat(rows[i][..., None], 3, -1).reshape(1, -1),
                  np.repeat(cols[i][..., None], 3, -1).reshape(1, -1), channel)
        reference = ndi.map_coordinates(images[i], coords, order=1, mode="reflect").reshape(16, 12, 3)
        assert np.array_equal(own[i], reference)


def test_jpeg_equals_pil_codec(photos: np.ndarray) -> None:
    """OpenCV's JPEG round trip gives the same pixels as the reference's PIL save/open at every quality used."""
    for quality in CIFAR["jpeg_compression"] + IMAGENET["jpeg_compression"]:
        own = digital.jpeg_compression(photos, quality, None, "cifar")
        for image, out in zip(photos, own):
            buffer = BytesIO()
            Image.fromarray(image).save(buffer, "JPEG", quality=quality)
            assert np.array_equal(np.asarray(Image.open(buffer)), out), quality


def test_corrupt_all_is_independent_of_worker_count(images: np.ndarray) -> None:
    many = np.concatenate([images] * 2)  # 12 images, chunks of 5
    names = ["shot_noise", "glass_blur", "contrast"]
    one = dict(parallel.corrupt_all(many, seed=3, names=names, workers=1, chunk_size=5))
    two = dict(parallel.corrupt_all(many, seed=3, names=names, workers=2, chunk_size=5))
    assert list(one) == names
    for name in names:
        assert one[name].shape == (60, 32, 32, 3) and one[name].tobytes() == two[name].tobytes()
        for s in C.SEVERITIES:  # release layout: rows 12(s-1) .. 12s-1 hold severity s
            expected = C.corrupt_seeded(name, many, s, seed=3, chunk_size=5)
            assert np.array_equal(one[name][12 * (s - 1):12 * s], expected)


def test_imagecorruptions_spatter_no_longer_returns_black_images(real_images: np.ndarray) -> None:
    """1.1.2 divides 0 by 0 for ~2% of seeds at severity 1 (e.g. seed 35 on this image) and returns black;
    patched, those images get no water, exactly as this project's implementation does."""
    image = real_images[5:6]
    for seed in range(100):
        np.random.seed(seed)
        reference = imagecorruptions_compat.load().corrupt(image[0], severity=1, corruption_name="spatter")
        np.random.seed(seed)
        own = C.OPS["spatter"](image, IMAGENET["spatter"][0], LegacyRng(), "imagenet").astype(np.uint8)[0]
        assert reference.max() > 0 and np.array_equal(reference, own), seed


@pytest.mark.parametrize(("radius", "sigma", "low", "high", "channels"), [(9, 2.5, -45, 45, 3), (14, 12, -135, -45, 1),
                                                                          (20, 15, -45, 45, 3)])
def test_motion_blur_strategies_agree(radius: int, sigma: float, low: float, high: float, channels: int) -> None:
    """Grouped slices and per-tap gathers give the same floats (including taps past the image, radius 20)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 32, 32, channels), dtype=np.uint8)
    x = x[..., 0] if channels == 1 else x
    kernel = blur.motion_kernel(radius, sigma)
    offsets = blur.motion_offsets(len(kernel), rng.uniform(low, high, 40), (32, 32))
    patterns, group = np.unique(offsets, axis=0, return_inverse=True)
    grouped = blur._motion_grouped(x, kernel, patterns, group.reshape(-1))
    assert np.array_equal(grouped, blur._motion_gathered(x, kernel, offsets))
