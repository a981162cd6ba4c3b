"""CIFAR-10-C-bar (Mintun, Kirillov & Xie, "On Interaction Between Augmentations and Corruptions in Natural
Corruption Robustness", NeurIPS 2021): 10 corruptions x 5 severities, batched over the first axis; the same set
serves CIFAR-100-C-bar (as in PixMix and IPMix).

Reference: facebookresearch/augmentation-corruption @ ba4d5a5e9132fe98fcd4be1ac90abedbbb188794,
`imagenet_c_bar/corrupt.py` (the corruptions, `im_size` = the image side, 32 for CIFAR) and
`imagenet_c_bar/cifar10_c_bar.csv` (the 10 names, in its order, and each one's 5 severities, read by
`make_cifar10_c_bar.py`; each severity value is the reference's `severity` argument). Each function restates the
reference's per-pixel Python kernels as array expressions in the same operation order, and calls scipy's `rotate` /
`zoom`, scikit-image's `line_aa` and `scipy.fftpack.ifft2` as the reference does (tests/test_oracles_cbar.py
compares them with the reference's code, byte for byte).

Randomness: the reference draws its parameters from NumPy's global legacy state, which `make_cifar10_c_bar.py`
never seeds (its `--seed` flag is unused), so its files cannot be regenerated. Here image i of a batch gets its own
`np.random.RandomState(s_i)`, s_i = `rng.integers(0, 2**32, size=N)[i]` from the batch's generator (a seeded set:
`apply.chunk_rng(seed, corruption, severity, chunk)`), which answers every draw the reference makes from
`np.random`, in the reference's order; a seed the reference draws itself (`np.random.randint(0, 2**32)`) seeds
its inner `RandomState` as there. Same seed, same bytes; and the oracle tests replay the reference exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import sparse, special
from scipy.fftpack import ifft2
from scipy.ndimage import affine_transform, spline_filter1d, zoom
from skimage.draw import line_aa

from .registry import register_corruption

WHITE = np.array([255, 255, 255])


def _states(rng: np.random.Generator, n: int) -> list[np.random.RandomState]:
    """One legacy state per image, standing in for the reference's `np.random` (see the module docstring)."""
    return [np.random.RandomState(int(s)) for s in rng.integers(0, 2**32, size=n)]


def _level(severity: float, maxval: float) -> float:
    """The reference's `float_parameter`."""
    return float(severity) * maxval / 10.0


