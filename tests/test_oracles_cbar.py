"""The C-bar corruptions against oracles of the reference itself: facebookresearch/augmentation-corruption
@ ba4d5a5e9132fe98fcd4be1ac90abedbbb188794, `imagenet_c_bar/corrupt.py` (with `utils/image.py`'s
bilinear_interpolation and `base.py`'s `Transform.__call__`) and `imagenet_c_bar/cifar10_c_bar.csv`.

Each `Ref*` class below re-states the reference class of that name as it is written there: one image at a time,
per-pixel Python kernels, parameters drawn from NumPy's global legacy state (`sample_parameters`), the same
library calls (scipy `rotate` / `zoom` / `fftpack.ifft2`, scikit-image `line_aa`). Only change: `np.int` (removed
from NumPy) is `int`. The project's batched code runs through the public `corrupt()` with a generator whose
per-image seeds (`integers(0, 2**32, size=N)`, the derivation cbar.py documents) seed the global state before the
reference's call, and the two uint8 results are compared byte for byte: the reference's randomness is reproduced
draw for draw. NumPy here is 2.x, whose promotion makes the reference's float32-pixel x float64-scalar products
float64 (NumPy 1.x, which made CIFAR-10-C-bar, kept some in float32; pinch_and_twirl, circular_motion_blur).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.fftpack import ifft2
from scipy.ndimage import rotate, zoom
from skimage.draw import line_aa

from cutmix_bench import corruptions as C
from cutmix_bench.errors import BenchError

from helpers import data_root

SIDE = 32
# imagenet_c_bar/cifar10_c_bar.csv, copied from the reference (not from the registry, which is what is tested)
CSV = """blue_noise_sample,0.7,1.4,2.1,3.5,4.2
checkerboard_cutout,1.0,2.0,3.0,4.0,5.0
inverse_sparkles,1.0,1.5,2.5,4.5,5.0
pinch_and_twirl,5.5,6.0,6.5,8.5,10.0
ripple,5.5,6.0,6.5,7.5,8.0
brownish_noise,2.5,4.0,5.5,6.5,7.0
circular_motion_blur,2.8,3.6,4.4,5.2,6.0
lines,0.5,1.0,1.5,2.0,2.5
sparkles,0.7,3.5,5.6,6.3,7.0
transverse_chromatic_abberation,1.0,2.0,5.0,9.0,10.0"""
TABLE = {line.split(",")[0]: [float(v) for v in line.split(",")[1:]] for line in CSV.splitlines()}


def float_parameter(level, maxval):
    return float(level) * maxval / 10.


def bilinear_interpolation(image, point):
    l = int(np.floor(point[0]))  # noqa: E741 (the reference's names)
    u = int(np.floor(point[1]))
    r, d = l + 1, u + 1
    lu = image[l, u, :] if 0 <= l < image.shape[0] and 0 <= u < image.shape[1] else np.array([0, 0, 0])
    ld = image[l, d, :] if 0 <= l < image.shape[0] and 0 <= d < image.shape[1] else np.array([0, 0, 0])
    ru = image[r, u, :] if 0 <= r < image.shape[0] and 0 <= u < image.shape[1] else np.array([0, 0, 0])
    rd = image[r, d, :] if 0 <= r < image.shape[0] and 0 <= d < image.shape[1] else np.array([0, 0, 0])
    al = lu * (1.0 - point[1] + u) + ld * (1.0 - d + point[1])
    ar = ru * (1.0 - point[1] + u) + rd * (1.0 - d + point[1])
    return al * (1.0 - point[0] + l) + ar * (1.0 - r + point[0])


class Ref:
    def __init__(self, severity, im_size=SIDE):
        self.severity, self.im_size = severity, im_size

    def __call__(self, image):
        return self.transform(image, **self.sample_parameters())


class RefSparkles(Ref):
    def sample_parameters(self):
        centers = np.random.uniform(low=0, high=self.im_size, size=(5, 2))
        radii = np.array([float_parameter(self.severity, 0.1) for i in range(5)]) * self.im_size
        amounts = np.array([50 for i in range(5)])
        color = np.array([255, 255, 255])
        randomness = 25
        seed = np.random.randint(low=0, high=2**32)
        nrays = np.random.randint(low=50, high=200, size=5)
        return {'centers': centers, 'radii': radii, 'color': color, 'randomness': randomness, 'seed': seed,
                'nrays': nrays, 'amounts': amounts}

    def transform(self, image, centers, radii, nrays, amounts, color, randomness, seed):
        def kernel(point, value, center, radius, ray_lengths, amount, color):
            rays = len(ray_lengths)
            dp = point - center
            dist = np.linalg.norm(dp)
            angle = np.arctan2(dp[1], dp[0])
            d = (angle + np.pi) / (2 * np.pi) * rays
            i = int(d)
            f = d - i
            if radius != 0:
                length = ray_lengths[i % rays] + f * (ray_lengths[(i + 1) % rays] - ray_lengths[i % rays])
                g = length**2 / (dist**2 + 1e-4)
                g = g ** ((100 - amount) / 50.0)
                f -= 0.5
                f = 1 - f**2
                f *= g
            f = np.clip(f, 0, 1)
            return value + f * (color - value)

        random_state = np.random.RandomState(seed=seed)
        for center, rays, amount, radius in zip(centers, nrays, amounts, radii):
            ray_lengths = [max(1, radius + randomness / 100.0 * radius * random_state.randn()) for i in range(rays)]
            image = np.array([[kernel(np.array([y, x]), image[y, x, :].astype(np.float32), center, radius,
                                      ray_lengths, amount, color)
                               for x in range(self.im_size)] for y in range(self.im_size)])
        return np.clip(image, 0, 255).astype(np.uint8)


class RefInverseSparkles(Ref):
    def sample_parameters(self):
        center = np.random.uniform(low=0.25, high=0.75, size=2) * self.im_size
        radius = 0.25 * self.im_size
        amount = float_parameter(self.severity, 65)
        amount = 100 - amount
        color = np.array([255, 255, 255])
        randomness = 25
        seed = np.random.randint(low=0, high=2**32)
        rays = np.random.randint(low=50, high=200)
        return {'center': center, 'radius': radius, 'color': color, 'randomness': randomness, 'seed': seed,
                'rays': rays, 'amount': amount}

    def transform(self, image, center, radius, rays, amount, color, randomness, seed):
        def kernel(point, value, center, radius, ray_lengths, amount, color):
            rays = len(ray_lengths)
            dp = point - center
            dist = np.linalg.norm(dp)
            angle = np.arctan2(dp[1], dp[0])
            d = (angle + np.pi) / (2 * np.pi) * rays
            i = int(d)
            f = d - i
            if radius != 0:
                length = ray_lengths[i % rays] + f * (ray_lengths[(i + 1) % rays] - ray_lengths[i % rays])
                g = length**2 / (dist**2 + 1e-4)
                g = g ** ((100 - amount) / 50.0)
                f -= 0.5
                f = 1 - f**2
                f *= g
            f = np.clip(f, 0, 1)
            return color + f * (value - color)

        random_state = np.random.RandomState(seed=seed)
        ray_lengths = [radius + randomness / 100.0 * radius * random_state.randn() for i in range(rays)]
        out = np.array([[kernel(np.array([y, x]), image[y, x, :].astype(np.float32), center, radius, ray_lengths,
                                amount, color) for x in range(self.im_size)] for y in range(self.im_size)])
        return np.clip(out, 0, 255).astype(np.uint8)


def phase_noise(self, random_state, power):
    """The spectrum-to-noise lines BlueNoiseSample.transform and BrownishNoise.gen_noise share (even im_size)."""
    phases = random_state.uniform(low=0, high=2 * np.pi, size=(self.im_size, self.im_size // 2))
    phases = np.concatenate((phases, phases[::-1, ::-1]), axis=1)
    fourier_space_noise = power * (np.cos(phases) + np.sin(phases) * 1j)
    fourier_space_noise = np.roll(fourier_space_noise, self.im_size // 2, axis=0)
    fourier_space_noise = np.roll(fourier_space_noise, self.im_size // 2, axis=1)
    noise = np.real(ifft2(fourier_space_noise))
    return noise / np.std(noise)


class RefBrownishNoise(Ref):
    def sample_parameters(self):
        seed = np.random.randint(low=0, high=2**32)
        intensity = float_parameter(self.severity, 64)
        return {'seed': seed, 'intensity': intensity}

    def gen_noise(self, random_state):
        center = self.im_size / 2
        power = np.array([[1 / (np.linalg.norm(np.array([x, y]) - center)**2 + 1)
                           for x in range(self.im_size)] for y in range(self.im_size)])
        return phase_noise(self, random_state, power)

    def transform(self, image, seed, intensity):
        random_state = np.random.RandomState(seed=seed)
        noise = np.stack([self.gen_noise(random_state) for i in range(3)], axis=2)
        return np.clip(image + intensity * noise, 0, 255).astype(np.uint8)


class RefBlueNoiseSample(Ref):
    def sample_parameters(self):
        seed = np.random.randint(low=0, high=2**32)
        threshold = float_parameter(self.severity, 3.0) - 2.5
        return {'seed': seed, 'threshold': threshold}

    def transform(self, image, seed, threshold):
        random_state = np.random.RandomState(seed=seed)
        center = self.im_size / 2
        power = np.array([[np.linalg.norm(np.array([x, y]) - center)
                           for x in range(self.im_size)] for y in range(self.im_size)])
        noise = phase_noise(self, random_state, power)
        mask = noise > threshold
        out = image * mask.reshape(self.im_size, self.im_size, 1)
        return np.clip(out, 0, 255).astype(np.uint8)


class RefCheckerBoardCutOut(Ref):
    def sample_parameters(self):
        angle = np.random.uniform(low=0, high=2 * np.pi)
        scales = np.maximum(np.random.uniform(low=0.1, high=0.25) * self.im_size, 1)
        scales = (scales, scales)
        fraction = float_parameter(self.severity, 1.0)
        seed = np.random.randint(low=0, high=2**32)
        return {'angle': angle, 'scales': scales, 'fraction': fraction, 'seed': seed}

    def transform(self, image, scales, angle, fraction, seed):
        random_state = np.random.RandomState(seed=seed)
        grid = random_state.uniform(size=(int(4 * self.im_size // scales[0]), int(4 * self.im_size // scales[1]))) \
            < fraction

        def mask_kernel(point, scales, angle, grid):
            nx = (np.cos(angle) * point[0] + np.sin(angle) * point[1]) / scales[0]
            ny = (-np.sin(angle) * point[0] + np.cos(angle) * point[1]) / scales[1]
            return (int(nx % 2) != int(ny % 2)) or not grid[int(nx), int(ny)]

        out = np.array([[image[y, x, :] if mask_kernel([y, x], scales, angle, grid) else np.array([128, 128, 128])
                         for x in range(self.im_size)] for y in range(self.im_size)])
        return np.clip(out, 0, 255).astype(np.uint8)


class RefLines(Ref):
    def sample_parameters(self):
        length = 1.0
        density = float_parameter(self.severity, 1.0)
        angle = np.random.uniform(low=0.0, high=2 * np.pi)
        angle_variation = np.random.uniform(low=0.1, high=1.0)
        seed = np.random.randint(low=0, high=2**32)
        return {'length': length, 'density': density, 'angle': angle, 'angle_variation': angle_variation,
                'seed': seed}

    def transform(self, image, length, density, angle, angle_variation, seed):
        num_lines = int(density * self.im_size)
        l = length * self.im_size  # noqa: E741
        random_state = np.random.RandomState(seed=seed)
        out = image.copy()
        for i in range(num_lines):  # noqa: B007
            x = self.im_size * random_state.uniform()
            y = self.im_size * random_state.uniform()
            a = angle + 2 * np.pi * angle_variation * (random_state.uniform() - 0.5)
            s = np.sin(a) * l
            c = np.cos(a) * l
            x1 = int(x - c)
            x2 = int(x + c)
            y1 = int(y - s)
            y2 = int(y + s)
            rxc, ryc, rval = line_aa(x1, y1, x2, y2)
            xc, yc, val = [], [], []
            for rx, ry, rv in zip(rxc, ryc, rval):
                if rx >= 0 and ry >= 0 and rx < self.im_size and ry < self.im_size:
                    xc.append(rx)
                    yc.append(ry)
                    val.append(rv)
            xc, yc, val = np.array(xc, dtype=int), np.array(yc, dtype=int), np.array(val)
            out[xc, yc, :] = (1.0 - val.reshape(-1, 1)) * out[xc, yc, :].astype(np.float32) + val.reshape(-1, 1) * 128
        return out.astype(np.uint8)


class RefPinchAndTwirl(Ref):
    def sample_parameters(self):
        num_per_axis = 5 if self.im_size == 224 else 3
        angles = np.array([np.random.choice([1, -1]) * float_parameter(self.severity, np.pi / 2)
                           for i in range(num_per_axis ** 2)]).reshape(num_per_axis, num_per_axis)
        amount = float_parameter(self.severity, 0.4) + 0.1
        return {'num_per_axis': num_per_axis, 'angles': angles, 'amount': amount}

    def transform(self, image, num_per_axis, angles, amount):
        def warp_kernel(point, center, radius, amount, angle):
            dx = point[0] - center[0]
            dy = point[1] - center[1]
            dist = np.linalg.norm(point - center)
            if dist > radius or np.round(dist, 3) == 0.0:
                return point
            d = dist / radius
            t = np.sin(np.pi * 0.5 * d) ** (- amount)
            dx *= t
            dy *= t
            e = 1 - d
            a = angle * (e ** 2)
            return center + np.array([dx * np.cos(a) - dy * np.sin(a), dx * np.sin(a) + dy * np.cos(a)])

        out = image.copy().astype(np.float32)
        grid_size = self.im_size // num_per_axis
        radius = grid_size / 2
        for i in range(num_per_axis):
            for j in range(num_per_axis):
                l, r = i * grid_size, (i + 1) * grid_size  # noqa: E741
                u, d = j * grid_size, (j + 1) * grid_size
                center = np.array([u + radius, l + radius])
                out[u:d, l:r, :] = np.array([[bilinear_interpolation(
                    out, warp_kernel(np.array([y, x]), center, radius, amount, angles[i, j]))
                    for x in np.arange(l, r)] for y in np.arange(u, d)])
        return np.clip(out, 0, 255).astype(np.uint8)


class RefRipple(Ref):
    def sample_parameters(self):
        amplitudes = np.array([float_parameter(self.severity, 0.025) for i in range(2)]) * self.im_size
        wavelengths = np.random.uniform(low=0.1, high=0.3, size=2) * self.im_size
        phases = np.random.uniform(low=0, high=2 * np.pi, size=2)
        return {'amplitudes': amplitudes, 'wavelengths': wavelengths, 'phases': phases}

    def transform(self, image, wavelengths, phases, amplitudes):
        def warp_kernel(point, wavelengths, phases, amplitudes):
            return point + amplitudes * np.sin(2 * np.pi * point / wavelengths + phases)

        image = np.array([[bilinear_interpolation(image, warp_kernel(np.array([y, x]), wavelengths, phases, amplitudes))
                           for x in range(self.im_size)] for y in range(self.im_size)])
        return np.clip(image, 0, 255).astype(np.uint8)


class RefTransverseChromaticAbberation(Ref):
    def sample_parameters(self):
        scale = float_parameter(self.severity, 0.5)
        scales = np.array([1.0, 1.0 + scale / 2, 1.0 + scale])
        scales = scales[np.random.permutation(3)]
        return {'scales': scales}

    def transform(self, image, scales):
        out = image.copy()
        for c in range(3):
            zoomed = zoom(image[:, :, c], scales[c], prefilter=False)
            edge = (zoomed.shape[0] - self.im_size) // 2
            out[:, :, c] = zoomed[edge:edge + self.im_size, edge:edge + self.im_size]
        return out.astype(np.uint8)


class RefCircularMotionBlur(Ref):
    def sample_parameters(self):
        return {'amount': float_parameter(self.severity, 15)}

    def transform(self, image, amount):
        num = 21
        factors = []
        rotated = []
        image = image.astype(np.float32) / 255
        for i in range(num):
            angle = (2 * i / (num - 1) - 1) * amount
            rotated.append(rotate(image, angle, reshape=False))
            factors.append(np.exp(- 2 * (2 * i / (num - 1) - 1)**2))
        out = np.zeros_like(image)
        for i, f in zip(rotated, factors):
            out += f * i
        out /= sum(factors)
        return np.clip(out * 255, 0, 255).astype(np.uint8)


REFERENCE = {"sparkles": RefSparkles, "inverse_sparkles": RefInverseSparkles, "brownish_noise": RefBrownishNoise,
             "blue_noise_sample": RefBlueNoiseSample, "checkerboard_cutout": RefCheckerBoardCutOut,
             "lines": RefLines, "pinch_and_twirl": RefPinchAndTwirl, "ripple": RefRipple,
             "transverse_chromatic_abberation": RefTransverseChromaticAbberation,
             "circular_motion_blur": RefCircularMotionBlur}


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """3 CIFAR-100 test images when the data is there, else (CI) 3 synthetic ones: a ramp, a checkerboard, noise."""
    path = data_root() / "cifar100" / "test.npz"
    if path.is_file():
        with np.load(path) as data:
            return np.ascontiguousarray(data["x"][::4000][:3])
    rng = np.random.default_rng(5)
    ramp = np.linspace(0, 255, SIDE)
    images = np.stack([np.broadcast_to(ramp[:, None, None], (SIDE, SIDE, 3)),
                       np.where((np.arange(SIDE)[:, None] // 8 + np.arange(SIDE) // 8) % 2 == 0, 255.0, 0.0)[..., None]
                       .repeat(3, 2), rng.integers(0, 256, (SIDE, SIDE, 3))])
    return images.astype(np.uint8)


def test_the_family_is_the_reference_table() -> None:
    """Names and order of cifar10_c_bar.csv, its 5 severities each; none is in the mCE's family."""
    assert C.CBAR == list(TABLE)
    for name, values in TABLE.items():
        entry = C.CORRUPTIONS[name]
        assert (entry.family, entry.tables) == ("c-bar", {"cifar": tuple(values)}), name
    assert not set(C.CBAR) & set(C.ALL) and C.CORRUPTIONS.names() == C.ALL + C.CBAR


