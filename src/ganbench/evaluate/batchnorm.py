"""Which BatchNorm statistics a generator samples with during evaluation (``eval.bn_mode``), a stated choice.

* ``eval``: the running statistics accumulated in training (PyTorch's eval mode; what sampling always did).
* ``batch``: each sampled batch's own statistics (BatchNorm in train mode under no_grad), so the scores
  depend on ``eval.batch_size``; on a copy, so the running statistics of the trained generator are untouched.
* ``standing``: StudioGAN's standing statistics: on a copy, the running statistics are reset and re-estimated
  as a cumulative average (``momentum=None``) over ``eval.standing_steps`` batches of fresh samples, then the
  copy samples in eval mode.

Every mode leaves the generator handed in exactly as it was (weights, buffers, train/eval flag): training
continues as if nothing had happened.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ganbench.evaluate.settings import BN_MODES
from ganbench.noise import sample_noise

STANDING_SEED_OFFSET = 7_000_003  # standing statistics draw their own noise, apart from the scored samples'


def batchnorm_layers(module: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer (1d/2d/3d, conditional BatchNorms built on them included) with running statistics."""
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


class BatchStatistics(nn.Module):
    """A generator whose BatchNorm layers stay in train mode (batch statistics) whatever ``eval()`` asks.

    ``ganbench.models.sampling.generate`` switches generators to eval mode; this wrapper keeps the rest of
    the network in eval mode (dropout off) and its BatchNorm layers normalising with the batch's statistics.
    It wraps a copy, so the running statistics those passes update are thrown away with it.
    """

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.train(False)

    def train(self, mode: bool = True) -> "BatchStatistics":
        self.training = mode
        self.inner.eval()
        for layer in batchnorm_layers(self.inner):
            layer.train()
        return self

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.inner(z, labels)


@torch.no_grad()
def standing_statistics(
    generator: nn.Module, steps: int, batch_size: int, z_dim: int, prior: str, num_classes: int, device: torch.device, seed: int
) -> nn.Module:
    """A copy of ``generator`` in eval mode whose BatchNorm running statistics are re-estimated from fresh samples."""
    standing = copy.deepcopy(generator)
    standing.eval()
    layers = batchnorm_layers(standing)
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average: every step weighs the same
        layer.train()
    rng = torch.Generator().manual_seed(seed + STANDING_SEED_OFFSET)
    for step in range(steps):
        z = sample_noise(prior, batch_size, z_dim, "cpu", generator=rng).to(device)
        labels = (torch.arange(batch_size) + step * batch_size) % max(num_classes, 1)
        standing(z, labels.to(device))
    return standing.eval()


def smallest_batch(mode: str) -> int:
    """The fewest samples one forward pass may hold under BatchNorm mode ``mode``: one sample has no batch statistics."""
    return 2 if mode == "batch" else 1


def sampling_generator(
    generator: nn.Module,
    mode: str,
    *,
    steps: int,
    batch_size: int,
    z_dim: int,
    prior: str,
    num_classes: int,
    device: torch.device,
    seed: int,
) -> nn.Module:
    """The module to draw the scored samples from under BatchNorm mode ``mode`` (eval, batch or standing)."""
    if mode not in BN_MODES:
        raise ValueError(f"bn_mode={mode!r}: choose one of {', '.join(BN_MODES)}")
    if mode == "eval" or not batchnorm_layers(generator):
        return generator  # without BatchNorm every mode samples the same
    if mode == "batch":
        return BatchStatistics(copy.deepcopy(generator))
    return standing_statistics(generator, steps, batch_size, z_dim, prior, num_classes, device, seed)
