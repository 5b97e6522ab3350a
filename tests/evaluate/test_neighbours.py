"""k-NN metrics (density, coverage, memorisation, MiFID), FID at infinity, precision/recall direction, KID and PR by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn
from torchmetrics.image.mifid import MemorizationInformedFrechetInceptionDistance

from ganbench.evaluate.metrics import (
    RealFeatures,
    feature_statistics,
    fid_infinity,
    fidelity_metrics,
    fit_inverse_n,
    frechet_distance,
    kernel_distance,
    mode_kl,
)
from ganbench.evaluate.neighbours import (
    Memorization,
    closest_pairs,
    density_coverage,
    kth_neighbour_radii,
    memorization_share,
    memorization_threshold,
    mifid,
    mifid_distance,
    nearest_neighbours,
    neighbour_metrics,
)
from ganbench.evaluate.settings import MetricSettings


class Identity(nn.Module):
    """torchmetrics' "feature extractor" for features already extracted."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def numpy_density_coverage(gen: np.ndarray, real: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. 2020, eqs. for density and coverage, straight from the pairwise distances."""
    rr = pairwise(real, real)
    radii = np.sort(rr, axis=1)[:, k]  # column 0 is the point itself
    rg = pairwise(real, gen)
    inside = rg < radii[:, None]
    return inside.sum() / (k * gen.shape[0]), inside.any(axis=1).mean()


def test_density_and_coverage_on_a_hand_made_case():
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    gen = torch.tensor([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9], [10.0, 10.0]])
    # k = 1: radii 1, 1, 1, 1 and sqrt(32) for the outlier (its nearest real point is (1, 1)).
    density, coverage = density_coverage(gen, real, k=1)
    # Inside counts: (0.1, 0.1) lies within 1 of (0,0), (1,0), (0,1): 3 balls; (0.9, 0.9) likewise 3; (0.5, 0.5) in all
    # four unit balls; none within sqrt(32) = 5.66 of (5, 5), and (10, 10) in no ball. Density 10 / (k M = 4).
    assert density == pytest.approx(10 / 4)
    assert coverage == pytest.approx(4 / 5)  # the outlier's ball holds no sample
    assert (density, coverage) == pytest.approx(numpy_density_coverage(gen.numpy(), real.numpy(), 1))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_density_and_coverage_equal_a_direct_numpy_computation(k):
    rng = np.random.default_rng(k)
    real, gen = rng.normal(size=(300, 8)), rng.normal(0.3, 1.2, size=(250, 8))
    ours = density_coverage(torch.tensor(gen), torch.tensor(real), k=k, chunk=64)  # several chunks
    assert ours == pytest.approx(numpy_density_coverage(gen.astype(np.float32), real.astype(np.float32), k), rel=1e-6)
    radii = kth_neighbour_radii(torch.tensor(real), k, chunk=50)
    assert density_coverage(torch.tensor(gen), torch.tensor(real), k, radii) == pytest.approx(ours)


def test_samples_equal_to_the_real_set_have_density_and_coverage_about_one():
    real = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0))
    same = torch.randn(2000, 4, generator=torch.Generator().manual_seed(1))
    density, coverage = density_coverage(same, real, k=5)
    assert 0.85 < density < 1.15 and coverage > 0.9
    collapsed = real[:1].repeat(2000, 1)  # one point: it covers only the balls around it
    assert density_coverage(collapsed, real, k=5)[1] < 0.02


def test_nearest_neighbours_and_the_closest_pairs():
    points = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    queries = torch.tensor([[1.0, 0.0], [9.5, 0.0], [4.0, 3.0]])
    dist, index = nearest_neighbours(queries, points, chunk=2)
    assert dist.tolist() == pytest.approx([1.0, 0.5, 5.0]) and index.tolist() == [0, 1, 0]
    images = torch.arange(3, dtype=torch.uint8).view(3, 1, 1, 1)
    train = torch.tensor([100, 200], dtype=torch.uint8).view(2, 1, 1, 1)
    pairs = closest_pairs(images, train, dist, index, 2)
    assert pairs.samples.flatten().tolist() == [1, 0] and pairs.train.flatten().tolist() == [200, 100]
    assert pairs.distances == pytest.approx([0.5, 1.0])


