"""Each grid choice is in effect in the step the builder makes, not just accepted: tricks, penalty, class weight."""

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
import torch.nn.functional as F
from torch import nn

import ganbench.conf
from ganbench.stabilize import REGISTRY, NONE
from ganbench.device import native_bf16
from ganbench.train.build import amp_enabled, build
from ganbench.train.settings import TrainSettings
from ganbench.train.step import no_penalty

CPU = torch.device("cpu")


def built_for(*overrides: str, total_steps: int = 10):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    torch.manual_seed(0)
    return build(TrainSettings.from_config(cfg, "test"), 10, CPU, total_steps)


def weight_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def real_batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(n, 1, 28, 28), torch.arange(n) % 10


def test_every_trick_yaml_has_its_module_and_every_module_its_yaml():
    yamls = {p.stem for p in (Path(ganbench.conf.__file__).parent / "stabilize").glob("*.yaml")}
    assert yamls - {NONE} == set(REGISTRY)


@pytest.mark.parametrize("model", ["dcgan", "gan", "acgan"])
def test_spectral_norm_wraps_every_weight_layer_of_the_real_discriminator(model):
    plain = built_for(f"model={model}").step.discriminator
    normed = built_for(f"model={model}", "stabilize=spectral_norm").step.discriminator
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in weight_layers(plain))
    layers = weight_layers(normed)
    assert layers and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in weight_layers(built_for(f"model={model}", "stabilize=spectral_norm").step.generator))


def test_d_dropout_puts_a_dropout_after_every_activation_of_d_only():
    step = built_for("stabilize=d_dropout", "stabilize.d_dropout.p=0.4").step
    activations = [m for m in step.discriminator.modules() if isinstance(m, (nn.LeakyReLU, nn.ReLU))]
    dropouts = [m for m in step.discriminator.modules() if isinstance(m, nn.Dropout)]
    assert activations and len(dropouts) == len(activations) and all(d.p == 0.4 for d in dropouts)
    assert not any(isinstance(m, nn.Dropout) for m in built_for().step.discriminator.modules())
    assert not any(isinstance(m, nn.Dropout) for m in step.generator.modules())


def capture_d_inputs(step) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    step.discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen


def test_instance_noise_reaches_real_and_fake_inputs_of_both_updates_and_anneals_to_zero():
    built = built_for("stabilize=instance_noise", "stabilize.instance_noise.std=0.5", "stabilize.instance_noise.anneal_steps=4")
    (noise,) = built.input_transforms
    step = built.step
    fakes: list[torch.Tensor] = []
    step.generator.register_forward_hook(lambda module, args, out: fakes.append(out.detach().clone()))
    seen = capture_d_inputs(step)
    real, labels = real_batch(64)
    step.discriminator_step(real, labels)
    step.generator_step(64, CPU)
    d_real, d_fake, g_fake = seen
    assert d_real.std().item() == pytest.approx(0.5, rel=0.1)  # the real batch is all zeros
    assert (d_fake - fakes[0]).std().item() == pytest.approx(0.5, rel=0.1)
    assert (g_fake - fakes[1]).std().item() == pytest.approx(0.5, rel=0.1)
    noise.step = 2  # the loop sets this after every generator step
    seen.clear()
    step.discriminator_step(real, labels)
    assert seen[0].std().item() == pytest.approx(0.25, rel=0.1)
    noise.step = 4
    seen.clear()
    step.discriminator_step(real, labels)
    assert torch.equal(seen[0], real)


@pytest.mark.parametrize("tricks", [("stabilize=diffaug",), ()])
def test_diffaug_augments_every_image_d_sees_in_both_updates_and_g_learns_through_it(tricks):
    step = built_for(*tricks).step
    fakes: list[torch.Tensor] = []
    step.generator.register_forward_hook(lambda module, args, out: fakes.append(out.detach().clone()))
    seen = capture_d_inputs(step)
    torch.manual_seed(1)
    real, labels = torch.rand(16, 1, 28, 28) * 2 - 1, torch.arange(16) % 10
    step.discriminator_step(real, labels)
    step.generator_step(16, CPU)
    d_real, d_fake, g_fake = seen
    changed = [(seen_by_d != raw).flatten(1).any(1) for seen_by_d, raw in ((d_real, real), (d_fake, fakes[0]), (g_fake, fakes[1]))]
    if tricks:  # every image: a cutout square at least, in the real and fake batch of the D update and in the G update
        assert all(c.all() for c in changed)
    else:  # the control: without the trick D sees the images themselves
        assert not any(c.any() for c in changed)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in step.generator.parameters())


def d_loss_of(step, seed: int = 0) -> float:
    torch.manual_seed(seed)
    real, labels = real_batch()
    return step.discriminator_step(real, labels)["d_loss"].item()


def test_the_gradient_penalty_adds_to_the_critic_loss():
    step = built_for("model=wgan_gp").step
    assert step.penalty.keywords["weight"] == 10.0
    with_penalty = d_loss_of(copy.deepcopy(step))
    without = d_loss_of(dataclasses.replace(copy.deepcopy(step), penalty=no_penalty))
    assert with_penalty > without + 1e-3
    assert built_for("model=wgan").step.penalty is no_penalty


