"""The SNGAN-style ResNet and its conditionings: shapes at 28 and 32 px, the class reaching each net."""

import pytest
import torch
from torch import nn

from ganbench.models.conditioning import CONDITIONINGS, ConditionalBatchNorm2d, Projection
from ganbench.models.resnet import Discriminator, Generator, base_size


@pytest.mark.parametrize("size,expected", [(28, (7, 2)), (32, (4, 3))])
def test_base_size(size, expected):
    assert base_size(size) == expected


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_shapes_and_whether_the_label_changes_the_outputs(size, conditioning):
    torch.manual_seed(0)
    g, d = Generator(16, size, width=16, conditioning=conditioning).eval(), Discriminator(size, width=16, conditioning=conditioning).eval()
    for module in g.modules():  # cBN starts as plain BN (scale 1, shift 0 for every class): give the classes their own
        if isinstance(module, ConditionalBatchNorm2d):
            nn.init.normal_(module.shift.weight)
    z = torch.randn(2, 16).repeat(2, 1)
    labels = torch.tensor([0, 1, 2, 3])
    x = g(z, labels)
    assert x.shape == (4, 1, size, size) and x.abs().max() <= 1
    g_uses_label = not torch.allclose(x[:2], x[2:])
    assert g_uses_label == (conditioning != "none") == g.conditional
    same = x[:1].repeat(2, 1, 1, 1)
    score, classes = d(same, torch.tensor([0, 5]))
    assert (not torch.isclose(score[0], score[1])) == (conditioning in ("concat", "projection", "cbn"))
    assert (classes is not None) == (conditioning == "acgan")


def test_every_discriminator_weight_is_spectrally_normalised():
    d = Discriminator(28, width=16, conditioning="cbn")
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert layers and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)


def test_conditional_batchnorm_is_batchnorm_with_a_per_class_affine():
    cbn = ConditionalBatchNorm2d(3, 4)
    with torch.no_grad():
        cbn.scale.weight[2] = torch.tensor([2.0, 2.0, 2.0])
        cbn.shift.weight[2] = torch.tensor([1.0, 0.0, -1.0])
    x = torch.randn(8, 3, 5, 5)
    plain = nn.BatchNorm2d(3, affine=False)(x)
    out = cbn(x, torch.full((8,), 2))
    assert torch.allclose(out, plain * 2 + torch.tensor([1.0, 0.0, -1.0])[None, :, None, None], atol=1e-5)


def test_projection_adds_the_inner_product_of_the_class_embedding_and_the_features():
    proj = Projection(3, 2)
    with torch.no_grad():
        proj.embed.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0]]))
    h = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    assert proj(h, torch.tensor([0, 1])).tolist() == [1.0, 7.0]


def test_sngan_config_refuses_an_unknown_conditioning_and_a_second_spectral_norm():
    from hydra import compose, initialize_config_module

    from ganbench.validate import config_problems

    with initialize_config_module("ganbench.conf", version_base="1.3"):
        bad = compose("config", overrides=["model=sngan", "model.conditioning=film"])
        twice = compose("config", overrides=["model=sngan", "stabilize=spectral_norm"])
        good = compose("config", overrides=["model=sngan", "model.conditioning=projection"])
    assert any("model.conditioning='film' is invalid" in p for p in config_problems(bad))
    assert any("already built into model=sngan" in p for p in config_problems(twice))
    assert config_problems(good) == []
    assert good.loss.name == "hinge" and good.model.generator.conditioning == "projection"
