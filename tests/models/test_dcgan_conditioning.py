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


@pytest.mark.parametrize("conditioning", ["projection", "cbn"])
def test_bn_momentum_changes_only_the_running_statistics_not_what_training_computes(conditioning):
    # model.generator.bn_momentum: every BatchNorm of G (conditional ones included) averages its running statistics
    # over about 2 / momentum batches; in train mode the output is the batch-statistics one, whatever the momentum.
    slow, default = (nets("model=cgan_conv", f"model.conditioning={conditioning}", *extra)[0]
                     for extra in (["+model.generator.bn_momentum=0.01"], []))
    norms = [m for m in slow.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 2 and all(m.momentum == 0.01 for m in norms)  # the projection's and one per hidden conv
    z, labels = torch.randn(32, 100), torch.arange(32) % 10
    assert torch.equal(slow(z, labels), default(z, labels))
    first = next(m for m in default.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    first_slow = norms[0]
    # running = (1 - m) * 0 + m * batch mean, so the two means differ by exactly the momentum ratio
    torch.testing.assert_close(first_slow.running_mean * 10, first.running_mean, rtol=1e-5, atol=1e-7)
    slow.eval(), default.eval()
    assert not torch.equal(slow(z, labels), default(z, labels))  # eval-mode sampling reads the running statistics
