"""Metric functions against closed forms and independent computations; the extractor registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_fidelity import FeatureExtractorBase
from torch_fidelity.metric_fid import fid_statistics_to_metric

from ganbench.evaluate.features import CLASSIFIER_EXTRACTOR, INCEPTION_EXTRACTOR, UInt8Images, metric_layers, register_extractor
from ganbench.evaluate.metrics import (
    MetricSettings,
    RealFeatures,
    class_counts,
    classification_report,
    confusion_matrix,
    feature_statistics,
    fidelity_metrics,
    format_report,
    frechet_distance,
    inception_score,
    intra_fid,
    kernel_distance,
    mode_kl,
    modes_covered,
)


def random_spd(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / d + (0 if rank else 0.1 * np.eye(d))


def independent_fd(mu1, s1, mu2, s2) -> float:
    """The textbook formula in float64 via eigenvalues of the (non-symmetric) product: torch-fidelity's route."""
    eig = np.linalg.eigvals(np.asarray(s1, np.float64) @ np.asarray(s2, np.float64))
    tr_sqrt = np.sqrt(eig.astype(np.complex128)).real.sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


# --------------------------------------------------------------------------- Frechet distance


def test_frechet_distance_of_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(16), random_spd(rng, 16)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9


def test_frechet_distance_closed_form_for_diagonal_covariances():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()  # = 5 + 1 + 1 + 6.25
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(13.25)


def test_frechet_distance_closed_form_for_scaled_identity_against_a_full_covariance():
    # tr((a I S)^1/2) = sqrt(a) * sum(sqrt(eig(S))): exact even though S is not diagonal.
    rng = np.random.default_rng(1)
    s2 = random_spd(rng, 8)
    a = 2.5
    expected = a * 8 + np.trace(s2) - 2 * math.sqrt(a) * np.sqrt(np.linalg.eigvalsh(s2)).sum()
    assert frechet_distance(np.zeros(8), a * np.eye(8), np.zeros(8), s2) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("d", [2, 32, 128])
def test_frechet_distance_agrees_with_an_independent_float64_computation(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(rng, d), random_spd(rng, d)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(independent_fd(mu1, s1, mu2, s2), rel=1e-6)
    theirs = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)
    assert ours == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert ours == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)  # symmetric


def test_frechet_distance_is_finite_and_non_negative_for_singular_covariances():
    # Fewer samples than dimensions (per-class FID on few samples) gives rank-deficient covariances.
    rng = np.random.default_rng(2)
    s1, s2 = random_spd(rng, 64, rank=10), random_spd(rng, 64, rank=10)
    value = frechet_distance(np.zeros(64), s1, np.zeros(64), s2)
    assert math.isfinite(value) and value >= 0
    assert abs(frechet_distance(np.zeros(64), s1, np.zeros(64), s1)) < 1e-6


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_fid_from_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(3)
    mu1, mu2 = np.zeros(4), np.full(4, 0.5)
    var1, var2 = np.array([1.0, 2.0, 0.5, 1.0]), np.array([1.5, 1.0, 0.5, 3.0])
    a = torch.from_numpy(rng.normal(mu1, np.sqrt(var1), size=(40_000, 4))).float()
    b = torch.from_numpy(rng.normal(mu2, np.sqrt(var2), size=(40_000, 4))).float()
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    real = RealFeatures({"f": b}, torch.zeros(40_000, dtype=torch.long), {"fid": "f", "kid": "f", "prc": "f", "isc": "f"})
    got = fidelity_metrics({"f": a}, real, "x", MetricSettings(), which=("fid",))["fid_x"]
    assert got == pytest.approx(expected, abs=0.03)


def test_feature_statistics_are_float64_mean_and_unbiased_covariance():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 10.0]])
    mu, sigma = feature_statistics(x)
    assert mu.dtype == np.float64 and np.allclose(mu, [3, 6])
    assert np.allclose(sigma, np.cov(x.numpy().astype(np.float64), rowvar=False))


# --------------------------------------------------------------------------- KID


def poly_kernel_expectation(m_x: tuple[float, float, float], m_y: tuple[float, float, float]) -> float:
    """E[(x y + 1)^3] for independent 1-D x, y given their first three raw moments."""
    return m_x[2] * m_y[2] + 3 * m_x[1] * m_y[1] + 3 * m_x[0] * m_y[0] + 1


def normal_moments(mu: float, sd: float) -> tuple[float, float, float]:
    return mu, mu**2 + sd**2, mu**3 + 3 * mu * sd**2


def test_kid_matches_the_closed_form_mmd_of_two_gaussians():
    # In 1-D the cubic kernel (x y / d + 1)^3 factorises into moments: MMD^2 has a closed form.
    rng = np.random.default_rng(4)
    mx, my = normal_moments(0.0, 1.0), normal_moments(0.5, 1.0)
    expected = poly_kernel_expectation(mx, mx) + poly_kernel_expectation(my, my) - 2 * poly_kernel_expectation(mx, my)
    assert expected == pytest.approx(3.578125)
    x = torch.from_numpy(rng.normal(0.0, 1.0, size=(50_000, 1)))
    y = torch.from_numpy(rng.normal(0.5, 1.0, size=(50_000, 1)))
    mean, std = kernel_distance(x, y, subsets=20, subset_size=1000, seed=0)
    assert mean == pytest.approx(expected, rel=0.12)  # the estimate's spread over seeds is about +-5%
    assert std > 0


