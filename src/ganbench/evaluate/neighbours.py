"""k-nearest-neighbour metrics in a feature space: density and coverage, memorisation, MiFID.

Distances are Euclidean (torch.cdist) and computed in row chunks, so memory stays at ``chunk x M``
floats however many samples are scored; nothing here builds a full N x M matrix.

* density / coverage: Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
  Models" (the formulas of the ``prdc`` package, strict ``<`` included).
* memorisation: the share of generated samples closer to their nearest training image than a low
  quantile of the same distance for held-out real images (the C_T / authenticity family: Meehan et al.
  2020, Alaa et al. 2022). A generator that is as far from its training set as fresh real images scores
  about the quantile q itself; one that copies training images approaches 1 (against a subset of M of the N
  training images, q + (1 - q) M / N: copies of the others look like fresh images).
* MiFID: Bai et al. 2021 (Kaggle's metric): FID / d_thr with d the mean over generated samples of the cosine
  distance 1 - |cos| to their nearest training sample, d_thr = d when d < eps, else 1. Not torchmetrics'
  ``MemorizationInformedFrechetInceptionDistance`` (see ``mifid``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ganbench.evaluate.metrics import RealFeatures, feature_statistics, fid_infinity, frechet_distance
from ganbench.evaluate.settings import MetricSettings

__all__ = [
    "Memorization",
    "NearestPairs",
    "closest_pairs",
    "density_coverage",
    "kth_neighbour_radii",
    "memorization_share",
    "memorization_threshold",
    "mifid",
    "mifid_distance",
    "nearest_neighbours",
    "neighbour_metrics",
]

CHUNK = 2048  # rows per cdist block: 2048 x 10,000 float32 distances are 80 MB
MIFID_EPSILON = 1e-14  # Kaggle's fid_epsilon (10e-15): a copier's d_thr of 0 gives a huge MiFID, not a division by zero


def nearest_neighbours(queries: Tensor, points: Tensor, chunk: int = CHUNK) -> tuple[Tensor, Tensor]:
    """For each query row, the distance to its nearest row of ``points`` and that row's index."""
    points = points.float()
    dists, index = [], []
    for block in queries.float().split(chunk):
        d, i = torch.cdist(block, points).min(dim=1)
        dists.append(d)
        index.append(i)
    return torch.cat(dists), torch.cat(index)


def kth_neighbour_radii(points: Tensor, k: int, chunk: int = CHUNK) -> Tensor:
    """Each point's distance to its k-th nearest other point (itself, at distance 0, is not counted)."""
    if points.size(0) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {points.size(0)}")
    points = points.float()
    # kthvalue(k + 1): the smallest value in each row is the point's distance to itself.
    return torch.cat([torch.cdist(block, points).kthvalue(k + 1, dim=1).values for block in points.split(chunk)])


def density_coverage(gen: Tensor, real: Tensor, k: int = 5, radii: Tensor | None = None, chunk: int = CHUNK) -> tuple[float, float]:
    """Density and coverage of generated features against real ones (Naeem et al. 2020, k-NN balls around real points).

    density = 1/(kM) sum_j sum_i 1[Y_j in B(X_i, r_i)]; coverage = 1/N sum_i 1[exists j: Y_j in B(X_i, r_i)],
    with r_i the distance of real X_i to its k-th nearest real neighbour. ``radii`` (from
    ``kth_neighbour_radii(real, k)``) can be passed in: they depend on the real set only.
    """
    real = real.float()
    radii = kth_neighbour_radii(real, k, chunk) if radii is None else radii.float()
    inside = torch.zeros((), dtype=torch.float64)
    nearest_gen = torch.full((real.size(0),), float("inf"))
    for block in gen.float().split(chunk):
        d = torch.cdist(real, block)  # (N real, B gen)
        inside += (d < radii[:, None]).sum(dtype=torch.float64)
        nearest_gen = torch.minimum(nearest_gen, d.min(dim=1).values)
    covered = nearest_gen < radii
    density = float(inside / (k * gen.size(0)))
    return density, float(covered.double().mean())


def memorization_threshold(heldout_nn: Tensor, quantile: float) -> float:
    """The ``quantile`` of held-out real images' nearest-training-image distances: 'as close as real images get'."""
    return float(torch.quantile(heldout_nn.double(), quantile))


def memorization_share(gen_nn: Tensor, threshold: float) -> float:
    """Share of generated samples whose nearest training image is closer than ``threshold`` (strictly)."""
    return float((gen_nn < threshold).double().mean()) if gen_nn.numel() else float("nan")


@dataclass
class NearestPairs:
    """The generated samples closest to a training image, with that image: for the pair grid."""

    samples: Tensor  # uint8 (K, 1, S, S)
    train: Tensor  # uint8 (K, 1, S, S), train[i] is samples[i]'s nearest training image
    distances: list[float]