@pytest.mark.parametrize("name", list(TABLE))
def test_cbar_corruption_equals_the_reference_byte_for_byte(name: str, photos: np.ndarray) -> None:
    """Every severity; image i's global state seeded with the i-th per-image seed."""
    started = time.perf_counter()
    for severity in C.SEVERITIES:
        ours = C.corrupt(name, photos, severity, np.random.default_rng(severity))
        seeds = np.random.default_rng(severity).integers(0, 2**32, size=len(photos))
        for i, image in enumerate(photos):
            np.random.seed(int(seeds[i]))
            reference = REFERENCE[name](TABLE[name][severity - 1])(image)
            assert np.array_equal(ours[i], reference), (severity, i, np.abs(ours[i].astype(int) - reference).max())
        assert not np.array_equal(ours, photos)
    assert time.perf_counter() - started < 20


def test_a_seeded_set_is_the_same_bytes_and_the_seed_matters(photos: np.ndarray) -> None:
    """corrupt_seeded: per-image seeds from the (seed, corruption, severity, chunk) generator, so the same seed
    gives the same bytes whatever the chunking and another seed other images."""
    once = C.corrupt_seeded("lines", photos, 4, seed=3)
    assert np.array_equal(once, C.corrupt_seeded("lines", photos, 4, seed=3))
    assert np.array_equal(C.corrupt_seeded("lines", photos, 4, seed=3, chunk_size=2),
                          np.concatenate([C.corrupt("lines", photos[:2], 4, C.chunk_rng(3, "lines", 4, 0)),
                                          C.corrupt("lines", photos[2:], 4, C.chunk_rng(3, "lines", 4, 1))]))
    assert not np.array_equal(once, C.corrupt_seeded("lines", photos, 4, seed=4))


def test_cbar_refuses_other_parameters_and_odd_sides(photos: np.ndarray) -> None:
    with pytest.raises(BenchError, match="sparkles .C-bar.: params=imagenet; .*expected params=cifar"):
        C.corrupt("sparkles", photos, 1, np.random.default_rng(0), "imagenet")
    for rows, cols in ((31, 32), (31, 31)):
        with pytest.raises(BenchError, match=f"ripple .C-bar.: images of {rows}x{cols} pixels; expected square"):
            C.corrupt("ripple", photos[:, :rows, :cols], 1, np.random.default_rng(0))