def test_memorization_counts_samples_nearer_than_the_held_out_quantile():
    heldout_nn = torch.arange(1, 101, dtype=torch.float64)  # held-out images 1..100 away from their nearest training image
    threshold = memorization_threshold(heldout_nn, 0.1)
    assert threshold == pytest.approx(np.quantile(np.arange(1, 101), 0.1))  # 10.9
    gen_nn = torch.tensor([0.0, 0.0, 5.0, 10.9, 50.0])  # two copies, one near one, one at the threshold, one far
    assert memorization_share(gen_nn, threshold) == pytest.approx(3 / 5)


def test_a_copying_generator_is_memorised_and_fresh_samples_are_not():
    g = torch.Generator().manual_seed(0)
    train, heldout, fresh = torch.randn(1000, 6, generator=g), torch.randn(400, 6, generator=g), torch.randn(500, 6, generator=g)
    threshold = memorization_threshold(nearest_neighbours(heldout, train)[0], 0.1)
    copies = train[:500] + 1e-4 * torch.randn(500, 6, generator=g)
    assert memorization_share(nearest_neighbours(copies, train)[0], threshold) == 1.0
    assert memorization_share(nearest_neighbours(fresh, train)[0], threshold) == pytest.approx(0.1, abs=0.05)


def test_mifid_is_fid_for_fresh_samples_and_inflated_for_copies():
    g = torch.Generator().manual_seed(0)
    train = torch.randn(600, 5, generator=g) + 3.0  # all positive-ish: cosine distances are small but not zero
    fresh = torch.randn(600, 5, generator=g) + 3.2
    # eps = 1e-6: no sample set is that close in cosine distance, so MiFID = FID (the memorisation term is 1).
    fid = frechet_distance(*feature_statistics(fresh), *feature_statistics(train))
    assert mifid(fresh, train, cosine_eps=1e-6) == pytest.approx(fid, rel=1e-6)
    copies = train.clone() + torch.tensor([0.2, 0, 0, 0, 0])  # shifted copies: FID > 0, cosine distance ~ 0
    assert mifid(copies, train, cosine_eps=0.1) > 100 * frechet_distance(*feature_statistics(copies), *feature_statistics(train))


def numpy_mifid(gen: np.ndarray, train: np.ndarray, eps: float) -> tuple[float, float]:
    """Kaggle's MiFID (Bai et al. 2021) by hand: d = mean over GENERATED rows of min over training rows of 1 - |cos|,
    thresholded at eps; FID with scipy's sqrtm. Returns (d, MiFID)."""
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    d = (1.0 - np.abs(unit(gen) @ unit(train).T)).min(axis=1).mean()
    mu1, mu2, s1, s2 = gen.mean(0), train.mean(0), np.cov(gen, rowvar=False), np.cov(train, rowvar=False)
    fid = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    return d, fid / ((d if d < eps else 1.0) + 1e-14)


