"""The training-loop options the seed reports need: fakes on the real labels (S3), separate real and fake D
steps (Keras-GAN, S1), and Keras' initialisation (the Keras seeds), each in effect, not just accepted."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn

from ganbench.losses import LOSSES
from ganbench.models import build_models
from ganbench.train.build import build
from ganbench.train.loop import Hooks, fit
from ganbench.train.settings import TrainSettings
from ganbench.train.step import joint_update, separate_update
from ganbench.validate import config_problems

CPU = torch.device("cpu")


def compose_cfg(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def built_for(*overrides: str):
    torch.manual_seed(0)
    return build(TrainSettings.from_config(compose_cfg(*overrides), "test"), 10, CPU, total_steps=10)


def batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.randint(0, 10, (n,), generator=g)


def test_the_defaults_are_todays_loop():
    cfg = compose_cfg()
    assert (cfg.train.fake_labels, cfg.train.d_update) == ("uniform", "joint")
    step = built_for().step
    assert step.d_update is joint_update and not step.fakes_take_real_labels
    chosen = built_for("train.d_update=separate", "train.fake_labels=real").step
    assert chosen.d_update is separate_update and chosen.fakes_take_real_labels


# --- train.fake_labels ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reuse", [False, True])
def test_fake_labels_real_conditions_the_fakes_of_both_updates_on_the_real_labels(reuse):
    step = built_for("model=cgan_conv", "train.fake_labels=real", f"train.reuse_fakes={str(reuse).lower()}").step
    g_labels, d_labels = [], []
    step.generator.register_forward_hook(lambda module, args, out: g_labels.append(args[1].clone()))
    step.discriminator.register_forward_pre_hook(lambda module, args: d_labels.append(args[1].clone()))
    real, labels = batch()
    step.discriminator_step(real, labels)
    step.generator_step(16, CPU)
    assert len(g_labels) == (1 if reuse else 2) and all(torch.equal(seen, labels) for seen in g_labels)
    assert len(d_labels) == 3 and all(torch.equal(seen, labels) for seen in d_labels)  # real, fake, G's update


def test_fake_labels_real_takes_the_last_d_batch_when_d_steps_is_more_than_one():
    step = built_for("model=cgan_conv", "train.fake_labels=real").step
    g_labels = []
    step.generator.register_forward_hook(lambda module, args, out: g_labels.append(args[1].clone()))
    (real1, labels1), (real2, labels2) = batch(seed=1), batch(seed=2)
    step.discriminator_step(real1, labels1)
    step.discriminator_step(real2, labels2)
    step.generator_step(16, CPU)
    assert [torch.equal(seen, want) for seen, want in zip(g_labels, (labels1, labels2, labels2))] == [True] * 3


def test_fake_labels_uniform_draws_the_labels_of_the_fakes():
    step = built_for("model=cgan_conv").step
    g_labels = []
    step.generator.register_forward_hook(lambda module, args, out: g_labels.append(args[1].clone()))
    real, labels = batch(64)
    step.discriminator_step(real, labels)
    step.generator_step(64, CPU)
    assert len(g_labels) == 2 and not any(torch.equal(seen, labels) for seen in g_labels)


# --- train.d_update -------------------------------------------------------------------------------------


def count_steps(optimizer: torch.optim.Optimizer, snapshots: list, module: nn.Module) -> None:
    """Record D's parameters after every ``optimizer.step`` (PyTorch's own step hook)."""
    optimizer.register_step_post_hook(lambda opt, args, kwargs: snapshots.append([p.detach().clone() for p in module.parameters()]))


@pytest.mark.parametrize("mode,steps", [("joint", 1), ("separate", 2)])
def test_d_update_makes_one_or_two_d_optimizer_steps_per_d_update(mode, steps):
    step = built_for(f"train.d_update={mode}").step
    snapshots: list = []
    count_steps(step.d_optimizer, snapshots, step.discriminator)
    step.discriminator_step(*batch())
    assert len(snapshots) == steps
    step.generator_step(16, CPU)
    assert len(snapshots) == steps  # G's update never steps D's optimiser


def test_separate_d_update_is_a_real_only_step_then_a_fake_only_step():
    step = built_for("train.d_update=separate").step  # dcgan, BCE: real target 1, fake 0
    d_before = copy.deepcopy(step.discriminator)
    snapshots: list = []
    count_steps(step.d_optimizer, snapshots, step.discriminator)
    fakes = []
    step.generator.register_forward_hook(lambda module, args, out: fakes.append(out.detach().clone()))
    real, labels = batch()
    out = step.discriminator_step(real, labels)

    # The same two Keras train_on_batch calls by hand, on a copy of D with a fresh optimiser of the same kind.
    optimizer = type(step.d_optimizer)(d_before.parameters(), **step.d_optimizer.defaults)
    real_loss = F.binary_cross_entropy_with_logits(d_before(real, labels)[0], torch.ones(16))
    optimizer.zero_grad()
    real_loss.backward()
    optimizer.step()
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(d_before.parameters(), snapshots[0]))
    fake_loss = F.binary_cross_entropy_with_logits(d_before(fakes[0], labels)[0], torch.zeros(16))
    optimizer.zero_grad()
    fake_loss.backward()
    optimizer.step()
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(d_before.parameters(), snapshots[1]))

    # d_loss on joint's scale (the sum); d_loss_keras as Keras-GAN prints it, the mean of the two.
    total = real_loss.item() + fake_loss.item()
    assert out["d_loss"].item() == pytest.approx(total, rel=1e-5)
    assert out["d_loss_keras"].item() == pytest.approx(0.5 * total, rel=1e-5)
    assert "d_loss_keras" not in built_for().step.discriminator_step(*batch())


@pytest.mark.parametrize("loss", list(LOSSES))
def test_every_d_loss_is_its_real_term_plus_its_fake_term(loss):
    spec = LOSSES[loss]
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(8, generator=g), torch.randn(8, generator=g)
    real_t, fake_t = torch.full((8,), spec.real_target), torch.full((8,), spec.fake_target)
    split = spec.d_term(real, real_t) + spec.d_term(fake, fake_t)
    assert split.item() == pytest.approx(spec.d_loss(real, fake, real_t, fake_t).item(), rel=1e-6)


SEPARATE_GRID = [  # model, tricks, train.fake_labels
    ("dcgan", "[smooth_range,noisy]", "uniform"),
    ("dcgan", "[instance_noise,r1,ttur]", "real"),
    ("cgan", "smooth", "real"),
    ("acgan", "[noisy,spectral_norm]", "real"),
    ("wgan", "none", "uniform"),
    ("cgan_conv", "[ema,diffaug]", "real"),
]


@pytest.mark.parametrize("model,tricks,fake_labels", SEPARATE_GRID, ids=["-".join(c) for c in SEPARATE_GRID])
def test_separate_d_updates_and_real_fake_labels_train_with_the_tricks(model, tricks, fake_labels):
    cfg = compose_cfg(f"model={model}", f"stabilize={tricks}", "train.d_update=separate", f"train.fake_labels={fake_labels}",
                      "train.d_steps=1")
    assert config_problems(cfg) == []
    torch.manual_seed(0)
    built = build(TrainSettings.from_config(cfg, "test"), 10, CPU, total_steps=2)
    images, labels = batch(32)
    seen = []
    fit(built.step, images, labels, 16, 1, 2, 1, torch.Generator().manual_seed(0), built.schedulers,
        Hooks(on_step=lambda s, v: seen.append(v)), input_transforms=built.input_transforms)
    assert len(seen) == 2 and all(math.isfinite(v) for values in seen for v in values.values())
    assert all(v["d_loss_keras"] == pytest.approx(0.5 * v["d_loss"]) for v in seen)
    if model == "wgan":  # the weights are clipped after the D update, as Keras-GAN clips after both steps
        assert max(p.abs().max().item() for p in built.step.discriminator.parameters()) <= 0.01 + 1e-7


def test_r1_rides_on_the_real_step_of_separate_d_updates():
    step = built_for("train.d_update=separate", "stabilize=r1", "stabilize.r1.gamma=1000").step
    without = built_for("train.d_update=separate").step
    real, labels = batch()
    assert step.discriminator_step(real, labels)["d_loss"].item() > without.discriminator_step(real, labels)["d_loss"].item()
    assert step.regularizers[0].calls == 1  # once a D update, in its real step


@pytest.mark.parametrize(
    "overrides,message",
    [
        (("model=wgan_gp",), "train.d_update=separate does not fit model=wgan_gp: its gradient penalty"),
        (("stabilize=lecam",), "train.d_update=separate does not fit stabilize=lecam"),
        (("stabilize=[r1,bcr]",), "train.d_update=separate does not fit stabilize=bcr"),
    ],
)
def test_separate_d_updates_refuse_terms_that_need_both_batches(overrides, message, run_cli, tmp_path):
    proc = run_cli("ganbench", *overrides, "train.d_update=separate", f"tracking.uri=sqlite:///{tmp_path}/m.db",
                   f"hydra.run.dir={tmp_path}/out")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ganbench: error: {message}"), proc.stderr
    assert not (tmp_path / "m.db").exists()


@pytest.mark.parametrize("override,message", [
    ("train.fake_labels=labels", "train.fake_labels='labels' is invalid: choose uniform or real"),
    ("train.d_update=both", "train.d_update='both' is invalid: choose joint or separate"),
    ("model.init=he", "model.init='he' is invalid"),
])
def test_invalid_choices_are_named(override, message):
    assert any(message in p for p in config_problems(compose_cfg(override)))


# --- model.init=keras -----------------------------------------------------------------------------------


def nets_of(*overrides: str) -> tuple[nn.Module, nn.Module]:
    cfg = compose_cfg(*overrides)
    torch.manual_seed(0)
    return build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, cfg.dataset.image_size, 10)


def glorot_bound(weight: torch.Tensor) -> float:
    """sqrt(6 / (fan_in + fan_out)), Keras' fans: receptive field x (input + output channels), in either order."""
    receptive = weight[0][0].numel()
    return math.sqrt(6.0 / (receptive * (weight.size(0) + weight.size(1))))