def _grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index of every pixel (the reference's point = [y, x])."""
    return np.meshgrid(np.arange(side), np.arange(side), indexing="ij")


def _bilinear(image: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """The reference's `utils/image.py` bilinear_interpolation at points (p0, p1), one per pixel of each image
    ([N, ...] each) of `image` [N, H, W, 3]; neighbours outside the image count as 0. float64 [N, ..., 3]."""
    n, h, w = image.shape[:3]
    top, u = np.floor(p0).astype(np.int64), np.floor(p1).astype(np.int64)  # the reference's l, u
    r, d = top + 1, u + 1
    batch = np.arange(n).reshape((n,) + (1,) * (p0.ndim - 1))

    def at(row: np.ndarray, col: np.ndarray) -> np.ndarray:
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        values = image[batch, np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)].astype(np.float64)
        return np.where(inside[..., None], values, 0.0)

    up, down = (1.0 - p1 + u)[..., None], (1.0 - d + p1)[..., None]
    upper = at(top, u) * up + at(top, d) * down
    lower = at(r, u) * up + at(r, d) * down
    return upper * (1.0 - p0 + top)[..., None] + lower * (1.0 - r + p0)[..., None]


@lru_cache(maxsize=8)
def _spectrum_distance(side: int) -> np.ndarray:
    """|(x, y) - centre| per frequency, computed as the reference does (np.linalg.norm, one pixel at a time)."""
    center = side / 2
    return np.array([[np.linalg.norm(np.array([x, y]) - center) for x in range(side)] for y in range(side)])


def _phase_noise(power: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """The reference's noise of a given power spectrum: random phases [..., S, S/2] made Hermitian, centred,
    inverse FFT, real part divided by its std (per image). float64 [..., S, S]."""
    side = power.shape[0]
    phases = np.concatenate((phases, phases[..., ::-1, ::-1]), axis=-1)
    spectrum = power * (np.cos(phases) + np.sin(phases) * 1j)
    spectrum = np.roll(np.roll(spectrum, side // 2, axis=-2), side // 2, axis=-1)
    noise = np.real(ifft2(spectrum, axes=(-2, -1)))
    flat = noise.reshape(-1, side, side)  # a view: each std over one image's noise, laid out as the reference's
    stds = np.array([np.std(plane) for plane in flat]).reshape(noise.shape[:-2] + (1, 1))
    return noise / stds


@register_corruption("blue_noise_sample", family="c-bar", short="BlueNoiseSmp", cifar=[0.7, 1.4, 2.1, 3.5, 4.2])
def blue_noise_sample(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """Pixels where blue noise (power ~ frequency) falls below a threshold set by the severity turn black."""
    side = x.shape[1]  # even (apply.py checks): the reference's odd-side branch draws more phases
    threshold = _level(c, 3.0) - 2.5
    phases = np.stack([np.random.RandomState(s.randint(low=0, high=2**32)).uniform(
        low=0, high=2 * np.pi, size=(side, side // 2)) for s in _states(rng, len(x))])
    mask = _phase_noise(_spectrum_distance(side), phases) > threshold
    return x * mask[..., None]


@register_corruption("checkerboard_cutout", family="c-bar", short="Checker", cifar=[1.0, 2.0, 3.0, 4.0, 5.0])
def checkerboard_cutout(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """A rotated checkerboard whose squares turn grey (128) with probability severity / 10."""
    n, side = len(x), x.shape[1]
    fraction = _level(c, 1.0)
    angles, scales, grids = np.empty(n), np.empty(n), []
    for i, state in enumerate(_states(rng, n)):
        angles[i] = state.uniform(low=0, high=2 * np.pi)
        scales[i] = np.maximum(state.uniform(low=0.1, high=0.25) * side, 1)
        cells = int(4 * side // scales[i])
        grids.append(np.random.RandomState(state.randint(low=0, high=2**32)).uniform(size=(cells, cells)) < fraction)
    size = max(len(g) for g in grids)
    grid = np.zeros((n, size, size), dtype=bool)
    for i, g in enumerate(grids):
        grid[i, :len(g), :len(g)] = g
    cells = np.array([len(g) for g in grids])[:, None, None]
    y, x_ = _grid(side)
    cos, sin, scale = (v[:, None, None] for v in (np.cos(angles), np.sin(angles), scales))
    nx = (cos * y + sin * x_) / scale
    ny = (-sin * y + cos * x_) / scale
    row, col = np.trunc(nx).astype(np.int64), np.trunc(ny).astype(np.int64)
    row, col = np.where(row < 0, row + cells, row), np.where(col < 0, col + cells, col)  # Python's negative index
    hit = grid[np.arange(n)[:, None, None], np.clip(row, 0, size - 1), np.clip(col, 0, size - 1)]
    keep = (np.trunc(nx % 2) != np.trunc(ny % 2)) | ~hit
    return np.where(keep[..., None], x, np.uint8(128))


def _sparkle(value: np.ndarray, center: np.ndarray, lengths: np.ndarray, rays: np.ndarray, exponent: float,
             inverse: bool) -> np.ndarray:
    """One star of `rays[n]` rays of `lengths[n]` around `center[n]` ([N, 2], point = [y, x]): white over the
    image (sparkles), or the image over white (inverse). `value` float32 [N, S, S, 3]; float64 out."""
    side = value.shape[1]
    y, x = _grid(side)
    dp0, dp1 = y - center[:, 0, None, None], x - center[:, 1, None, None]
    dist = np.sqrt(dp0 * dp0 + dp1 * dp1)
    rays = rays[:, None, None]
    d = (np.arctan2(dp1, dp0) + np.pi) / (2 * np.pi) * rays
    i = d.astype(np.int64)
    f = d - i
    flat = (len(value), -1)
    here = np.take_along_axis(lengths, (i % rays).reshape(flat), 1).reshape(i.shape)
    after = np.take_along_axis(lengths, ((i + 1) % rays).reshape(flat), 1).reshape(i.shape)
    length = here + f * (after - here)
    g = (length * length / (dist * dist + 1e-4)) ** exponent
    f = f - 0.5
    f = np.clip((1 - f * f) * g, 0, 1)[..., None]
    return WHITE + f * (value - WHITE) if inverse else value + f * (WHITE - value)


def _ray_lengths(rays: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(rays), max(len(r) for r in rays)))
    for i, r in enumerate(rays):
        out[i, :len(r)] = r
    return out


@register_corruption("inverse_sparkles", family="c-bar", short="InvSparkles", cifar=[1.0, 1.5, 2.5, 4.5, 5.0])
def inverse_sparkles(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """White everywhere but a star-shaped window on the image, narrowing with the severity."""
    side = x.shape[1]
    radius, amount = 0.25 * side, 100 - _level(c, 65)
    centers, counts, lengths = [], [], []
    for state in _states(rng, len(x)):
        centers.append(state.uniform(low=0.25, high=0.75, size=2) * side)
        inner = np.random.RandomState(state.randint(low=0, high=2**32))
        counts.append(state.randint(low=50, high=200))
        lengths.append(radius + 25 / 100.0 * radius * inner.randn(counts[-1]))
    out = _sparkle(x.astype(np.float32), np.array(centers), _ray_lengths(lengths), np.array(counts),
                   (100 - amount) / 50.0, inverse=True)
    return np.clip(out, 0, 255).astype(np.uint8)


@register_corruption("pinch_and_twirl", family="c-bar", short="PinchTwirl", cifar=[5.5, 6.0, 6.5, 8.5, 10.0])
def pinch_and_twirl(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """A 3 x 3 grid of discs, each pinched and twirled by +-severity x 9 degrees (random sign). The discs are
    warped in turn, each reading the image as the earlier ones left it."""
    n, side = len(x), x.shape[1]
    per_axis = 5 if side == 224 else 3
    angles = np.array([[s.choice([1, -1]) * _level(c, np.pi / 2) for _ in range(per_axis ** 2)]
                       for s in _states(rng, n)]).reshape(n, per_axis, per_axis)
    amount = _level(c, 0.4) + 0.1
    out = x.astype(np.float32)
    size = side // per_axis
    radius = size / 2
    offsets = np.arange(size)
    for i in range(per_axis):
        for j in range(per_axis):
            top, left = j * size, i * size
            cy, cx = top + radius, left + radius
            y, x_ = np.meshgrid(top + offsets, left + offsets, indexing="ij")
            dx, dy = y - cy, x_ - cx
            dist = np.sqrt(dx * dx + dy * dy)
            moved = (dist <= radius) & (np.round(dist, 3) != 0.0)
            d = dist / radius
            with np.errstate(divide="ignore"):
                t = np.where(moved, np.sin(np.pi * 0.5 * d) ** (-amount), 1.0)
            dx, dy = dx * t, dy * t
            a = angles[:, i, j, None, None] * ((1 - d) ** 2)
            p0 = np.where(moved, cy + (dx * np.cos(a) - dy * np.sin(a)), y)
            p1 = np.where(moved, cx + (dx * np.sin(a) + dy * np.cos(a)), x_)
            out[:, top:top + size, left:left + size] = _bilinear(out, p0, p1)
    return np.clip(out, 0, 255).astype(np.uint8)


@register_corruption("ripple", family="c-bar", short="Ripple", cifar=[5.5, 6.0, 6.5, 7.5, 8.0])
def ripple(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """Sine displacement of rows and columns, amplitude severity x 0.25% of the side, random wavelengths/phases."""
    n, side = len(x), x.shape[1]
    amplitude = _level(c, 0.025) * side
    draws = [(s.uniform(low=0.1, high=0.3, size=2) * side, s.uniform(low=0, high=2 * np.pi, size=2))
             for s in _states(rng, n)]
    wavelengths, phases = (np.array([d[k] for d in draws])[:, :, None, None] for k in (0, 1))
    y, x_ = _grid(side)
    p0 = y + amplitude * np.sin(2 * np.pi * y / wavelengths[:, 0] + phases[:, 0])
    p1 = x_ + amplitude * np.sin(2 * np.pi * x_ / wavelengths[:, 1] + phases[:, 1])
    return np.clip(_bilinear(x, p0, p1), 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def _brownish_power(side: int) -> np.ndarray:
    """The reference's 1 / (|f - centre|^2 + 1) spectrum, its own expression per pixel."""
    center = side / 2
    return np.array([[1 / (np.linalg.norm(np.array([x, y]) - center) ** 2 + 1) for x in range(side)]
                     for y in range(side)])


@register_corruption("brownish_noise", family="c-bar", short="Brownish", cifar=[2.5, 4.0, 5.5, 6.5, 7.0])
def brownish_noise(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """Additive noise with a 1 / f^2 spectrum per channel, unit std times severity x 6.4 grey levels."""
    side = x.shape[1]  # even (apply.py checks): the reference's odd-side branch draws more phases
    intensity = _level(c, 64)
    phases = np.stack([np.random.RandomState(s.randint(low=0, high=2**32)).uniform(
        low=0, high=2 * np.pi, size=(3, side, side // 2)) for s in _states(rng, len(x))])
    noise = np.moveaxis(_phase_noise(_brownish_power(side), phases), 1, -1)
    return np.clip(x + intensity * noise, 0, 255).astype(np.uint8)


@lru_cache(maxsize=128)
def _rotation(side: int, angle: float) -> sparse.csr_matrix:
    """scipy.ndimage.rotate(plane, angle, reshape=False) (cubic, mode constant) of a prefiltered side x side plane
    as a sparse [side^2, side^2] operator, its weights read from scipy's own affine_transform: about 4x faster than
    rotate, which loops over the planes in Python, and equal to it (the oracle test compares the results). Unit
    impulses on a lattice of spacing 5 (a cubic read spans 4 pixels per axis, mirrored at the border), so an output
    pixel sees at most one impulse per call; a second call with impulses 1 + index tells which one."""
    cos, sin = special.cosdg(angle), special.sindg(angle)
    matrix = np.array([[cos, sin], [-sin, cos]])
    centre = (np.array([side, side]) - 1) / 2
    offset = centre - matrix @ centre  # rotate()'s own offset for reshape=False
    index = np.arange(side * side, dtype=np.float64).reshape(side, side)
    rows, cols, weights = [], [], []
    for a in range(5):
        for b in range(5):
            impulses = np.zeros((side, side))
            impulses[a::5, b::5] = 1.0
            weight = affine_transform(impulses, matrix, offset, order=3, mode="constant", prefilter=False).ravel()
            coded = affine_transform(impulses * (1 + index), matrix, offset, order=3, mode="constant",
                                     prefilter=False).ravel()
            hit = np.flatnonzero(weight)
            rows.append(hit)
            cols.append(np.rint(coded[hit] / weight[hit] - 1).astype(np.int64))
            weights.append(weight[hit])
    return sparse.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(side * side, side * side))


@register_corruption("circular_motion_blur", family="c-bar", short="CircBlur", cifar=[2.8, 3.6, 4.4, 5.2, 6.0])
def circular_motion_blur(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """Gaussian-weighted mean of 21 rotations over +-severity x 1.5 degrees. Cubic spline, zero outside;
    deterministic, `rng` unused."""
    amount = _level(c, 15)
    num = 21
    image = x.astype(np.float32) / 255
    n, side = image.shape[:2]
    # the reference's rotate(image, angle, reshape=False): spline prefilter of each plane (shared by the 21
    # angles here), then the rotation as a sparse operator over the planes, rounded to float32 as rotate's output
    filtered = spline_filter1d(image, 3, 1, output=np.float64, mode="constant")
    planes = spline_filter1d(filtered, 3, 2, output=np.float64, mode="constant").transpose(1, 2, 0, 3)
    planes = planes.reshape(side * side, n * 3)
    out = np.zeros_like(image)
    factors = []
    for i in range(num):
        operator = _rotation(side, (2 * i / (num - 1) - 1) * amount)
        rotated = (operator @ planes).reshape(side, side, n, 3).transpose(2, 0, 1, 3).astype(np.float32)
        factors.append(np.exp(-2 * (2 * i / (num - 1) - 1) ** 2))
        out += factors[-1] * rotated
    out /= sum(factors)
    return np.clip(out * 255, 0, 255).astype(np.uint8)


@register_corruption("lines", family="c-bar", short="Lines", cifar=[0.5, 1.0, 1.5, 2.0, 2.5])
def lines(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """severity x 3.2 anti-aliased grey lines of the image's side in length, around one random direction."""
    side = x.shape[1]
    out = x.copy()
    count, length = int(_level(c, 1.0) * side), 1.0 * side
    for image, state in zip(out, _states(rng, len(x))):
        angle = state.uniform(low=0.0, high=2 * np.pi)
        variation = state.uniform(low=0.1, high=1.0)
        inner = np.random.RandomState(state.randint(low=0, high=2**32))
        for _ in range(count):
            y0 = side * inner.uniform()
            x0 = side * inner.uniform()
            a = angle + 2 * np.pi * variation * (inner.uniform() - 0.5)
            s, co = np.sin(a) * length, np.cos(a) * length
            rows, cols, val = line_aa(int(y0 - co), int(x0 - s), int(y0 + co), int(x0 + s))
            keep = (rows >= 0) & (cols >= 0) & (rows < side) & (cols < side)
            rows, cols, val = rows[keep], cols[keep], val[keep].reshape(-1, 1)
            image[rows, cols, :] = (1.0 - val) * image[rows, cols, :].astype(np.float32) + val * 128
    return out


@register_corruption("sparkles", family="c-bar", short="Sparkles", cifar=[0.7, 3.5, 5.6, 6.3, 7.0])
def sparkles(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """Five white stars of 50-199 rays, radius severity x 1% of the side, drawn one over the other."""
    n, side = len(x), x.shape[1]
    radius = _level(c, 0.1) * side
    centers, counts, lengths = [], [], []
    for state in _states(rng, n):
        centers.append(state.uniform(low=0, high=side, size=(5, 2)))
        inner = np.random.RandomState(state.randint(low=0, high=2**32))
        counts.append(state.randint(low=50, high=200, size=5))
        lengths.append([np.maximum(1, radius + 25 / 100.0 * radius * inner.randn(k)) for k in counts[-1]])
    centers, counts = np.array(centers), np.array(counts)
    out = x
    for k in range(5):
        out = _sparkle(out.astype(np.float32), centers[:, k], _ray_lengths([r[k] for r in lengths]), counts[:, k],
                       1.0, inverse=False)
    return np.clip(out, 0, 255).astype(np.uint8)


@register_corruption("transverse_chromatic_abberation", family="c-bar", short="TransChrom",
                     cifar=[1.0, 2.0, 5.0, 9.0, 10.0])
def transverse_chromatic_abberation(x: np.ndarray, c: float, rng: np.random.Generator, variant: str) -> np.ndarray:
    """Channels zoomed by 1, 1 + severity x 2.5% and 1 + severity x 5% in a random order, cropped to the side.
    Cubic spline without prefilter, as the reference; the name keeps the reference's spelling, so the files are
    named as its release."""
    side = x.shape[1]
    scale = _level(c, 0.5)
    out = x.copy()
    for image, target, state in zip(x, out, _states(rng, len(x))):
        scales = np.array([1.0, 1.0 + scale / 2, 1.0 + scale])[state.permutation(3)]
        for channel in range(3):
            zoomed = zoom(image[:, :, channel], scales[channel], prefilter=False)
            edge = (zoomed.shape[0] - side) // 2
            target[:, :, channel] = zoomed[edge:edge + side, edge:edge + side]
    return out
