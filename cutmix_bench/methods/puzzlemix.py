"""PuzzleMix (Kim et al., ICML 2020), simplified: a block-wise mask that keeps the most salient blocks of both
images under the Mixup area, saliency from input gradients; no graph cut, no transport."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import METHODS
from .base import Method, check_positive, check_probability, criterion_for, mask_mix, to_device

BLOCK_NUMS = (2, 4, 8, 16)  # the official 2 ** randint(1, 5)


def input_saliency(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[B, H, W] sqrt(mean over channels of (d loss / d x)^2), the loss being the clean batch's cross entropy
    with the model in eval mode, as the official CIFAR main.py with clean_lam 0 (BatchNorm statistics are not
    updated). Only the input's gradient is taken: the parameters' .grad stay untouched."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            inputs = x.detach().requires_grad_(True)
            loss = -(y * F.log_softmax(model(inputs).float(), dim=1)).sum(1).mean()
            (grad,) = torch.autograd.grad(loss, inputs)
    finally:
        model.train(was_training)
    return grad.float().pow(2).mean(1).sqrt()


def block_index(size: int, blocks: int, device: torch.device) -> torch.Tensor:
    """One-hot [size, blocks]: pixel row r lies in block floor(r * blocks / size), the rows F.interpolate
    (nearest) gives each block when the official code upsamples its block mask to the image."""
    rows = torch.arange(size, device=device) * blocks // size
    return F.one_hot(rows, blocks).float()


def optimal_mask(own: torch.Tensor, partner: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean [B, N, N]: the `keep` blocks where own - partner saliency is largest, i.e. the block mask that
    maximises the saliency kept from both images (own in the mask, partner outside) with exactly `keep` own blocks:
    the unary term of the official graph-cut energy, its label prior replaced by this hard area constraint."""
    batch, n, _ = own.shape
    gain = (own - partner).flatten(1)
    order = gain.argsort(dim=1, descending=True, stable=True)
    chosen = torch.zeros_like(gain, dtype=torch.bool)
    chosen.scatter_(1, order[:, :keep], True)
    return chosen.view(batch, n, n)


@METHODS.register("puzzlemix")
class PuzzleMix(Method):
    """PuzzleMix (simplified): per pair, the blocks of each image with the larger saliency share, own share ~ Mixup.

    Sampling as the official CIFAR code (snu-mllab/PuzzleMix main.py, mixup.py mixup_process/mixup_graph):
    lam ~ Beta(alpha, alpha) with alpha 1, one permutation, block_num = 2 ** randint(1, 5) in {2, 4, 8, 16};
    saliency sqrt(mean_c grad^2) of the clean loss (model in eval mode, clean_lam 0), average-pooled per block
    and normalised to sum 1 per image (the official unary term). Simplified (stated, not the official energy):
    the mask keeps round(lam * N^2) blocks of the image itself, those where its saliency share exceeds its
    partner's most, which maximises the kept saliency exactly under that area; the official instead minimises
    a graph-cut energy (pygco alpha-beta swap) with smoothness terms (beta 1.2, gamma 0.5), a label prior eta
    0.2 and 3 labels (half-blended blocks), then moves salient blocks into the mask by optimal transport
    (t_size 4, t_eps 0.8); its adversarial noise option is off. The label weight is the exact pixel share of
    the mask (the official also weights by the mask's area). Draws: coin, lam, block_num, perm.
    Loss: by default (`loss: soft_ce`) the runner's soft cross-entropy on the mixed targets, as for every method;
    the official main.py trains with `bce_loss(softmax(output), reweighted_target)` (nn.BCELoss on the softmax), a
    different objective: `loss: bce` trains with it."""

    reference = ("Kim et al., Puzzle Mix: Exploiting Saliency and Local Statistics for Optimal Mixup, ICML 2020; "
                 "https://github.com/snu-mllab/PuzzleMix")
    input_space = False  # the saliency needs the model

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, loss: str = "soft_ce") -> None:
        self.criterion = criterion_for(loss)
        self.alpha = check_positive("alpha", alpha)
        self.prob = check_probability("prob", prob)
        self.model: torch.nn.Module | None = None

    def attach(self, model: torch.nn.Module) -> None:
        self.model = model

    def sample(self, batch_size: int, height: int, width: int, rng: np.random.Generator) -> dict[str, Any]:
        active = bool(rng.random() < self.prob)
        lam = float(rng.beta(self.alpha, self.alpha))
        block_num = BLOCK_NUMS[int(rng.integers(len(BLOCK_NUMS)))]
        return {"active": active, "lam": lam, "block_num": block_num, "perm": rng.permutation(batch_size)}

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not params["active"]:
            return x, y
        if self.model is None:
            raise RuntimeError("PuzzleMix needs the model for its saliency: call attach(model) first")
        batch, _, height, width = x.shape
        n = params["block_num"]
        rows, cols = block_index(height, n, x.device), block_index(width, n, x.device)
        saliency = input_saliency(self.model, x, y)
        blocks = torch.einsum("bhw,hn,wm->bnm", saliency, rows, cols) / \
            torch.einsum("h,w->hw", rows.sum(0), cols.sum(0)).clamp_min(1)  # mean per block (as avg_pool2d)
        share = blocks / blocks.flatten(1).sum(1).clamp_min(1e-12)[:, None, None]
        perm = to_device(params["perm"], x.device)
        chosen = optimal_mask(share, share[perm], int(round(params["lam"] * n * n))).float()
        keep = torch.einsum("hn,bnm,wm->bhw", rows, chosen, cols)[:, None]
        return mask_mix(x, y, keep, params["perm"])
