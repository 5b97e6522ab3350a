"""GAN losses as small pure functions of discriminator outputs and targets.

Every loss is written in terms of the discriminator's targets, so label tricks
(smoothing, flips) mean the same thing under every loss:

* probability losses (``minimax``, ``bce``, ``lsgan``): real target 1, fake 0;
* margin losses (``wasserstein``, ``hinge``): real target +1, fake -1, as in the
  Keras WGAN of seed S0 (``mean(y_true * y_pred)``).

``d_loss(real_logits, fake_logits, real_targets, fake_targets)`` and
``g_loss(fake_logits, targets)`` take raw discriminator outputs (logits, or the
critic's score) and return a scalar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def bce_d_loss(real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor) -> Tensor:
    """-E[t log D(x) + (1-t) log(1-D(x))] over the real and the fake batch."""
    return F.binary_cross_entropy_with_logits(real_logits, real_targets) + F.binary_cross_entropy_with_logits(
        fake_logits, fake_targets
    )


def bce_g_loss(fake_logits: Tensor, targets: Tensor) -> Tensor:
    """Non-saturating: G maximises log D(G(z)), i.e. BCE toward the real target."""
    return F.binary_cross_entropy_with_logits(fake_logits, targets)


def minimax_g_loss(fake_logits: Tensor, targets: Tensor) -> Tensor:
    """Saturating (the original value function): G minimises log(1 - D(G(z))).

    ``targets`` are the real targets G aims for; D's fake target is ``1 - targets``,
    so G minimises the negative of D's cross-entropy on the fake batch.
    """
    return -F.binary_cross_entropy_with_logits(fake_logits, 1.0 - targets)


def lsgan_d_loss(real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor) -> Tensor:
    """Least squares (Mao et al. 2017, a=0, b=c=1): 1/2 E[(D(x)-t)^2] per batch."""
    return 0.5 * (F.mse_loss(real_logits, real_targets) + F.mse_loss(fake_logits, fake_targets))


def lsgan_g_loss(fake_logits: Tensor, targets: Tensor) -> Tensor:
    """1/2 E[(D(G(z)) - t)^2] toward the real target."""
    return 0.5 * F.mse_loss(fake_logits, targets)


def wasserstein_d_loss(real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor) -> Tensor:
    """Critic loss -E[y * C(x)] with y = +1 for real, -1 for fake: E[C(G(z))] - E[C(x)]."""
    return -(real_targets * real_logits).mean() - (fake_targets * fake_logits).mean()


def wasserstein_g_loss(fake_logits: Tensor, targets: Tensor) -> Tensor:
    """-E[y * C(G(z))] with y = +1: G raises the critic's score of its samples."""
    return -(targets * fake_logits).mean()


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor, real_targets: Tensor, fake_targets: Tensor) -> Tensor:
    """E[relu(1 - y * D(x))] over both batches (y = +1 real, -1 fake)."""
    return F.relu(1.0 - real_targets * real_logits).mean() + F.relu(1.0 - fake_targets * fake_logits).mean()


# D's loss on one batch alone, real or fake, given its targets: each d_loss above is this term on the real
# batch plus this term on the fake batch, so a D update can also take the two in separate steps (Keras-GAN's
# train_on_batch(real) then train_on_batch(fake), train.d_update=separate).
def bce_d_term(logits: Tensor, targets: Tensor) -> Tensor:
    """-E[t log D(x) + (1-t) log(1-D(x))] over one batch."""
    return F.binary_cross_entropy_with_logits(logits, targets)


def lsgan_d_term(logits: Tensor, targets: Tensor) -> Tensor:
    """1/2 E[(D(x) - t)^2] over one batch."""
    return 0.5 * F.mse_loss(logits, targets)


def wasserstein_d_term(logits: Tensor, targets: Tensor) -> Tensor:
    """-E[y * C(x)] over one batch."""
    return -(targets * logits).mean()


def hinge_d_term(logits: Tensor, targets: Tensor) -> Tensor:
    """E[relu(1 - y * D(x))] over one batch."""
    return F.relu(1.0 - targets * logits).mean()


@dataclass(frozen=True)
class GANLoss:
    """A loss choice: its D and G functions and the target values they expect."""

    name: str
    d_loss: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor, Tensor], Tensor]
    real_target: float
    fake_target: float
    # Whether D's output is a probability logit (D(x) is reported as sigmoid) or a raw score.
    probabilistic: bool
    # D's loss on one batch (real or fake) alone; d_loss is its sum over both. None: the loss does not split.
    d_term: Callable[[Tensor, Tensor], Tensor] | None = None


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss("minimax", bce_d_loss, minimax_g_loss, 1.0, 0.0, True, bce_d_term),
    "bce": GANLoss("bce", bce_d_loss, bce_g_loss, 1.0, 0.0, True, bce_d_term),
    "lsgan": GANLoss("lsgan", lsgan_d_loss, lsgan_g_loss, 1.0, 0.0, False, lsgan_d_term),
    # Hinge's generator loss is the Wasserstein one (Lim & Ye 2017; Miyato et al. 2018).
    "hinge": GANLoss("hinge", hinge_d_loss, wasserstein_g_loss, 1.0, -1.0, False, hinge_d_term),
    "wasserstein": GANLoss("wasserstein", wasserstein_d_loss, wasserstein_g_loss, 1.0, -1.0, False, wasserstein_d_term),
}


def get_loss(name: str) -> GANLoss:
    """The loss registered as ``name``."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None


def class_loss(class_logits: Tensor | None, labels: Tensor) -> Tensor | float:
    """ACGAN's auxiliary cross-entropy; 0 for discriminators without a class head."""
    if class_logits is None:
        return 0.0
    return F.cross_entropy(class_logits, labels)


def gradient_penalty(critic: Callable, real: Tensor, fake: Tensor, labels: Tensor, weight: float) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad C(x_hat)|| - 1)^2] on random interpolates."""
    alpha = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score, _ = critic(mixed, labels)
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    return weight * ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()
