"""Drawing samples: the forward passes of a sample stream, and a last batch of one under batch statistics."""

from __future__ import annotations

import torch
from torch import nn

from ganbench.models.sampling import forward_passes, generated_batches


class BatchStatsGenerator(nn.Module):
    """z -> Linear -> BatchNorm1d kept in train mode (batch statistics, as eval.bn_mode=batch samples) -> image."""

    def __init__(self, z_dim: int = 4):
        super().__init__()
        self.fc = nn.Linear(z_dim, 4)
        self.bn = nn.BatchNorm1d(4)

    def train(self, mode: bool = True) -> "BatchStatsGenerator":
        super().train(mode)
        self.bn.train()  # generate() asks for eval mode; batch statistics ignore it
        return self

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.bn(self.fc(z))).view(-1, 1, 2, 2)


def stream(generator: nn.Module, num_samples: int, batch_size: int, **kw) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(generated_batches(generator, num_samples, batch_size, 4, "normal", 10, torch.device("cpu"), 0, **kw))


def test_forward_passes_join_a_last_draw_smaller_than_min_batch_to_the_one_before():
    assert forward_passes(501, 250) == [[250], [250], [1]]  # the default: every draw its own pass
    assert forward_passes(501, 250, min_batch=2) == [[250], [250, 1]]
    assert forward_passes(502, 250, min_batch=2) == [[250], [250], [2]]
    assert forward_passes(500, 250, min_batch=2) == [[250], [250]]
    assert forward_passes(1, 250, min_batch=2) == [[1]]  # nothing to join: settings keep num_samples >= 2


def test_a_last_sample_of_its_own_does_not_reach_batch_statistics_alone():
    g = BatchStatsGenerator()
    joined = stream(g, 501, 250, min_batch=2)  # min_batch=1 raises "Expected more than 1 value per channel"
    assert [b.size(0) for b, _ in joined] == [250, 251]
    assert torch.cat([labels for _, labels in joined]).tolist() == [i % 10 for i in range(501)]


class NoiseRecorder(nn.Module):
    """Records the noise of every forward pass; its images are a fixed function of that noise."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.seen.append(z.clone())
        return torch.tanh(z).view(-1, 1, 2, 2)


def test_min_batch_draws_the_same_noise_and_images_as_the_default():
    default, joined = NoiseRecorder(), NoiseRecorder()
    default_batches, joined_batches = stream(default, 501, 250), stream(joined, 501, 250, min_batch=2)
    assert [b.size(0) for b, _ in default_batches] == [250, 250, 1]  # the other modes' passes, as before
    assert torch.equal(torch.cat(joined.seen), torch.cat(default.seen))  # noise drawn in the same chunks
    assert torch.equal(torch.cat([b for b, _ in joined_batches]), torch.cat([b for b, _ in default_batches]))
