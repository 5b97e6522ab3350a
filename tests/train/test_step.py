"""The training step for every model x its valid losses x each stabilisation trick, on real Hoda images."""

import math

import pytest
import torch
from hydra import compose, initialize_config_module

from ganbench.data import load_dataset
from ganbench.losses import LOSSES
from ganbench.stabilize import trick_names
from ganbench.train.build import build as build_from_settings
from ganbench.train.loop import Hooks, fit
from ganbench.train.settings import TrainSettings
from ganbench.train.step import clip_weights, joint_update

MODELS = ("gan", "dcgan", "cgan", "cgan_conv", "acgan", "wgan", "wgan_gp")
TRICKS = ("none", "smooth", "smooth_range", "noisy", "instance_noise", "ttur", "spectral_norm", "d_dropout")


def compose_cfg(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def build(cfg, num_classes, device, total_steps, epoch_steps=None):
    """What a run trains with, from a composed config (as the app builds it)."""
    return build_from_settings(TrainSettings.from_config(cfg, "test"), num_classes, device, total_steps, epoch_steps)


def valid_losses(model: str) -> list[str]:
    cfg = compose_cfg(f"model={model}")
    return list(cfg.model.get("valid_losses", LOSSES))


@pytest.fixture(scope="module")
def hoda_small(data_root, tmp_path_factory):
    import os

    os.environ.setdefault("GANBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    return load_dataset("hoda", "train", image_size=28, root=data_root, limit=64)


NARROW = {"sngan": ("model.generator.width=16", "model.discriminator.width=16")}  # the ResNet at test size
# The DCGAN-style nets under the conditionings a run can choose besides concat, with the tricks that reach into the
# conditioning (spectral norm and dropout: the projection's embedding, cbn's layers; mode seeking: same-label pairs;
# R1: D's gradient through the projection); cgan_projection is the same nets under another name.
CONDITIONED_TRICKS = ("none", "spectral_norm", "d_dropout", "mode_seeking", "r1")
CONDITIONED = {"cgan_conv-projection": ("model=cgan_conv", "model.conditioning=projection"),
               "cgan_conv-cbn": ("model=cgan_conv", "model.conditioning=cbn"),
               "cgan_projection": ("model=cgan_projection",)}


def model_overrides(model: str) -> tuple[str, ...]:
    return CONDITIONED.get(model, (f"model={model}",))

# Every trick of the registry; the ones added since the first grid run under each model's natural loss only.
NEW_TRICKS = tuple(sorted(set(trick_names()) - set(TRICKS)))
GRID = [(m, l, t) for m in MODELS for l in valid_losses(m) for t in TRICKS] + [
    (m, compose_cfg(f"model={m}").loss.name, t) for m in MODELS for t in NEW_TRICKS
] + [("sngan", "hinge", t) for t in trick_names() if t != "spectral_norm"] + [("sngan", "bce", "none")] + [
    (m, "bce", t) for m in ("cgan_conv-projection", "cgan_conv-cbn") for t in CONDITIONED_TRICKS
] + [("cgan_projection", "bce", "none")]


@pytest.mark.parametrize("model,loss,trick", GRID, ids=["-".join(c) for c in GRID])
def test_every_combination_trains_without_nan(model, loss, trick, hoda_small):
    cfg = compose_cfg(*model_overrides(model), f"loss={loss}", f"stabilize={trick}", "train.d_steps=1", *NARROW.get(model, ()))
    torch.manual_seed(0)
    built = build(cfg, hoda_small.num_classes, torch.device("cpu"), total_steps=2)
    seen = []
    state = fit(
        built.step,
        hoda_small.images,
        hoda_small.labels,
        batch_size=16,
        epochs=1,
        max_steps=2,
        d_steps=1,
        order_generator=torch.Generator().manual_seed(0),
        schedulers=built.schedulers,
        hooks=Hooks(on_step=lambda s, v: seen.append(v)),
        input_transforms=built.input_transforms,
    )
    assert state.step == 2 and len(seen) == 2
    assert all(math.isfinite(v) for values in seen for v in values.values())
    fake = built.step.generator(torch.randn(3, cfg.noise.dim), torch.tensor([0, 1, 2]))
    assert fake.shape == (3, 1, 28, 28) and fake.min() >= -1 and fake.max() <= 1
    logits, classes = built.step.discriminator(fake, torch.tensor([0, 1, 2]))
    assert logits.shape == (3,)
    assert (classes is not None) == (model == "acgan")  # sngan's default conditioning is cbn + projection


@pytest.mark.parametrize("trick", ["r1", "lecam", "bcr"])
def test_regularizers_reach_d_loss_and_gradients_in_the_joint_d_update(trick, hoda_small):
    real, labels = hoda_small.images[:16], hoda_small.labels[:16]
    seen = {}
    for stabilize in ("none", trick):
        torch.manual_seed(0)  # the same nets and fakes: only the trick's term differs
        step = build(compose_cfg(f"stabilize={stabilize}"), 10, torch.device("cpu"), total_steps=1).step
        assert step.d_update is joint_update  # the default
        d_loss = step.discriminator_step(real, labels)["d_loss"].item()
        seen[stabilize] = d_loss, [p.grad.clone() for p in step.discriminator.parameters()]
    (plain, plain_grads), (regularized, grads) = seen["none"], seen[trick]
    assert regularized > plain  # each term is >= 0, and > 0 on a real batch
    assert any(not torch.equal(a, b) for a, b in zip(plain_grads, grads))  # and D is trained on it


@pytest.mark.parametrize("tricks", ["[diffaug,r1]", "[diffaug,bcr]"])
def test_no_image_reaches_d_unaugmented_when_a_regularizer_runs_d_again(tricks, hoda_small):
    # R1 and bCR run D on images of their own; with DiffAugment they must see them augmented too, as StyleGAN2-ADA
    # and DiffAugment's code take R1 through the augmentation (an audit found R1 on the raw real batch).
    real, labels = hoda_small.images[:16], hoda_small.labels[:16]
    torch.manual_seed(0)
    step = build(compose_cfg(f"stabilize={tricks}"), 10, torch.device("cpu"), total_steps=1).step
    seen = []
    step.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    step.discriminator_step(real, labels)
    assert len(seen) >= 3  # real, fake, and the regularizer's own pass(es)
    assert not any(torch.equal(x, real) for x in seen)
    # D's gradient still reaches the un-augmented images: R1 is a penalty at the data, taken through the augmentation.
    assert all(p.grad is not None for p in step.discriminator.parameters() if p.requires_grad)


@pytest.mark.parametrize("model", ["dcgan", "gan", "cgan", "wgan_gp"])
def test_models_produce_32x32_images(model):
    cfg = compose_cfg(f"model={model}", "dataset.image_size=32")
    built = build(cfg, 10, torch.device("cpu"), total_steps=1)
    out = built.step.generator(torch.randn(2, cfg.noise.dim), torch.tensor([3, 4]))
    assert out.shape == (2, 1, 32, 32)


def test_model_configs_pick_their_natural_loss_and_an_explicit_loss_wins():
    assert compose_cfg("model=wgan").loss.name == "wasserstein"
    assert compose_cfg("model=gan").loss.name == "minimax"
    assert compose_cfg("model=dcgan").loss.name == "bce"
    assert compose_cfg("model=wgan", "loss=hinge").loss.name == "hinge"
    wgan = compose_cfg("model=wgan")
    assert (wgan.optim.name, wgan.optim.lr, wgan.train.d_steps, wgan.model.weight_clip) == ("rmsprop", 5e-5, 5, 0.01)
    gp = compose_cfg("model=wgan_gp")
    assert (gp.model.gradient_penalty, list(gp.optim.betas), gp.model.discriminator.norm) == (10.0, [0.0, 0.9], "layer")


def test_weight_clipping_keeps_the_critic_inside_the_box(hoda_small):
    cfg = compose_cfg("model=wgan", "train.d_steps=1")
    built = build(cfg, 10, torch.device("cpu"), total_steps=3)
    fit(built.step, hoda_small.images, hoda_small.labels, 16, 1, 3, 1, torch.Generator().manual_seed(0), [], Hooks())
    assert max(p.abs().max().item() for p in built.step.discriminator.parameters()) <= 0.01 + 1e-7


def test_ttur_sets_separate_learning_rates():
    built = build(compose_cfg("stabilize=ttur"), 10, torch.device("cpu"), total_steps=1)
    assert built.step.d_optimizer.param_groups[0]["lr"] == 4e-4
    assert built.step.g_optimizer.param_groups[0]["lr"] == 1e-4


def test_d_steps_takes_k_discriminator_batches_per_generator_step(hoda_small):
    cfg = compose_cfg("train.d_steps=2")
    built = build(cfg, 10, torch.device("cpu"), total_steps=10)
    state = fit(built.step, hoda_small.images, hoda_small.labels, 16, 1, None, 2, torch.Generator().manual_seed(0), [], Hooks())
    # 64 images / 16 per batch = 4 D batches per epoch = 2 generator steps with k = 2
    assert state.step == 2
    assert built.step.d_optimizer.state_dict()["state"][0]["step"].item() == 4


def test_step_lr_schedule_changes_rates_every_n_epochs(hoda_small):
    cfg = compose_cfg("train.lr_schedule.name=step", "train.lr_schedule.step_epochs=2", "train.lr_schedule.gamma=0.1")
    built = build(cfg, 10, torch.device("cpu"), total_steps=6, epoch_steps=2)  # 64 images, batch 32
    rates = []
    hooks = Hooks(on_step=lambda state, values: rates.append(built.step.g_optimizer.param_groups[0]["lr"]))
    fit(built.step, hoda_small.images, hoda_small.labels, 32, 3, None, 1, torch.Generator().manual_seed(0), built.schedulers, hooks)
    assert rates == pytest.approx([2e-4] * 3 + [2e-5] * 3)  # x0.1 once two epochs (4 steps) are done


def test_exponential_lr_schedule_decays_every_step_whatever_the_epoch_length(hoda_small):
    # Seed S4's lr / 1.000004^t: on 64 images or 60,000 the rate after t steps is the same.
    cfg = compose_cfg("train.lr_schedule.name=exponential", "train.lr_schedule.gamma=0.5")
    built = build(cfg, 10, torch.device("cpu"), total_steps=6, epoch_steps=2)
    fit(built.step, hoda_small.images, hoda_small.labels, 32, 3, None, 1, torch.Generator().manual_seed(0), built.schedulers, Hooks())
    assert built.step.d_optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5**6)


@pytest.mark.parametrize("min_factor", [0.0, 0.25])
def test_cosine_lr_schedule_falls_over_the_run_to_its_floor_for_g_and_d_alike(hoda_small, min_factor):
    # lr_t = low + (high - low) (1 + cos(pi t / T)) / 2, the closed form, for each net from its own starting rate.
    cfg = compose_cfg("train.lr_schedule.name=cosine", f"train.lr_schedule.min_factor={min_factor}", "optim.g_lr=1e-4", "optim.d_lr=4e-4")
    built = build(cfg, 10, torch.device("cpu"), total_steps=6, epoch_steps=2)
    rates = []
    hooks = Hooks(on_step=lambda state, values: rates.append((built.step.g_optimizer.param_groups[0]["lr"],
                                                              built.step.d_optimizer.param_groups[0]["lr"])))
    fit(built.step, hoda_small.images, hoda_small.labels, 32, 3, None, 1, torch.Generator().manual_seed(0), built.schedulers, hooks)
    for start, column in ((1e-4, 0), (4e-4, 1)):
        low = min_factor * start
        expected = [low + (start - low) * (1 + math.cos(math.pi * t / 6)) / 2 for t in range(1, 7)]
        assert [r[column] for r in rates] == pytest.approx(expected)  # stepped after each G step: the last is the floor


def test_momentum_ramp_moves_sgd_momentum_linearly_and_then_holds(hoda_small):
    cfg = compose_cfg("optim.name=sgd", "optim.momentum=0.5", "optim.momentum_final=0.7", "optim.momentum_ramp_epochs=2")
    built = build(cfg, 10, torch.device("cpu"), total_steps=6, epoch_steps=2)
    seen = []
    hooks = Hooks(on_step=lambda state, values: seen.append(built.step.g_optimizer.param_groups[0]["momentum"]))
    fit(built.step, hoda_small.images, hoda_small.labels, 32, 3, None, 1, torch.Generator().manual_seed(0), built.schedulers, hooks)
    assert seen == pytest.approx([0.55, 0.6, 0.65, 0.7, 0.7, 0.7])
    ramp = built.schedulers[-1]
    again = build(cfg, 10, torch.device("cpu"), total_steps=6, epoch_steps=2).schedulers[-1]
    again.load_state_dict(ramp.state_dict())  # as a resume checkpoint restores it
    assert again.optimizer.param_groups[0]["momentum"] == pytest.approx(0.7)


def test_clip_weights_clamps_every_parameter():
    layer = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.linspace(-5, 5, p.numel()).reshape(p.shape))  # above, below and inside the limit
    before = [p.clone() for p in layer.parameters()]
    clip_weights(layer, 0.1)
    for old, p in zip(before, layer.parameters()):  # weights and biases alike, both bounds, the rest untouched
        assert torch.equal(p, old.clamp(-0.1, 0.1))
        assert p.max().item() == pytest.approx(0.1) and p.min().item() == pytest.approx(-0.1)
