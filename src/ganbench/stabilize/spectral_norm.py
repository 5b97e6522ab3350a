"""``spectral_norm``: spectral normalisation of every weighted layer of D (Miyato et al. 2018)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ganbench.stabilize.base import Trick


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap every conv, linear and embedding layer of ``module`` in spectral normalisation.

    Embeddings too: a projection discriminator's class embedding is one of its layers, normalised in SNGAN-projection
    (Miyato & Koyama 2018) as in ganbench's own ``model=sngan``.
    """
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d, nn.Embedding)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            apply_spectral_norm(child)
    return module


class SpectralNorm(Trick):
    name = "spectral_norm"
    stage = 20

    def fit_problems(self, config: Mapping[str, Any]) -> list[str]:
        model = config["model"]
        if (model.get("discriminator") or {}).get("spectral_norm"):
            return [f"stabilize=spectral_norm is already built into model={model['name']}'s discriminator; drop the trick"]
        return []

    def discriminator(self, d: nn.Module) -> nn.Module:
        return apply_spectral_norm(d)