def test_keras_init_is_glorot_uniform_with_zero_biases_and_keras_batchnorm():
    generator, discriminator = nets_of("model=seed_s3_cgan")
    layers = [m for net in (generator, discriminator) for m in net.modules()
              if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    assert any(isinstance(m, nn.Conv2d) for m in layers) and any(isinstance(m, nn.ConvTranspose2d) for m in layers)
    for m in layers:
        bound = glorot_bound(m.weight)
        assert m.weight.abs().max().item() <= bound and m.weight.abs().max().item() > 0.9 * bound  # uniform to the bound
        assert m.bias is None or torch.all(m.bias == 0)
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == pytest.approx(0.01) for m in norms)


def test_keras_init_draws_embeddings_within_0_05_and_keeps_a_models_own_bn_momentum():
    generator, discriminator = nets_of("model=seed_s1_cgan")  # Keras-GAN's CGAN: BN momentum 0.8, i.e. 0.2 here
    embeddings = [m for net in (generator, discriminator) for m in net.modules() if isinstance(m, nn.Embedding)]
    assert len(embeddings) == 2 and all(0.04 < m.weight.abs().max().item() <= 0.05 for m in embeddings)
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == pytest.approx(0.2) for m in norms)
    linear = next(m for m in discriminator.modules() if isinstance(m, nn.Linear))
    assert linear.weight.abs().max().item() <= glorot_bound(linear.weight) and torch.all(linear.bias == 0)
    # Without a momentum of its own, a net gets Keras' 0.99 (0.01 here).
    generator, _ = nets_of("model=dcgan", "model.init=keras")
    assert all(m.momentum == pytest.approx(0.01) and m.eps == 1e-3 for m in generator.modules() if isinstance(m, nn.BatchNorm2d))