def test_acgan_class_weight_adds_the_class_cross_entropy_of_both_batches():
    step = built_for("model=acgan").step
    assert step.class_weight == 1.0
    weighted = copy.deepcopy(step)
    outputs, fake_labels = [], []
    weighted.discriminator.register_forward_hook(lambda module, args, out: outputs.append(out[1].detach()))
    sample_labels = weighted.sample_labels
    weighted.sample_labels = lambda n: fake_labels.append(sample_labels(n)) or fake_labels[-1]
    with_class = d_loss_of(weighted)
    without = d_loss_of(dataclasses.replace(copy.deepcopy(step), class_weight=0.0))
    _, labels = real_batch()
    expected = F.cross_entropy(outputs[0], labels) + F.cross_entropy(outputs[1], fake_labels[0])
    assert with_class - without == pytest.approx(expected.item(), rel=1e-4)


def test_ttur_rates_reach_the_optimisers_and_label_tricks_reach_the_targets():
    step = built_for("stabilize=[ttur,smooth]").step
    assert (step.d_optimizer.param_groups[0]["lr"], step.g_optimizer.param_groups[0]["lr"]) == (4e-4, 1e-4)
    real_t, fake_t = step.targets(4, CPU)
    assert torch.allclose(real_t, torch.full((4,), 0.9)) and torch.equal(fake_t, torch.zeros(4))
    out = step.discriminator_step(*real_batch(4))
    assert out["d_target_real"].item() == pytest.approx(0.9)


@pytest.mark.parametrize("reuse,forwards", [(False, 2), (True, 1)])
def test_reuse_fakes_runs_one_generator_forward_a_step_and_still_trains_g(reuse, forwards):
    step = built_for(f"train.reuse_fakes={str(reuse).lower()}", "model=cgan_conv").step
    assert step.reuse_fakes is reuse
    calls = []
    step.generator.register_forward_hook(lambda module, args, out: calls.append(args[1].clone()))
    before = [p.detach().clone() for p in step.generator.parameters()]
    d_before = [p.detach().clone() for p in step.discriminator.parameters()]
    real, labels = real_batch(16)
    step.discriminator_step(real, labels)
    d_after_d_step = [p.detach().clone() for p in step.discriminator.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, [p.detach() for p in step.generator.parameters()]))  # D's update leaves G alone
    step.generator_step(16, CPU)
    assert len(calls) == forwards
    assert any(not torch.equal(a, b) for a, b in zip(before, step.generator.parameters()))  # G trained
    assert all(torch.equal(a, b) for a, b in zip(d_after_d_step, step.discriminator.parameters()))  # G's update leaves D alone
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d_after_d_step))


@pytest.mark.parametrize("reuse", [False, True])
def test_mode_seeking_adds_its_term_to_g_loss_on_same_label_pairs(reuse):
    from ganbench.losses import class_loss
    from ganbench.stabilize.mode_seeking import mode_seeking_term

    step = built_for("stabilize=mode_seeking", "model=cgan_projection", f"train.reuse_fakes={str(reuse).lower()}").step
    drawn = []  # (noise, labels, fakes) of every G forward
    step.generator.register_forward_hook(lambda module, args, out: drawn.append((args[0], args[1], out)))
    step.discriminator_step(*real_batch(8))
    g_loss = step.generator_step(8, CPU)["g_loss"]
    z, labels, fake = drawn[-1]  # the fakes the G update scored: the D update's, or its own
    assert len(drawn) == (1 if reuse else 2)
    assert all(torch.equal(l[:4], l[4:]) for _, l, _ in drawn)  # both halves share their labels, in either update
    # G's loss by hand from the same fakes and the same D (G's update leaves D alone): the plain loss + the term.
    logits, classes = step.discriminator(fake.detach(), labels)
    term = mode_seeking_term(z, fake.detach(), 1e-5)
    weight = 0.25  # conf/stabilize/mode_seeking.yaml's default
    expected = step.loss.g_loss(logits, torch.ones(8)) + class_loss(classes, labels) + weight * term
    assert term.item() > 0 and g_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_train_amp_turns_bf16_autocast_on_where_it_says() -> None:
    cuda = torch.device("cuda")
    assert amp_enabled(True, CPU) and not amp_enabled(False, cuda)
    assert amp_enabled("auto", cuda) and not amp_enabled("auto", CPU)  # auto: CUDA only, as before
    assert amp_enabled("native", cuda) and amp_enabled("native", CPU) == native_bf16(CPU)
    assert not native_bf16(torch.device("meta"))
    for amp, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        step = built_for(f"train.amp={str(amp).lower()}").step
        with step.autocast():
            fakes = step.generator(step.sample_noise(4))
        assert fakes.dtype == dtype  # the step really computes in bf16 when asked, and in float32 otherwise