def test_mifid_averages_the_memorisation_term_over_the_generated_samples():
    rng = np.random.default_rng(4)
    train = rng.normal(2.0, 1.0, size=(173, 6))
    gen = np.concatenate([train[:20] * 1.5, rng.normal(2.2, 1.1, size=(41, 6))])  # 61 samples, 20 scaled copies
    d, expected = numpy_mifid(gen, train, eps=0.5)
    assert 0 < d < 0.5  # the threshold lets the term through, so the direction shows in the value
    assert mifid_distance(torch.tensor(gen), torch.tensor(train), chunk=16) == pytest.approx(d, rel=1e-9)
    assert mifid(torch.tensor(gen), torch.tensor(train), cosine_eps=0.5, chunk=16) == pytest.approx(expected, rel=1e-6)
    swapped, _ = numpy_mifid(train, gen, eps=0.5)  # the mean over training rows (torchmetrics' direction) differs
    assert abs(swapped - d) > 0.1 * d
    # torchmetrics' metric averages over its "real" features: with the samples passed as real it is this MiFID.
    tm = MemorizationInformedFrechetInceptionDistance(feature=Identity(), cosine_distance_eps=0.5)
    tm.update(torch.tensor(gen), real=True)
    tm.update(torch.tensor(train), real=False)
    assert float(tm.compute()) == pytest.approx(expected, rel=1e-5)


def test_a_copier_of_part_of_the_training_set_gets_a_huge_mifid():
    # Copies of 100 of 2,000 training points: every sample sits on a training point (d = 0), however few were copied.
    # Averaged over the training set instead, the 1,900 uncopied points would keep d large and MiFID near FID.
    g = torch.Generator().manual_seed(1)
    train = torch.randn(2000, 8, generator=g, dtype=torch.float64)
    copies = train[torch.randint(0, 100, (500,), generator=g)]
    fid = frechet_distance(*feature_statistics(copies), *feature_statistics(train))
    assert mifid_distance(copies, train) == pytest.approx(0.0, abs=1e-12)
    assert mifid(copies, train, cosine_eps=0.1) > 1e6 * fid
    assert numpy_mifid(train.numpy(), copies.numpy(), eps=0.1)[0] > 0.1  # the swapped direction: no memorisation seen


def test_fit_inverse_n_recovers_a_and_b_from_synthetic_numbers():
    n = np.array([1000, 2000, 5000, 10000])
    assert fit_inverse_n(n, 3.0 + 500.0 / n) == pytest.approx((3.0, 500.0))
    noisy = 3.0 + 500.0 / n + np.array([0.01, -0.01, 0.01, -0.01])
    a, b = fit_inverse_n(n, noisy)
    assert a == pytest.approx(3.0, abs=0.05) and b == pytest.approx(500.0, rel=0.05)
    with pytest.raises(ValueError, match="two distinct"):
        fit_inverse_n([1000, 1000], [1.0, 2.0])


def test_fid_at_infinity_is_below_the_finite_fid_and_near_the_true_distance():
    g = torch.Generator().manual_seed(0)
    d = 16
    gen = torch.randn(8000, d, generator=g, dtype=torch.float64)
    mu, sigma = np.zeros(d), np.eye(d)  # the true distribution: its FID at infinity is 0
    fid_inf, per_n = fid_infinity(gen, mu, sigma, points=8, min_samples=1000, seed=0)
    assert sorted(per_n) == list(per_n) and min(per_n) == 1000 and max(per_n) == 8000 and len(per_n) == 8
    assert abs(fid_inf) < per_n[8000] and abs(fid_inf) < 0.01  # the 1/N bias (~d(d+1)/(2N) + d/N) is removed


def test_precision_and_recall_are_not_swapped():
    # Real features: a dense core and a wide halo. Samples packed into the core: all precise, little recall.
    g = torch.Generator().manual_seed(0)
    real = torch.cat([0.1 * torch.randn(200, 4, generator=g), 3.0 * torch.randn(800, 4, generator=g)])
    gen = 0.05 * torch.randn(1000, 4, generator=g)
    real_features = RealFeatures({"f": real}, torch.zeros(1000, dtype=torch.int64), {"fid": "f", "kid": "f", "prc": "f", "isc": "f"})
    out = fidelity_metrics({"f": gen}, real_features, "x", MetricSettings(), which=("prc",))  # the evaluator's path
    assert out["precision_x"] > 0.9 and out["recall_x"] < 0.3


