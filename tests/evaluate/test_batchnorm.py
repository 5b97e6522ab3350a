"""eval.bn_mode: which BatchNorm statistics the scored samples are drawn with, and the trained generator left untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from ganbench.evaluate import EvalSettings
from ganbench.evaluate.batchnorm import BatchStatistics, batchnorm_layers, sampling_generator, smallest_batch
from ganbench.evaluate.evaluator import get_evaluator
from ganbench.models import build_models
from ganbench.models.sampling import generate, generated_batches


class TinyBNGenerator(nn.Module):
    """z -> Linear -> BatchNorm1d -> image: the output mean follows whichever statistics BatchNorm uses."""

    def __init__(self, z_dim: int = 4):
        super().__init__()
        self.fc = nn.Linear(z_dim, 4, bias=False)
        self.bn = nn.BatchNorm1d(4, affine=False)
        self.drop = nn.Dropout(0.5)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(4))
            self.bn.running_mean.fill_(5.0)  # stale running statistics, far from the samples' (mean 0, var 1)
            self.bn.running_var.fill_(4.0)

    def forward(self, z, labels):
        return torch.tanh(self.drop(self.bn(self.fc(z)))).view(-1, 1, 2, 2)


def kw(**extra):
    return dict(steps=20, batch_size=256, z_dim=4, prior="normal", num_classes=10, device=torch.device("cpu"), seed=0) | extra


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("mode", ["eval", "batch", "standing"])
def test_every_mode_leaves_the_trained_generator_as_it_was(mode):
    g = TinyBNGenerator().train()
    before = state(g)
    sampler = sampling_generator(g, mode, **kw())
    list(generated_batches(sampler, 600, 200, 4, "normal", 10, torch.device("cpu"), 0))
    after = state(g)
    assert all(torch.equal(before[k], after[k]) for k in before) and g.training


def test_eval_uses_running_statistics_batch_the_batchs_and_standing_re_estimates_them():
    g = TinyBNGenerator()
    z = torch.randn(512, 4, generator=torch.Generator().manual_seed(1))
    labels = torch.zeros(512, dtype=torch.int64)
    eval_out = generate(sampling_generator(g, "eval", **kw()), z, labels)
    batch_out = generate(sampling_generator(g, "batch", **kw()), z, labels)
    standing = sampling_generator(g, "standing", **kw())
    standing_out = generate(standing, z, labels)
    # (z - 5) / 2 ~ -2.5: tanh near -1 with the stale running stats; ~0 mean with the batch's or re-estimated ones.
    assert eval_out.mean() < -0.9
    assert abs(batch_out.mean()) < 0.05 and abs(standing_out.mean()) < 0.05
    bn = standing.bn
    assert torch.allclose(bn.running_mean, torch.zeros(4), atol=0.05) and torch.allclose(bn.running_var, torch.ones(4), atol=0.1)
    assert bn.momentum is None and not standing.training
    assert int(bn.num_batches_tracked) == 20  # cumulative average over exactly standing_steps batches


def test_batch_mode_keeps_dropout_off_and_batchnorm_on_through_eval():
    wrapped = BatchStatistics(copy.deepcopy(TinyBNGenerator()))
    wrapped.eval()
    assert wrapped.inner.bn.training and not wrapped.inner.drop.training
    z = torch.randn(64, 4)
    assert torch.equal(generate(wrapped, z, torch.zeros(64)), generate(wrapped, z, torch.zeros(64)))  # no dropout noise


def test_a_generator_without_batchnorm_is_sampled_as_it_is_and_unknown_modes_fail():
    plain = nn.Sequential(nn.Linear(4, 4))
    assert not batchnorm_layers(plain)
    assert sampling_generator(plain, "standing", **kw()) is plain
    with pytest.raises(ValueError, match="bn_mode"):
        sampling_generator(plain, "train", **kw())


def test_batch_mode_scores_a_last_sample_of_its_own_with_the_batch_before():
    # 501 samples at 250 a batch leave one: BatchNorm in train mode cannot normalise it by its own statistics.
    sampler = sampling_generator(TinyBNGenerator(), "batch", **kw(batch_size=250))
    batches = list(generated_batches(sampler, 501, 250, 4, "normal", 10, torch.device("cpu"), 0, min_batch=smallest_batch("batch")))
    assert [b.size(0) for b, _ in batches] == [250, 251]
    assert (smallest_batch("eval"), smallest_batch("standing")) == (1, 1)  # their samples are drawn as before


@pytest.mark.slow
def test_an_evaluation_in_batch_mode_scores_a_last_sample_of_its_own(quick_classifier, quick_eval_overrides, compose_cfg):
    # DCGAN's generator has a BatchNorm1d: 501 samples at 250 a batch used to end in "Expected more than 1 value per channel".
    cfg = compose_cfg("model=dcgan", *quick_eval_overrides, "eval.num_samples=501", "eval.bn_mode=batch", "eval.cas.enabled=false", "eval.inception=off")
    torch.manual_seed(0)
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, 28, 10)
    scores = get_evaluator(EvalSettings.from_config(cfg), torch.device("cpu")).score_generator(generator, False, cfg.noise.dim, "normal")
    assert sum(scores.histogram) == 501