def test_kid_of_one_distribution_is_zero_within_its_spread():
    rng = np.random.default_rng(5)
    x, y = (torch.from_numpy(rng.normal(size=(5000, 8))) for _ in range(2))
    mean, std = kernel_distance(x, y, subsets=50, subset_size=1000, seed=0)
    assert abs(mean) < 3 * std / math.sqrt(50) + 1e-3


def test_kid_with_one_full_subset_equals_an_independent_unbiased_mmd():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(300, 5)), rng.normal(0.3, 1.2, size=(300, 5))
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    n = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    expected = (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    mean, std = kernel_distance(torch.from_numpy(x), torch.from_numpy(y), subsets=1, subset_size=n)
    assert mean == pytest.approx(expected, rel=1e-5)
    assert std == 0


def test_kid_subset_size_shrinks_to_the_sample_count():
    x, y = torch.randn(50, 3), torch.randn(80, 3)
    mean, _ = kernel_distance(x, y, subsets=5, subset_size=1000)
    assert math.isfinite(mean)


# --------------------------------------------------------------------------- IS


def one_hot_logits(labels: torch.Tensor, num_classes: int = 10, scale: float = 60.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, num_classes).double() * scale


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_inception_score_of_confident_predictions_spread_over_k_classes_is_k(k):
    labels = torch.arange(1000) % k
    assert inception_score(one_hot_logits(labels), splits=1) == pytest.approx(k, rel=1e-6)


def test_inception_score_of_uncertain_predictions_is_one():
    assert inception_score(torch.zeros(500, 10), splits=5) == pytest.approx(1.0)


def test_inception_score_of_a_known_mixed_distribution():
    # Every sample p(y|x) = (0.5, 0.5) over two of four classes, pairs spread evenly:
    # IS = exp(H(p(y)) - H(p(y|x))) = exp(log 4 - log 2) = 2.
    logits = torch.full((400, 4), -80.0, dtype=torch.float64)
    for i in range(400):
        pair = (2 * (i % 2), 2 * (i % 2) + 1)
        logits[i, list(pair)] = 0.0
    assert inception_score(logits, splits=1) == pytest.approx(2.0, rel=1e-6)


# --------------------------------------------------------------------------- modes and KL


def test_modes_covered_on_hand_built_histograms():
    assert modes_covered([100] * 10) == 10
    assert modes_covered([500, 500] + [0] * 8) == 2
    assert modes_covered([99, 1], min_share=0.01) == 2  # exactly the threshold counts as covered
    assert modes_covered([995, 5], min_share=0.01) == 1
    assert modes_covered([0, 0, 0]) == 0


def test_mode_kl_on_hand_built_histograms():
    uniform = [100] * 10
    assert mode_kl(uniform, uniform) == pytest.approx(0.0)
    assert mode_kl([500, 500] + [0] * 8, uniform) == pytest.approx(math.log(5))  # 2 x 0.5 log(0.5 / 0.1)
    assert mode_kl([1000] + [0] * 9, uniform) == pytest.approx(math.log(10))
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.4, 0.4, 0.2])
    assert mode_kl(p * 1000, q * 50) == pytest.approx(float((p * np.log(p / q)).sum()))
    with pytest.raises(ValueError):
        mode_kl([1, 2], [1, 2, 3])


def test_class_counts_count_every_class():
    assert class_counts(torch.tensor([0, 2, 2, 9]), 10).tolist() == [1, 0, 2, 0, 0, 0, 0, 0, 0, 1]


# --------------------------------------------------------------------------- reports


def test_confusion_matrix_and_classification_report_values():
    y_true = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = torch.tensor([0, 0, 0, 1, 1, 1, 2, 0])
    matrix = confusion_matrix(y_true, y_pred, 3)
    assert matrix.tolist() == [[3, 1, 0], [0, 2, 0], [1, 0, 1]]
    report = classification_report(y_true, y_pred, 3)
    rows = report["per_class"]
    assert rows[0]["precision"] == pytest.approx(3 / 4) and rows[0]["recall"] == pytest.approx(3 / 4)
    assert rows[1]["precision"] == pytest.approx(2 / 3) and rows[1]["recall"] == pytest.approx(1.0)
    assert rows[1]["f1"] == pytest.approx(0.8)
    assert rows[2]["precision"] == pytest.approx(1.0) and rows[2]["recall"] == pytest.approx(0.5)
    assert [r["support"] for r in rows] == [4, 2, 2]
    assert report["accuracy"] == pytest.approx(6 / 8)
    assert report["macro"]["recall"] == pytest.approx((0.75 + 1 + 0.5) / 3)
    text = format_report(report)
    assert "precision" in text and "accuracy" in text and "macro" in text and len(text.splitlines()) == 8