def test_precision_recall_and_kid_equal_a_direct_numpy_computation():
    rng = np.random.default_rng(3)
    real, gen = rng.normal(size=(120, 5)), rng.normal(0.4, 1.1, size=(120, 5))
    k = 3
    rr, gg, gr = pairwise(real, real), pairwise(gen, gen), pairwise(gen, real)
    real_r, gen_r = np.sort(rr, axis=1)[:, k], np.sort(gg, axis=1)[:, k]
    precision = (gr <= real_r[None, :]).any(axis=1).mean()  # a sample inside some real k-NN ball
    recall = (gr.T <= gen_r[None, :]).any(axis=1).mean()  # a real image inside some sample's ball
    real_features = RealFeatures({"f": torch.tensor(real)}, torch.zeros(120, dtype=torch.int64), {"fid": "f", "kid": "f", "prc": "f", "isc": "f"})
    out = fidelity_metrics({"f": torch.tensor(gen)}, real_features, "x", MetricSettings(prc_neighborhood=k), which=("prc",))
    assert (out["precision_x"], out["recall_x"]) == pytest.approx((precision, recall))
    # KID with one subset holding every sample: the unbiased MMD^2 with the kernel (x.y / d + 1)^3.
    kern = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    m = 120
    kxx, kyy, kxy = kern(gen, gen), kern(real, real), kern(gen, real)
    mmd = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    assert kernel_distance(torch.tensor(gen), torch.tensor(real), subsets=1, subset_size=m)[0] == pytest.approx(mmd, rel=1e-6)


def test_single_class_generator_covers_one_mode_with_the_hand_worked_kl():
    from ganbench.evaluate.metrics import modes_covered

    gen, real = np.array([100, 0, 0, 0]), np.array([25, 25, 25, 25])
    assert modes_covered(gen) == 1
    assert mode_kl(gen, real) == pytest.approx(np.log(4))  # KL(delta || uniform over 4) = log 4


def test_neighbour_metrics_name_every_metric_and_keep_the_pairs():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 4, generator=g)
    real_features = RealFeatures({"f": real}, torch.zeros(300, dtype=torch.int64), {"fid": "f", "kid": "f", "prc": "f", "isc": "f"})
    train = torch.randn(200, 4, generator=g)
    memo = Memorization(torch.zeros(200, 1, 2, 2, dtype=torch.uint8), train, 0.5, pairs=5)
    images = torch.zeros(250, 1, 2, 2, dtype=torch.uint8)
    settings = MetricSettings(fid_inf=True, fid_inf_points=4, fid_inf_min_samples=100)
    gen = torch.randn(250, 4, generator=g)
    out, pairs, by_n = neighbour_metrics({"f": gen}, images, real_features, memo, settings)
    assert set(out) == {"density_clf", "coverage_clf", "memorization_clf", "mifid_clf", "fid_inf_clf"}
    # each wired to the right sets and settings: k, the memorisation threshold, MiFID against the training set
    density, coverage = numpy_density_coverage(gen.numpy().astype(np.float64), real.numpy().astype(np.float64), settings.density_neighborhood)
    assert (out["density_clf"], out["coverage_clf"]) == pytest.approx((density, coverage), rel=1e-6)
    nearest_train = pairwise(gen.numpy().astype(np.float64), train.numpy().astype(np.float64)).min(axis=1)
    assert out["memorization_clf"] == pytest.approx((nearest_train < 0.5).mean())
    assert 0 < out["memorization_clf"] < 1
    _, mifid_by_hand = numpy_mifid(gen.numpy().astype(np.float64), train.numpy().astype(np.float64), settings.mifid_cosine_eps)
    assert out["mifid_clf"] == pytest.approx(mifid_by_hand, rel=1e-5)
    assert pairs.samples.shape == (5, 1, 2, 2) and len(pairs.distances) == 5 and sorted(by_n) == [100, 150, 200, 250]
    assert 5 in real_features.density_radii  # cached for the next evaluation
