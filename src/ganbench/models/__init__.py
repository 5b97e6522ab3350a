"""Generators and discriminators, built from the ``model`` config group.

``conf/model/<name>.yaml`` names the classes it instantiates (``_target_``):
``mlp`` holds the fully connected GANs, ``dcgan`` the convolutional family,
``keras_seeds`` the exact architectures of the seed reports, built from ``keras_layers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from torch import nn

from ganbench.models.base import DOutput, keras_param_count
from ganbench.models.init import INITS, dcgan_init, init_weights, keras_init, pylearn2_init

__all__ = ["DOutput", "INITS", "build_discriminator", "build_generator", "build_models", "dcgan_init", "init_weights",
           "is_conditional", "keras_init", "keras_param_count", "pylearn2_init"]


def init_range(model_cfg: Mapping[str, Any], net: str) -> float | None:
    """``model.init_range.<net>``: the weight range ``model.init=pylearn2`` draws from, or None."""
    return (model_cfg.get("init_range") or {}).get(net)


def build_generator(model_cfg: Mapping[str, Any], z_dim: int, image_size: int, num_classes: int) -> nn.Module:
    """Instantiate G from the model config (``generator._target_``), initialised as the model asks."""
    generator = instantiate(model_cfg["generator"], z_dim=z_dim, image_size=image_size, num_classes=num_classes)
    init_weights(generator, model_cfg.get("init"), model_cfg["generator"], init_range(model_cfg, "generator"))
    return generator


def build_discriminator(model_cfg: Mapping[str, Any], image_size: int, num_classes: int) -> nn.Module:
    """Instantiate D from the model config (``discriminator._target_``), initialised as the model asks."""
    discriminator = instantiate(model_cfg["discriminator"], image_size=image_size, num_classes=num_classes)
    init_weights(discriminator, model_cfg.get("init"), model_cfg["discriminator"], init_range(model_cfg, "discriminator"))
    return discriminator


def build_models(model_cfg: Mapping[str, Any], z_dim: int, image_size: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    """(G, D) as the model config describes them; the stabilisation tricks are applied by the trainer's builder."""
    # Both nets are instantiated before either is initialised: the order the random stream has always had.
    generator = instantiate(model_cfg["generator"], z_dim=z_dim, image_size=image_size, num_classes=num_classes)
    discriminator = instantiate(model_cfg["discriminator"], image_size=image_size, num_classes=num_classes)
    init_weights(generator, model_cfg.get("init"), model_cfg["generator"], init_range(model_cfg, "generator"))
    init_weights(discriminator, model_cfg.get("init"), model_cfg["discriminator"], init_range(model_cfg, "discriminator"))
    return generator, discriminator


def is_conditional(generator: nn.Module) -> bool:
    """Whether the generator takes the class label into account."""
    return bool(getattr(generator, "conditional", False))
