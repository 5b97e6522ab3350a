"""model.conditioning on the DCGAN-style conditional models: the class reaches the nets as chosen."""

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn

from ganbench.models import build_models
from ganbench.models.conditioning import ConditionalBatchNorm2d
from ganbench.models.dcgan import Discriminator, Generator


def nets(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    torch.manual_seed(0)
    return build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, 28, 10)


def shapes(module: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_the_default_conditionings_build_exactly_the_nets_of_the_old_flags():
    g, d = nets("model=acgan")
    assert shapes(g) == shapes(Generator(100, 28, conditional=True)) and shapes(d) == shapes(Discriminator(28, class_head=True))
    g, d = nets("model=cgan_conv")
    assert shapes(g) == shapes(Generator(100, 28, conditional=True)) and shapes(d) == shapes(Discriminator(28, conditional=True))


@pytest.mark.parametrize("conditioning", ["concat", "projection", "cbn", "acgan"])
def test_each_conditioning_makes_both_nets_depend_on_the_label(conditioning):
    g, d = nets("model=cgan_conv", f"model.conditioning={conditioning}")
    for module in g.modules():  # cBN starts as plain BN for every class
        if isinstance(module, ConditionalBatchNorm2d):
            nn.init.normal_(module.shift.weight)
    g.eval(), d.eval()
    z = torch.randn(1, 100).repeat(2, 1)
    x = g(z, torch.tensor([1, 2]))
    assert not torch.allclose(x[0], x[1])
    score, classes = d(x[:1].repeat(2, 1, 1, 1), torch.tensor([1, 2]))
    assert (not torch.isclose(score[0], score[1])) == (conditioning != "acgan")  # ACGAN's D reads the class via its head
    assert (classes is not None) == (conditioning == "acgan")
    assert any(isinstance(m, ConditionalBatchNorm2d) for m in g.modules()) == (conditioning == "cbn")
