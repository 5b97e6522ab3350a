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


def forward_passes(num_samples: int, batch_size: int, min_batch: int = 1) -> list[list[int]]:
    """The noise draws behind each forward pass: one of ``batch_size`` each (the last one shorter), a last draw
    smaller than ``min_batch`` joined to the pass before it."""
    passes = [[min(batch_size, num_samples - start)] for start in range(0, num_samples, batch_size)]
    if len(passes) > 1 and passes[-1][0] < min_batch:
        last = passes.pop()
        passes[-1] += last
    return passes


def generated_batches(
    generator: nn.Module,
    num_samples: int,
    batch_size: int,
    z_dim: int,
    prior: str,
    num_classes: int,
    device: torch.device,
    seed: int,
    min_batch: int = 1,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Samples of ``generator`` as uint8 CPU batches with their requested labels; the same ``seed`` gives the same samples.

    Labels cycle 0..C-1 so every class is equally represented; unconditional generators ignore them. ``min_batch``:
    the fewest samples one forward pass may hold (2 for BatchNorm with batch statistics, which cannot normalise one).
    """
    rng = torch.Generator().manual_seed(seed)
    start = 0
    for draws in forward_passes(num_samples, batch_size, min_batch):
        # Noise is drawn in batch_size chunks whatever min_batch joins: every setting scores the same noise.
        z = torch.cat([sample_noise(prior, n, z_dim, "cpu", generator=rng) for n in draws]).to(device)
        labels = torch.arange(start, start + z.size(0)) % num_classes
        start += z.size(0)
        yield to_uint8(generate(generator, z, labels.to(device))).cpu(), labels