def test_the_original_gan_starts_as_its_paper_code_uniform_weights_in_each_nets_range_and_zero_biases():
    generator, discriminator = nets_of("model=seed_s4_gan")
    for net, irange in ((generator, 0.05), (discriminator, 0.005)):
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        assert linears and all(torch.all(m.bias == 0) for m in linears)
        # Uniform on (-irange, irange): bounded and filling the range (a normal would not stop at it) ...
        w = torch.cat([m.weight.flatten() for m in linears]).abs()
        assert w.max().item() <= irange and w.max().item() > 0.999 * irange
        assert w.mean().item() == pytest.approx(irange / 2, rel=0.01)  # ... and E|U(-a, a)| = a / 2


def test_the_keras_seeds_start_keras_style_and_the_pytorch_ones_do_not():
    inits = {name: compose_cfg(f"model={name}").model.get("init") for name in
             ("seed_s0a_dcgan", "seed_s0c_acgan", "seed_s0d_wgan", "seed_s1_cgan", "seed_s3_cgan", "seed_s2_dcgan", "seed_s4_gan")}
    assert inits == {"seed_s0a_dcgan": "keras", "seed_s0c_acgan": "keras", "seed_s0d_wgan": "keras", "seed_s1_cgan": "keras",
                     "seed_s3_cgan": "keras", "seed_s2_dcgan": "dcgan", "seed_s4_gan": "pylearn2"}
    # model.init=null leaves PyTorch's defaults: a Linear's weights then stay within 1/sqrt(fan_in), not Glorot's bound.
    _, keras_d = nets_of("model=seed_s1_cgan")
    _, torch_d = nets_of("model=seed_s1_cgan", "model.init=null")
    assert not torch.equal(keras_d.embed.weight, torch_d.embed.weight) and torch_d.embed.weight.abs().max() > 1
