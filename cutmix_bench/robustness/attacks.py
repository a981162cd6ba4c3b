"""White-box L-inf attacks on [0, 1] pixels: FGSM (Goodfellow et al., 2015) and PGD (Madry et al., 2018).

`forward` maps [0, 1] NCHW images to logits with the normalisation inside (`EvalContext.forward`), so
the epsilon ball and the clipping are in pixel units. The model must be in eval mode (BatchNorm frozen):
the attacks never change it and compute gradients for the input only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]


def loss_gradient(forward: Forward, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed cross entropy with respect to the input only (parameters get no .grad);
    summed rather than averaged so that the sign does not depend on the batch size."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(forward(x).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(forward: Forward, x: torch.Tensor, y: torch.Tensor, eps: float,
         sign: torch.Tensor | None = None) -> torch.Tensor:
    """One signed-gradient step of size `eps`, clipped to [0, 1]. `sign`: the sign of `loss_gradient` at (x, y)
    when already known, so that several epsilons share one gradient."""
    sign = loss_gradient(forward, x, y).sign() if sign is None else sign
    return (x + eps * sign).clamp(0, 1).detach()


def project(adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Closest point of the L-inf ball of radius `eps` around `x`, intersected with [0, 1]."""
    return torch.minimum(torch.maximum(adv, x - eps), x + eps).clamp(0, 1)


def pgd(forward: Forward, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, steps: int,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """`steps` signed-gradient steps of size `step`, each projected onto the eps-ball around x and [0, 1].

    With a (CPU) `generator` the start is uniform in the eps-ball (Madry et al.), drawn from it so that it is
    the same on every device; without one the attack starts at x."""
    adv = x.detach()
    if generator is not None:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        adv = project(x + (2 * noise - 1) * eps, x, eps)
    for _ in range(steps):
        adv = project(adv + step * loss_gradient(forward, adv, y).sign(), x, eps)
    return adv.detach()
