"""The Parzen-window log-likelihood: against a Gaussian mixture worked out with scipy, chunked as unchunked, sigma search, in a run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

from ganbench.evaluate import EvalSettings, evaluate_generator
from ganbench.evaluate.evaluator import get_evaluator
from ganbench.evaluate.parzen import PAPER_SIGMAS, choose_sigma, parzen_log_likelihood, parzen_score
from ganbench.models import build_models
from ganbench.tracking import make_client, mlflow_run


def test_log_likelihood_is_the_equal_weight_gaussian_mixture_on_the_samples():
    rng = np.random.default_rng(0)
    samples, test = rng.uniform(size=(5, 4)), rng.uniform(size=(3, 4))
    sigma = 0.3
    # log mean_i N(x; s_i, sigma^2 I), one Gaussian at a time with scipy
    by_hand = [logsumexp([multivariate_normal(s, sigma**2 * np.eye(4)).logpdf(x) for s in samples]) - math.log(5) for x in test]
    got = parzen_log_likelihood(torch.from_numpy(samples), torch.from_numpy(test), sigma)
    assert got.dtype == torch.float64 and got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), by_hand, rtol=1e-12)


def test_images_are_flattened_and_float32_input_is_computed_in_float64():
    rng = np.random.default_rng(1)
    samples, test = rng.uniform(size=(6, 1, 2, 2)), rng.uniform(size=(2, 1, 2, 2))
    flat = parzen_log_likelihood(torch.from_numpy(samples.reshape(6, 4)), torch.from_numpy(test.reshape(2, 4)), 0.2)
    images = parzen_log_likelihood(torch.from_numpy(samples).float(), torch.from_numpy(test).float(), 0.2)
    np.testing.assert_allclose(images.numpy(), flat.numpy(), rtol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 3, 7, 1000])
def test_chunking_gives_the_numbers_of_one_block(batch_size):
    g = torch.Generator().manual_seed(2)
    samples, test = torch.rand(23, 16, generator=g), torch.rand(11, 16, generator=g)
    whole = parzen_log_likelihood(samples, test, 0.15, batch_size=10_000)
    torch.testing.assert_close(parzen_log_likelihood(samples, test, 0.15, batch_size=batch_size), whole, rtol=1e-12, atol=1e-10)
    best, means = choose_sigma(samples, test, [0.1, 0.2, 0.4], batch_size=batch_size)
    assert means == pytest.approx(choose_sigma(samples, test, [0.1, 0.2, 0.4], batch_size=10_000)[1], rel=1e-12)


def test_far_test_points_do_not_underflow_to_minus_infinity():
    samples, test = torch.zeros(4, 784), torch.ones(2, 784)  # every exp(-d^2 / 2 sigma^2) underflows on its own
    got = parzen_log_likelihood(samples, test, 0.1)
    assert torch.isfinite(got).all()
    expected = -784 / (2 * 0.01) - 392 * math.log(2 * math.pi * 0.01)
    assert got.tolist() == pytest.approx([expected, expected], rel=1e-12)


def test_choose_sigma_picks_the_width_that_fits_the_validation_points():
    # One sample at the origin, validation points at distance r in d dimensions: the mean log-likelihood
    # -r^2 / (2 sigma^2) - (d / 2) log(2 pi sigma^2) peaks at sigma = r / sqrt(d) = 0.5.
    d, r = 4, 1.0
    validation = torch.eye(d, dtype=torch.float64) * r
    best, means = choose_sigma(torch.zeros(1, d), validation, [0.1, 0.5, 2.0])
    assert best == 0.5
    expected = [-(r**2) / (2 * s**2) - d / 2 * math.log(2 * math.pi * s**2) for s in (0.1, 0.5, 2.0)]
    assert means == pytest.approx(expected, rel=1e-12)


def test_parzen_score_reports_the_test_mean_and_numpys_standard_error_at_the_chosen_sigma():
    g = torch.Generator().manual_seed(3)
    samples, validation, test = torch.rand(40, 9, generator=g), torch.rand(15, 9, generator=g), torch.rand(12, 9, generator=g)
    score = parzen_score(samples, validation, test, PAPER_SIGMAS)

    def by_scipy(points: torch.Tensor, sigma: float) -> np.ndarray:  # log mean_i prod_d N(x_d; s_id, sigma^2)
        log_pdfs = norm.logpdf(points.double().numpy()[:, None, :], loc=samples.double().numpy()[None], scale=sigma).sum(-1)
        return logsumexp(log_pdfs, axis=1) - math.log(len(samples))

    sigma = max(PAPER_SIGMAS, key=lambda s: by_scipy(validation, s).mean())
    assert 0.1 < sigma < 1.0  # chosen inside the grid, so the choice is tested, not an edge
    ll = by_scipy(test, sigma)
    assert score == pytest.approx({"parzen_ll": ll.mean(), "parzen_ll_se": ll.std() / math.sqrt(12), "parzen_sigma": sigma}, rel=1e-10)
    assert PAPER_SIGMAS == pytest.approx(tuple(np.logspace(-1, 0, 10)))


def test_a_wired_in_run_logs_the_parzen_metrics_and_what_they_were_measured_on(quick_classifier, quick_eval_overrides, compose_cfg, mlflow_uri):
    cfg = compose_cfg("model=dcgan", *quick_eval_overrides, "eval.parzen=true", "eval.parzen_validation=200", "eval.parzen_sigmas=[0.1,0.2,0.4]",
                      "eval.reference_run=false", "eval.inception=off", f"tracking.uri={mlflow_uri}")
    torch.manual_seed(0)
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, 28, 10)
    settings = EvalSettings.from_config(cfg)
    client = make_client(cfg.tracking.uri)
    with mlflow_run(client, "ganbench", "parzen", {}) as logger:
        metrics = evaluate_generator(settings, generator, False, 10, torch.device("cpu"), logger, step=3)
    assert metrics["parzen_sigma"] in (0.1, 0.2, 0.4)
    assert math.isfinite(metrics["parzen_ll"]) and metrics["parzen_ll_se"] > 0
    assert {"ink_per_digit", "stroke_width", "ink_per_digit_real", "stroke_width_real"} <= set(metrics)
    run = client.get_run(logger.run_id)
    assert run.data.metrics["parzen_ll"] == pytest.approx(metrics["parzen_ll"])
    tags = {k.removeprefix("measured."): v for k, v in run.data.tags.items() if k.startswith("measured.")}
    assert tags["parzen"] == "on" and tags["parzen_num_samples"] == "500" and tags["parzen_sigmas"] == "0.1,0.2,0.4"
    assert (tags["parzen_validation_split"], tags["parzen_validation_images"]) == ("train", "200")
    assert (tags["parzen_test_split"], tags["parzen_test_images"]) == ("test", "1000")  # the held-out subset CAS tests on
    assert tags["stroke_samples"] == "500" and tags["stroke_reference_images"] == "2000"
    # sigma is chosen on training images, the log-likelihood measured on held-out ones: no image is both.
    pixels = get_evaluator(settings, torch.device("cpu")).pixels
    assert pixels.parzen_validation is not None and pixels.parzen_test is not None
    validation = {row.numpy().tobytes() for row in pixels.parzen_validation.flatten(1)}
    assert not any(row.numpy().tobytes() in validation for row in pixels.parzen_test.flatten(1))
