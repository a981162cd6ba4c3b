"""AugMix (Hendrycks et al., ICLR 2020): convex mixes of random augmentation chains, trained with a
Jensen-Shannon consistency loss between the clean image and two AugMix views."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps

from ..checks import check_flag, check_integer
from . import METHODS
from .base import Method, check_positive
from .smoothing import check_smoothing, smooth

Op = Callable[[Image.Image, int, np.random.Generator], Image.Image]

# The official operations (google-research/augmix augmentations.py), with the global np.random replaced by
# the run's generator; the draws per operation are the same, in the same order. PIL is the official
# implementation: a torch port would need a byte-exact oracle of PIL's fixed-point resampling for every op.
MAX_SEVERITY = 10  # the official PARAMETER_MAX: levels are scaled by level / 10, so 11 gives e.g. posterize(-0)


def int_parameter(level: float, maxval: float) -> int:
    return int(level * maxval / 10)


def float_parameter(level: float, maxval: float) -> float:
    return float(level) * maxval / 10.0


def sample_level(severity: int, rng: np.random.Generator) -> float:
    return rng.uniform(low=0.1, high=severity)


def autocontrast(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    return ImageOps.autocontrast(image)


def equalize(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    return ImageOps.equalize(image)


def posterize(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    return ImageOps.posterize(image, 4 - int_parameter(sample_level(severity, rng), 4))


def rotate(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    degrees = int_parameter(sample_level(severity, rng), 30)
    if rng.uniform() > 0.5:
        degrees = -degrees
    return image.rotate(degrees, resample=Image.Resampling.BILINEAR)


def solarize(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    return ImageOps.solarize(image, 256 - int_parameter(sample_level(severity, rng), 256))


def _affine(image: Image.Image, coefficients: tuple[float, ...]) -> Image.Image:
    return image.transform(image.size, Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR)


def _signed(value: float, rng: np.random.Generator) -> float:
    return -value if rng.uniform() > 0.5 else value


def shear_x(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    return _affine(image, (1, _signed(float_parameter(sample_level(severity, rng), 0.3), rng), 0, 0, 1, 0))


def shear_y(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    return _affine(image, (1, 0, 0, _signed(float_parameter(sample_level(severity, rng), 0.3), rng), 1, 0))


def translate_x(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    # The official shifts by up to IMAGE_SIZE / 3 (= 32 / 3 on CIFAR); here a third of the image's own width.
    shift = _signed(int_parameter(sample_level(severity, rng), image.size[0] / 3), rng)
    return _affine(image, (1, 0, shift, 0, 1, 0))


def translate_y(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    shift = _signed(int_parameter(sample_level(severity, rng), image.size[1] / 3), rng)
    return _affine(image, (1, 0, 0, 0, 1, shift))


def _enhance(enhancer: type) -> Op:
    def op(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
        return enhancer(image).enhance(float_parameter(sample_level(severity, rng), 1.8) + 0.1)
    return op


color, contrast, brightness, sharpness = (_enhance(e) for e in (ImageEnhance.Color, ImageEnhance.Contrast,
                                                                ImageEnhance.Brightness, ImageEnhance.Sharpness))

# The official default (`augmentations`): no op that overlaps the test corruptions; `all_ops` adds four more.
OPS: tuple[Op, ...] = (autocontrast, equalize, posterize, rotate, solarize, shear_x, shear_y, translate_x,
                       translate_y)
ALL_OPS: tuple[Op, ...] = OPS + (color, contrast, brightness, sharpness)


def augment_and_mix(image: Image.Image, rng: np.random.Generator, ops: Sequence[Op], width: int, depth: int,
                    severity: int, alpha: float) -> np.ndarray:
    """One AugMix view [H, W, C] float32 in [0, 1], as the official cifar.py `aug`: w ~ Dirichlet(alpha * 1_width),
    m ~ Beta(alpha, alpha) (both float32); per chain a depth (uniform in {1, 2, 3} if `depth` <= 0) and that many
    ops drawn uniformly; result (1 - m) * image + m * sum_i w_i * chain_i(image), computed on ToTensor's [0, 1]
    scale (the official mixes after Normalize; the mix is convex, so the two agree up to float rounding)."""
    weights = np.float32(rng.dirichlet([alpha] * width))
    m = np.float32(rng.beta(alpha, alpha))
    clean = np.asarray(image, dtype=np.float32) / 255
    mix = np.zeros_like(clean)
    for i in range(width):
        chain = image.copy()
        for _ in range(depth if depth > 0 else int(rng.integers(1, 4))):
            chain = ops[int(rng.integers(len(ops)))](chain, severity, rng)
        mix += weights[i] * (np.asarray(chain, dtype=np.float32) / 255)
    return (1 - m) * clean + m * mix


def jensen_shannon(logits_clean: torch.Tensor, logits_aug1: torch.Tensor, logits_aug2: torch.Tensor) -> torch.Tensor:
    """The official consistency term: mean over the three views of KL(p_view || M), M = their mean
    distribution clamped to [1e-7, 1] (F.kl_div with reduction 'batchmean', as cifar.py)."""
    probs = [F.softmax(logits.float(), dim=1) for logits in (logits_clean, logits_aug1, logits_aug2)]
    log_mixture = torch.clamp((probs[0] + probs[1] + probs[2]) / 3.0, 1e-7, 1).log()
    return sum(F.kl_div(log_mixture, p, reduction="batchmean") for p in probs) / 3.0


@METHODS.register("augmix")
class AugMix(Method):
    """AugMix: two AugMix views per image besides the clean one, loss CE(clean) + 12 * JSD(clean, view1, view2).

    As the official CIFAR code (google-research/augmix cifar.py, augmentations.py): mixture width 3, depth -1
    (1-3 at random per chain), severity 3, alpha 1 for the Dirichlet chain weights and the Beta skip weight, the
    9 operations of `augmentations` (autocontrast, equalize, posterize, rotate, solarize, shear_x/y,
    translate_x/y; `all_ops: true` adds color, contrast, brightness, sharpness, which overlap the test
    corruptions), the three views in one forward (batch 3B, so BatchNorm sees all), cross entropy on the clean
    view only, `jsd_weight` 12. `jsd: false` is the official --no-jsd: the model sees one AugMix view per image
    and plain cross entropy. The loader's crop and flip come first, as the official train_transform.
    Augmentation runs per image through PIL on the host (the official operations; ~0.6 ms per 32x32 view), on
    the loader's images recovered exactly as uint8 from the normalised batch. Draws per image: view 1, then
    view 2 (weights, m, then per chain its depth, ops and their levels and signs)."""

    reference = ("Hendrycks et al., AugMix: A Simple Data Processing Method to Improve Robustness and "
                 "Uncertainty, ICLR 2020; https://github.com/google-research/augmix")
    input_space = False  # needs the loader's normalisation and, with the JSD, its own loss: runner only

    def __init__(self, width: int = 3, depth: int = -1, severity: int = 3, alpha: float = 1.0, all_ops: bool = False,
                 jsd: bool = True, jsd_weight: float = 12.0, smoothing: float = 0.0) -> None:
        check_integer("width", width, 1)
        check_integer("severity", severity, 1, MAX_SEVERITY)  # the operations scale levels by severity / 10
        if isinstance(depth, bool) or not isinstance(depth, int) or not (depth == -1 or depth > 0):
            raise ValueError(f"depth must be a positive integer or -1 (1-3 at random), got {depth!r}")
        self.width, self.depth, self.severity = width, depth, severity
        self.alpha = check_positive("alpha", alpha)
        self.ops = ALL_OPS if all_ops else OPS
        check_flag("all_ops", all_ops)
        self.jsd, self.jsd_weight = check_flag("jsd", jsd), check_positive("jsd_weight", jsd_weight)
        self.smoothing = check_smoothing(smoothing)
        self.normalisation: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def set_normalisation(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """The loader's per-channel mean and std: AugMix's operations work on the uint8 images."""
        self.normalisation = (tuple(mean), tuple(std))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.normalisation is None:
            raise RuntimeError("AugMix augments raw pixels: call set_normalisation(mean, std) with the loader's "
                               "normalisation first (the runner does)")
        mean, std = (torch.tensor(v, dtype=torch.float32, device=x.device)[None, :, None, None]
                     for v in self.normalisation)
        return mean, std

    def views(self, x: torch.Tensor, rng: np.random.Generator, count: int) -> list[torch.Tensor]:
        """`count` AugMix views of a normalised batch, normalised again, in x's dtype and device."""
        mean, std = self._stats(x)
        pixels = ((x.float() * std + mean) * 255).round_().clamp_(0, 255).to(torch.uint8)
        images = pixels.permute(0, 2, 3, 1).cpu().numpy()
        grey = images.shape[3] == 1
        out = np.empty((count, *images.shape), dtype=np.float32)
        for i, array in enumerate(images):
            image = Image.fromarray(array[..., 0] if grey else array)
            for v in range(count):
                view = augment_and_mix(image, rng, self.ops, self.width, self.depth, self.severity, self.alpha)
                out[v, i] = view[..., None] if grey else view
        views = torch.from_numpy(out).to(x.device).permute(0, 1, 4, 2, 3)
        return [((v - mean) / std).to(x.dtype) for v in views]

    def __call__(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The --no-jsd input transform: one AugMix view per image, labels unchanged (smoothed if asked)."""
        return self.views(x, rng, 1)[0], smooth(y, self.smoothing)

    def loss(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The training objective and the clean logits: CE(clean) + jsd_weight * JSD, one forward of 3B images."""
        target = smooth(y, self.smoothing)
        if not self.jsd:
            views, _ = self(x, y, rng)
            logits = model(views)
            return F.cross_entropy(logits.float(), target.float()), logits
        aug1, aug2 = self.views(x, rng, 2)
        logits_clean, logits_aug1, logits_aug2 = model(torch.cat([x, aug1, aug2])).split(len(x))
        loss = F.cross_entropy(logits_clean.float(), target.float())
        return loss + self.jsd_weight * jensen_shannon(logits_clean, logits_aug1, logits_aug2), logits_clean
