"""``spectral_norm``: spectral normalisation of every conv and linear layer of D (Miyato et al. 2018)."""

from __future__ import annotations

from torch import nn

from ganbench.stabilize.base import Trick


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap every conv and linear layer of ``module`` in spectral normalisation."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            apply_spectral_norm(child)
    return module


class SpectralNorm(Trick):
    name = "spectral_norm"
    stage = 20

    def discriminator(self, d: nn.Module) -> nn.Module:
        return apply_spectral_norm(d)