def test_torchmetrics_confusion_and_per_class_scores_equal_a_direct_numpy_computation():
    # 4 classes, class 3 never predicted and class 2 never requested: every zero-division case at once.
    y_true = np.array([0, 0, 0, 1, 1, 1, 1, 3, 3, 0, 1, 3])
    y_pred = np.array([0, 1, 0, 1, 1, 2, 1, 0, 1, 0, 1, 2])
    c = 4
    direct = np.zeros((c, c), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        direct[t, p] += 1
    matrix = confusion_matrix(torch.from_numpy(y_true), torch.from_numpy(y_pred), c)
    assert matrix.dtype == np.int64 and matrix.tolist() == direct.tolist()
    assert confusion_matrix(y_true, y_pred, c).tolist() == direct.tolist()  # numpy labels too

    tp = np.diag(direct).astype(np.float64)
    predicted, support = direct.sum(axis=0), direct.sum(axis=1)
    precision = np.array([tp[k] / predicted[k] if predicted[k] else 0.0 for k in range(c)])
    recall = np.array([tp[k] / support[k] if support[k] else 0.0 for k in range(c)])
    f1 = np.array([2 * precision[k] * recall[k] / (precision[k] + recall[k]) if precision[k] + recall[k] else 0.0 for k in range(c)])
    report = classification_report(torch.from_numpy(y_true), torch.from_numpy(y_pred), c)
    assert [r["class"] for r in report["per_class"]] == list(range(c))
    assert [r["support"] for r in report["per_class"]] == support.tolist()
    for name, expected in (("precision", precision), ("recall", recall), ("f1", f1)):
        assert [r[name] for r in report["per_class"]] == pytest.approx(expected.tolist(), rel=1e-6, abs=1e-7), name
        assert report["macro"][name] == pytest.approx(expected.mean(), rel=1e-6)
        assert report["weighted"][name] == pytest.approx(float(expected @ support / support.sum()), rel=1e-6)
    assert report["accuracy"] == pytest.approx(tp.sum() / len(y_true)) and report["support"] == len(y_true)
    assert set(report) == {"per_class", "accuracy", "macro", "weighted", "support"}


def test_report_handles_a_class_never_predicted():
    report = classification_report(torch.tensor([0, 1]), torch.tensor([0, 0]), 2)
    assert report["per_class"][1] == {"class": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_intra_fid_is_zero_for_samples_equal_to_the_real_classes():
    torch.manual_seed(0)
    feats = torch.randn(400, 6)
    labels = torch.arange(400) % 4
    real = RealFeatures({"f": feats}, labels, {"fid": "f", "kid": "f", "prc": "f", "isc": "f"})
    mean, per_class = intra_fid(feats, labels, real.class_stats)
    assert sorted(per_class) == [0, 1, 2, 3] and abs(mean) < 1e-8
    shifted, _ = intra_fid(feats + 1.0, labels, real.class_stats)
    assert shifted == pytest.approx(6.0, rel=1e-6)  # ||mean shift||^2 = 6 x 1^2


# --------------------------------------------------------------------------- registry and inputs


def test_registry_knows_the_classifier_and_inception_layers():
    assert metric_layers(CLASSIFIER_EXTRACTOR) == {"fid": "features", "kid": "features", "prc": "features", "isc": "logits"}
    assert metric_layers(INCEPTION_EXTRACTOR)["fid"] == "2048"
    with pytest.raises(ValueError, match="not registered"):
        metric_layers("no-such-extractor")


def test_register_extractor_is_idempotent_and_refuses_a_name_clash():
    class Tiny(FeatureExtractorBase):
        @staticmethod
        def get_provided_features_list():
            return ("f",)

    register_extractor("ganbench-test-tiny", Tiny)
    register_extractor("ganbench-test-tiny", Tiny)  # same pair again: fine

    class Other(Tiny):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_extractor("ganbench-test-tiny", Other)


def test_uint8_images_serves_gray_or_tiled_rgb():
    images = (torch.rand(5, 1, 8, 8) * 2 - 1)
    gray = UInt8Images.from_unit(images)
    rgb = UInt8Images.from_unit(images, channels=3)
    assert len(gray) == 5 and gray[0].shape == (1, 8, 8) and gray[0].dtype == torch.uint8
    assert rgb[0].shape == (3, 8, 8) and torch.equal(rgb[0][0], rgb[0][2])
    with pytest.raises(ValueError):
        UInt8Images(images)


def test_report_metrics_flattens_the_class_report_by_hand():
    from ganbench.evaluate.metrics import classification_report, report_metrics

    # asked for 0,0,1,1; named 0,1,1,1: class 0 precision 1, recall 1/2; class 1 precision 2/3, recall 1
    flat = report_metrics(classification_report([0, 0, 1, 1], [0, 1, 1, 1], 2))
    assert flat["gen_recall_0"] == 0.5 and flat["gen_recall_1"] == 1.0
    assert flat["gen_precision_1"] == pytest.approx(2 / 3)
    assert flat["gen_macro_recall"] == pytest.approx(0.75)
    assert flat["gen_macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
