"""Drawing samples from a generator: eval-mode generation, the fixed sample-grid inputs, seeded sample streams."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ganbench.data.preprocess import to_uint8
from ganbench.noise import sample_noise

SAMPLES_PER_CLASS = 10  # the fixed-noise grid: a row per digit for conditional models
GRID_SEED_OFFSET = 1_000_003  # the grid's noise stream is the run's seed + this, apart from training's stream


@torch.no_grad()
def generate(generator: nn.Module, z: Tensor, labels: Tensor) -> Tensor:
    """Samples in eval mode (BatchNorm running statistics), restoring the previous mode."""
    was_training = generator.training
    generator.eval()
    try:
        return generator(z, labels)
    finally:
        generator.train(was_training)


def grid_inputs(seed: int, prior: str, z_dim: int, num_classes: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The noise and labels behind every epoch's sample grid: a row per class, ``SAMPLES_PER_CLASS`` each."""
    g = torch.Generator().manual_seed(seed + GRID_SEED_OFFSET)
    n = num_classes * SAMPLES_PER_CLASS
    z = sample_noise(prior, n, z_dim, "cpu", generator=g).to(device)
    labels = torch.arange(num_classes).repeat_interleave(SAMPLES_PER_CLASS).to(device)
    return z, labels


def generated_batches(
    generator: nn.Module,
    num_samples: int,
    batch_size: int,
    z_dim: int,
    prior: str,
    num_classes: int,
    device: torch.device,
    seed: int,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Samples of ``generator`` as uint8 CPU batches with their requested labels; the same ``seed`` gives the same samples.

    Labels cycle 0..C-1 so every class is equally represented; unconditional generators ignore them.
    """
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        z = sample_noise(prior, n, z_dim, "cpu", generator=rng).to(device)
        labels = torch.arange(start, start + n) % num_classes
        yield to_uint8(generate(generator, z, labels.to(device))).cpu(), labels
