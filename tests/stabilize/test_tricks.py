"""Label tricks, instance noise and the architectural tricks."""

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn

from ganbench.losses import get_loss
from ganbench.models import build_models
from ganbench.stabilize import TrickSet, stabilize_tag
from ganbench.stabilize.d_dropout import add_dropout
from ganbench.stabilize.instance_noise import InstanceNoise
from ganbench.stabilize.noisy import flip_targets
from ganbench.stabilize.spectral_norm import apply_spectral_norm


def make_target_maker(loss, stabilize, generator):
    return TrickSet(stabilize).targets(loss, generator)


@pytest.mark.parametrize("loss,real,fake", [("bce", 0.9, 0.0), ("lsgan", 0.9, 0.0), ("wasserstein", 0.9, -1.0), ("hinge", 0.9, -1.0)])
def test_smoothing_pulls_the_real_target_to_magnitude_point_nine(loss, real, fake):
    maker = make_target_maker(get_loss(loss), {"smooth": {"real_target": 0.9}}, None)
    r, f = maker(8, torch.device("cpu"))
    assert torch.allclose(r, torch.full((8,), real)) and torch.allclose(f, torch.full((8,), fake))


@pytest.mark.parametrize("loss", ["bce", "wasserstein"])
def test_flips_flip_int_p_n_targets_as_seed_s0b_code(loss):
    spec = get_loss(loss)
    maker = make_target_maker(spec, {"noisy": {"flip_prob": 0.05}}, torch.Generator().manual_seed(0))
    for _ in range(10):  # batch 32, p 0.05: int(1.6) = 1 of each side (round() would flip 2)
        r, f = maker(32, torch.device("cpu"))
        assert (r == spec.fake_target).sum() == 1 and (r == spec.real_target).sum() == 31
        assert (f == spec.real_target).sum() == 1 and (f == spec.fake_target).sum() == 31
    r, f = make_target_maker(spec, {"noisy": {"flip_prob": 0.05}}, None)(16, torch.device("cpu"))
    assert torch.all(r == spec.real_target) and torch.all(f == spec.fake_target)  # int(0.8) = 0: none


def test_flip_positions_are_drawn_with_replacement_so_at_most_int_p_n_flip():
    generator = torch.Generator().manual_seed(0)
    counts = []
    for _ in range(20):
        r, _ = flip_targets(torch.ones(64), torch.zeros(64), 0.25, generator)
        counts.append(int((r == 0).sum()))
    assert max(counts) <= 16 and min(counts) < 16  # int(0.25 * 64) = 16 draws; a repeated position flips once
    # A hand-worked case: int(0.1 * 25) = 2 positions, the first two draws of the same random stream.
    expected = torch.randint(0, 25, (2,), generator=torch.Generator().manual_seed(3))
    r, _ = flip_targets(torch.ones(25), torch.zeros(25), 0.1, torch.Generator().manual_seed(3))
    assert set(torch.nonzero(r == 0).flatten().tolist()) == set(expected.tolist())


def test_flip_keeps_smoothed_values():
    real = torch.full((4,), 0.9)
    r, f = flip_targets(real, torch.zeros(4), 1.0, torch.Generator().manual_seed(0))
    flipped_real, flipped_fake = r == 0, f != 0
    assert flipped_real.any() and torch.equal(r[~flipped_real], real[~flipped_real])  # a flip takes the other side's value
    assert flipped_fake.any() and torch.allclose(f[flipped_fake], torch.tensor(0.9))


@pytest.mark.parametrize("loss,fake_low,fake_high", [("bce", 0.0, 0.3), ("wasserstein", -1.0, -0.7)])
def test_smooth_range_matches_seed_s0(loss, fake_low, fake_high):
    s = {"smooth_range": {"real_low": 0.7, "real_high": 1.2, "fake_high": 0.3}}
    r, f = make_target_maker(get_loss(loss), s, torch.Generator().manual_seed(0))(10_000, torch.device("cpu"))
    assert 0.7 <= r.min() and r.max() <= 1.2 and r.mean() == pytest.approx(0.95, abs=0.01)
    assert fake_low <= f.min() and f.max() <= fake_high


def test_generator_targets_are_never_smoothed_or_flipped():
    maker = make_target_maker(get_loss("bce"), {"smooth": {"real_target": 0.9}, "noisy": {"flip_prob": 0.5}}, None)
    assert torch.equal(maker.generator_targets(5, torch.device("cpu")), torch.ones(5))


def test_instance_noise_anneals_to_zero():
    noise = InstanceNoise(std=0.5, anneal_steps=10, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(10_000)
    assert noise(x).std().item() == pytest.approx(0.5, rel=0.05)
    noise.step = 5
    assert noise.current_std() == pytest.approx(0.25)
    noise.step = 10
    assert torch.equal(noise(x), x)


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    d = apply_spectral_norm(nn.Sequential(nn.Linear(20, 20), nn.LeakyReLU(0.2), nn.Linear(20, 1)))
    for _ in range(20):  # power iterations run in training mode
        d(torch.randn(4, 20))
    weight = d[0].weight
    assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_spectral_norm_reaches_a_projection_discriminators_class_embedding():
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=["model=cgan_projection", "stabilize=spectral_norm"])
    _, d = build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, 28, 10)
    d = TrickSet(OmegaConf.to_container(cfg.stabilize)).discriminator(d)
    weighted = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert any(isinstance(m, nn.Embedding) for m in weighted) and any(isinstance(m, nn.Conv2d) for m in weighted)
    assert all(nn.utils.parametrize.is_parametrized(m, "weight") for m in weighted)


def test_d_dropout_follows_every_activation():
    d = add_dropout(nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1)), 0.3)
    assert isinstance(d[1], nn.Sequential) and isinstance(d[1][1], nn.Dropout) and d[1][1].p == 0.3


def test_stabilize_tag_names_the_combination():
    assert stabilize_tag({}) == "none"
    assert stabilize_tag({"smooth": {}, "noisy": {}}) == "smooth+noisy"