def closest_pairs(images: Tensor, train_images: Tensor, gen_nn: Tensor, gen_index: Tensor, count: int) -> NearestPairs:
    """The ``count`` generated images nearest to a training image, each with its nearest training image."""
    order = torch.argsort(gen_nn)[: max(0, count)]
    return NearestPairs(images[order].clone(), train_images[gen_index[order]].clone(), [float(d) for d in gen_nn[order]])


def _directions(features: Tensor) -> Tensor:
    """Rows scaled to unit length (float64), all-zero rows (no direction) left out as Kaggle's MiFID leaves them out."""
    features = features.double()
    norms = features.norm(dim=1, keepdim=True)
    keep = norms.squeeze(1) > 0
    return features[keep] / norms[keep]


def mifid_distance(gen: Tensor, train: Tensor, chunk: int = CHUNK) -> float:
    """MiFID's memorisation distance d: the mean over generated samples of min over training samples of 1 - |cos|."""
    gen_dirs, train_dirs = _directions(gen), _directions(train)
    if gen_dirs.size(0) == 0 or train_dirs.size(0) == 0:
        return float("nan")
    # The search runs in float32 (half float64's time at 10,000 x 22,352); each sample's distance to the training
    # sample found is taken in float64, so that a copy is at 0, not at float32's rounding (~1e-7, of either sign).
    train32 = train_dirs.float()
    nearest = torch.cat([(block.float() @ train32.T).abs_().argmax(dim=1) for block in gen_dirs.split(chunk)])
    return float((1.0 - (gen_dirs * train_dirs[nearest]).sum(dim=1).abs()).mean())


def mifid(gen: Tensor, train: Tensor, cosine_eps: float = 0.1, chunk: int = CHUNK) -> float:
    """MiFID of generated against training features: FID / d_thr, with d = ``mifid_distance`` and d_thr = d when
    d < ``cosine_eps`` (memorisation detected), else 1 (MiFID = FID)."""
    # Computed here, not with torchmetrics' MemorizationInformedFrechetInceptionDistance: its d is the mean over its
    # *real* (training) features of the distance to the nearest generated one. Kaggle's, the paper's, averages over the
    # generated samples, so that a generator of copies has d = 0; averaged over the training set, the training images
    # it did not copy keep d up, and the copier can score better than real data. torchmetrics also holds the whole
    # N x M matrix in float64 (1.8 GB at 10,000 x 22,352); this keeps to ``chunk`` rows of it.
    fid = frechet_distance(*feature_statistics(gen), *feature_statistics(train))
    d = mifid_distance(gen, train, chunk)
    thresholded = d if d < cosine_eps else 1.0  # NaN (no direction to compare) is not memorisation
    return fid / (thresholded + MIFID_EPSILON)


@dataclass
class Memorization:
    """What memorisation and MiFID compare with: a training subset (images and features) and the held-out threshold."""

    train_images: Tensor  # uint8 (M, 1, S, S), for the pair grid
    train_features: Tensor  # (M, D) classifier features
    threshold: float  # memorization_threshold of held-out images' nearest-training distances
    pairs: int  # how many closest pairs to keep


def neighbour_metrics(
    clf_features: Mapping[str, Tensor],
    images: Tensor,
    real: RealFeatures,
    memo: Memorization,
    settings: MetricSettings,
    lap: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, float], NearestPairs, dict[int, float]]:
    """density_clf, coverage_clf, memorization_clf, mifid_clf (and fid_inf_clf with settings.fid_inf) of the samples'
    classifier features; with the closest pairs and the FID per sample count of the 1/N fit. ``lap(name)`` times phases."""
    out: dict[str, float] = {}
    gen = clf_features[real.layer_for["prc"]]
    reference = real.layers[real.layer_for["prc"]]
    # The same real subset precision/recall compares with: as many real images as samples, as the paper does.
    reference = reference if real.prc_index is None else reference[real.prc_index]
    k = settings.density_neighborhood
    if k not in real.density_radii:  # they depend on the real side only: paid once per evaluator
        real.density_radii[k] = kth_neighbour_radii(reference, k)
    out["density_clf"], out["coverage_clf"] = density_coverage(gen, reference, k, real.density_radii[k])
    lap("density_coverage")
    gen_nn, gen_index = nearest_neighbours(gen, memo.train_features)
    out["memorization_clf"] = memorization_share(gen_nn, memo.threshold)
    pairs = closest_pairs(images, memo.train_images, gen_nn, gen_index, memo.pairs)
    lap("memorization")
    out["mifid_clf"] = mifid(gen, memo.train_features, settings.mifid_cosine_eps)
    lap("mifid")
    by_n: dict[int, float] = {}
    if settings.fid_inf:
        fid_gen = clf_features[real.layer_for["fid"]]
        out["fid_inf_clf"], by_n = fid_infinity(fid_gen, real.mu, real.sigma, settings.fid_inf_points, settings.fid_inf_min_samples, settings.seed)
        lap("fid_inf")
    return out, pairs, by_n
