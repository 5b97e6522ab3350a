"""Noise priors for the generator's latent code (seed S2 compares normal and uniform)."""

from __future__ import annotations

import torch
from torch import Tensor

PRIORS = ("normal", "uniform")


def sample_noise(prior: str, n: int, dim: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> Tensor:
    """``n`` latent vectors of size ``dim``: N(0, I) or U[-1, 1]^dim."""
    if prior == "normal":
        return torch.randn(n, dim, device=device, generator=generator)
    if prior == "uniform":
        return torch.rand(n, dim, device=device, generator=generator) * 2.0 - 1.0
    raise ValueError(f"unknown noise prior {prior!r}; choose one of {', '.join(PRIORS)}")
