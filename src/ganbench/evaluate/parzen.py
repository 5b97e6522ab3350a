"""Gaussian Parzen-window log-likelihood, the original GAN paper's protocol (Goodfellow et al. 2014, after Breuleux et al. 2011).

A Gaussian of width sigma is put on every generated sample; a test image's log-likelihood under that mixture is

    log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log N - (d / 2) log(2 pi sigma^2)

with images flattened to d pixels in [0, 1] (the paper's MNIST scale: ganbench's [-1, 1] images map by
(x + 1) / 2). sigma is chosen on a validation set, the mean test log-likelihood is reported with its standard
error std / sqrt(n) (numpy's std, as the paper's code; "225 +- 2" on MNIST). In nats per image; a density on a
continuous space, so positive values are fine. It is a poor estimate of a model's likelihood in high
dimensions (Theis et al. 2016), kept to compare with the paper, not to rank models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_BATCH = 512  # test and sample rows per distance block: 512 x 512 float64 distances are 2 MB (x the sigmas searched)
PAPER_SIGMAS = tuple(10 ** (-1 + i / 9) for i in range(10))  # numpy.logspace(-1, 0, 10), the paper's parzen_ll.py grid


def _flat(images: Tensor) -> Tensor:
    """(N, ...) images as (N, d) float64 rows."""
    if images.dim() < 2:
        raise ValueError(f"Parzen windows need (N, ...) images, got shape {tuple(images.shape)}")
    return images.flatten(1).to(torch.float64)


def log_kernel_sums(samples: Tensor, test: Tensor, sigmas: Sequence[float], batch_size: int = DEFAULT_BATCH) -> Tensor:
    """logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) for every sigma and test image, (len(sigmas), n_test) float64.

    Squared distances come block by block (never all of n_test x N at once) by the expanded norm
    ||x||^2 + ||s||^2 - 2 x.s in float64, where the cancellation of the float32 trick would cost digits;
    every sigma reuses a block's distances, and the logsumexp over samples is accumulated across blocks.
    """
    s, x = _flat(samples), _flat(test).to(samples.device)
    if s.size(1) != x.size(1):
        raise ValueError(f"samples have {s.size(1)} pixels, test images {x.size(1)}")
    if s.size(0) == 0:
        raise ValueError("Parzen windows need at least one sample")
    scale = torch.tensor([-0.5 / float(sigma) ** 2 for sigma in sigmas], dtype=torch.float64, device=s.device)[:, None, None]
    s_norm = s.square().sum(1)
    out = torch.empty(len(sigmas), x.size(0), dtype=torch.float64, device=s.device)
    for t0 in range(0, x.size(0), batch_size):
        xt = x[t0 : t0 + batch_size]
        x_norm = xt.square().sum(1, keepdim=True)
        acc = torch.full((len(sigmas), xt.size(0)), -math.inf, dtype=torch.float64, device=s.device)
        for s0 in range(0, s.size(0), batch_size):
            block = s[s0 : s0 + batch_size]
            d2 = (x_norm + s_norm[s0 : s0 + batch_size] - 2.0 * xt @ block.T).clamp_(min=0.0)  # rounding can dip below 0
            acc = torch.logaddexp(acc, torch.logsumexp(scale * d2, dim=2))
        out[:, t0 : t0 + batch_size] = acc
    return out


def _normalise(sums: Tensor, sigmas: Sequence[float], n_samples: int, dim: int) -> Tensor:
    """Kernel sums to log-densities: minus log N and the Gaussian's (d / 2) log(2 pi sigma^2), per sigma row."""
    log_norm = torch.tensor([0.5 * dim * math.log(2 * math.pi * float(sigma) ** 2) for sigma in sigmas], dtype=torch.float64, device=sums.device)
    return sums - math.log(n_samples) - log_norm[:, None]


def parzen_log_likelihood(samples: Tensor, test: Tensor, sigma: float, batch_size: int = DEFAULT_BATCH) -> Tensor:
    """Each test image's log-likelihood (nats) under the Parzen window of width ``sigma`` on ``samples``, (n_test,) float64."""
    sums = log_kernel_sums(samples, test, [sigma], batch_size)
    return _normalise(sums, [sigma], samples.size(0), samples[0].numel())[0]


def choose_sigma(samples: Tensor, validation: Tensor, sigmas: Sequence[float], batch_size: int = DEFAULT_BATCH) -> tuple[float, list[float]]:
    """The sigma of the grid with the highest mean validation log-likelihood, and each sigma's mean (in grid order)."""
    if not sigmas:
        raise ValueError("choose_sigma needs at least one sigma")
    sums = log_kernel_sums(samples, validation, sigmas, batch_size)
    means = _normalise(sums, sigmas, samples.size(0), samples[0].numel()).mean(1).tolist()
    best = max(range(len(sigmas)), key=lambda i: means[i])
    return float(sigmas[best]), means


def parzen_score(samples: Tensor, validation: Tensor, test: Tensor, sigmas: Sequence[float], batch_size: int = DEFAULT_BATCH) -> dict[str, float]:
    """The paper's protocol: sigma chosen on ``validation``, then the mean test log-likelihood and its standard error.

    Returns ``parzen_ll`` (mean, nats per image), ``parzen_ll_se`` (std / sqrt(n), numpy's std) and ``parzen_sigma``.
    """
    sigma, _ = choose_sigma(samples, validation, sigmas, batch_size)
    ll = parzen_log_likelihood(samples, test, sigma, batch_size)
    se = ll.std(correction=0) / math.sqrt(ll.numel())  # correction=0: numpy's std, as the paper's parzen_ll.py
    return {"parzen_ll": float(ll.mean()), "parzen_ll_se": float(se), "parzen_sigma": sigma}
