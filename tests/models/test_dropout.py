"""Dropout's mask does not depend on the memory format: channels_last trains the same run, to float rounding."""

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module

from ganbench.models.dropout import Dropout, layout_free_dropout
from ganbench.train.build import build
from ganbench.train.settings import TrainSettings


def test_stock_dropout_draws_another_mask_in_channels_last_and_ours_does_not():
    x = torch.randn(4, 8, 5, 5, requires_grad=True)
    nhwc = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.manual_seed(1)
    stock = F.dropout(x, 0.4)
    torch.manual_seed(1)
    assert not torch.equal(F.dropout(nhwc, 0.4), stock)  # why this module exists
    torch.manual_seed(1)
    ours = layout_free_dropout(nhwc, 0.4, True)
    assert torch.equal(ours, stock) and ours.is_contiguous(memory_format=torch.channels_last)
    stock.sum().backward()
    ours.sum().backward()
    assert torch.equal(nhwc.grad, x.grad)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_is_stock_dropout_on_contiguous_maps_and_off_in_eval(p):
    x = torch.randn(6, 3, 4, 4)
    module = Dropout(p)
    torch.manual_seed(2)
    expected = F.dropout(x, p)
    torch.manual_seed(2)
    assert torch.equal(module(x), expected)
    assert torch.equal(module.eval()(x.contiguous(memory_format=torch.channels_last)), x)
    assert module.state_dict() == {} and repr(module) == repr(torch.nn.Dropout(p))  # a drop-in for nn.Dropout


def step_weights(channels_last: bool) -> dict[str, torch.Tensor]:
    """Seed S3's nets after two real D + G steps at batch 16 (its D has dropout), NCHW or channels_last."""
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=["experiment=seed_s3_cgan_hoda", "train.batch_size=16",
                                           f"train.channels_last={str(channels_last).lower()}"])
    torch.manual_seed(0)
    built = build(TrainSettings.from_config(cfg, "t"), 10, torch.device("cpu"), total_steps=2)
    real, labels = torch.rand(16, 1, 28, 28) * 2 - 1, torch.arange(16) % 10
    if channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    for _ in range(2):
        built.step.discriminator_step(real, labels)
        built.step.generator_step(16, torch.device("cpu"))
    return {f"{net}.{k}": v for net in ("generator", "discriminator")
            for k, v in getattr(built.step, net).state_dict().items()}


def test_seed_s3s_step_in_channels_last_trains_the_same_weights_to_float_rounding():
    # Adam's first updates are about lr * sign(gradient), so a gradient within rounding of 0 may flip an entry by
    # ~2 lr: such entries are rounding. How many depends on the kernels oneDNN picks for the thread count: under
    # 0.03% of any tensor with 2 threads, up to 4% of G's with 1 (as each of `make test`'s two workers has on 2
    # cores). With stock dropout's masks, 67-100% of every tensor's entries differ.
    nchw, nhwc = step_weights(False), step_weights(True)
    for name, value in nchw.items():
        differs = (nhwc[name].float() - value.float()).abs() > 1e-5
        assert differs.float().mean() < 0.1, (name, differs.float().mean())
