"""How a model's weights start (``model.init``): the classes' PyTorch defaults (null), ``dcgan``, ``keras`` or
``pylearn2`` (the original GAN's code: uniform weights in a per-net range, ``model.init_range``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from ganbench.models.conditioning import ConditionalBatchNorm2d

INITS = ("dcgan", "keras", "pylearn2")  # model.init's choices besides null (PyTorch's defaults)
KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.01  # Keras' momentum=0.99 in PyTorch's convention, where momentum weighs the new batch


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv/linear weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def keras_init(module: nn.Module, bn_momentum: float | None = None) -> None:
    """Keras' defaults: Glorot-uniform Dense/Conv/ConvTranspose kernels, zero biases, U(-0.05, 0.05) embeddings,
    BatchNorm eps 1e-3 (scale 1, shift 0 as PyTorch's); ``bn_momentum`` (PyTorch's convention) when given.
    """
    # A conditional BatchNorm's embeddings are its per-class scale and shift, which start at 1 and 0 as a BN's do.
    norm_tables = {id(t) for m in module.modules() if isinstance(m, ConditionalBatchNorm2d) for t in (m.scale, m.shift)}
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # Glorot's bound sqrt(6 / (fan_in + fan_out)) is symmetric in the fans, so PyTorch's (in, out)
            # order of a transposed conv's weight gives Keras' bound too.
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding) and id(m) not in norm_tables:
            nn.init.uniform_(m.weight, -0.05, 0.05)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps = KERAS_BN_EPS
            if bn_momentum is not None:
                m.momentum = bn_momentum


def pylearn2_init(module: nn.Module, irange: float) -> None:
    """Pylearn2's ``irange``: every linear/conv weight ~ U(-irange, irange), biases zero (goodfeli/adversarial)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.uniform_(m.weight, -irange, irange)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_weights(net: nn.Module, init: str | None, net_cfg: Mapping[str, Any], irange: float | None = None) -> None:
    """Initialise ``net`` (G or D, built from ``net_cfg``) as ``model.init`` asks; null keeps the classes' own.

    ``irange`` is the net's entry of ``model.init_range``, which ``pylearn2`` needs.
    """
    if init is None:
        return
    if init == "pylearn2":
        if irange is None or irange <= 0:
            raise ValueError("model.init=pylearn2 needs model.init_range.generator and .discriminator (> 0)")
        pylearn2_init(net, irange)
    elif init == "dcgan":
        dcgan_init(net)
    elif init == "keras":
        # Keras' BatchNorm momentum, unless the net's config sets its own (seed S1's Keras 0.8 is bn_momentum: 0.2).
        keras_init(net, None if "bn_momentum" in net_cfg else KERAS_BN_MOMENTUM)
    else:
        raise ValueError(f"model.init={init!r} is invalid: choose null, {' or '.join(INITS)}")
