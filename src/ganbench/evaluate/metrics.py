"""The metric maths, pure functions of features, labels and counts.

FID is ``frechet_distance`` below (torch-fidelity's eigenvalue method, in float64); KID, IS and
precision/recall are torch-fidelity's functions; ``fidelity_metrics`` is the one place they are computed
from an extractor's features. Intra-FID, mode coverage, the class-histogram KL, the confusion matrix and
the per-class report (torchmetrics) complete the classifier-based metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassF1Score, MulticlassPrecision, MulticlassRecall

from ganbench.evaluate.settings import MetricSettings

__all__ = [
    "MetricSettings",
    "RealFeatures",
    "class_counts",
    "classification_report",
    "confusion_matrix",
    "feature_statistics",
    "fid_infinity",
    "fidelity_metrics",
    "fit_inverse_n",
    "format_report",
    "frechet_distance",
    "inception_score",
    "intra_fid",
    "kernel_distance",
    "mode_kl",
    "modes_covered",
    "precision_recall",
]


# --------------------------------------------------------------------------- FID, KID, IS, PR


def feature_statistics(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, float64) of (N, D) features."""
    array = np.asarray(features.detach().cpu().numpy() if isinstance(features, Tensor) else features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"feature statistics need (N >= 2, D) features, got shape {array.shape}")
    return array.mean(axis=0), np.cov(array, rowvar=False).reshape(array.shape[1], array.shape[1])


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    tr((sigma1 sigma2)^1/2) is the sum of square roots of the eigenvalues of the covariance product, as
    torch-fidelity computes it, not scipy.linalg.sqrtm (slow, and known to return complex or wrong
    roots for near-singular covariances). The product is taken in its symmetric form
    sigma1^1/2 sigma2 sigma1^1/2 (same eigenvalues), whose eigenvalues are real by construction, so
    rounding cannot produce imaginary parts or negative roots.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"frechet_distance: shapes {mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape} do not match")
    sigma1, sigma2 = (sigma1 + sigma1.T) / 2, (sigma2 + sigma2.T) / 2
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    product = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((product + product.T) / 2)
    tr_covmean = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def kernel_distance(gen: Tensor, real: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over subsets): torch-fidelity's unbiased MMD^2 with the cubic polynomial kernel."""
    size = min(subset_size, gen.size(0), real.size(0))
    out = kid_features_to_metric(gen.float(), real.float(), kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False)
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


def inception_score(logits: Tensor, splits: int = 10, seed: int = 0) -> float:
    """IS = exp(E_x KL(p(y|x) || p(y))), mean over ``splits`` (torch-fidelity's)."""
    splits = max(1, min(splits, logits.size(0)))
    return isc_features_to_metric(logits.float(), splits=splits, shuffle=True, rng_seed=seed)[KEY_METRIC_ISC_MEAN]


def precision_recall(gen: Tensor, real: Tensor, neighborhood: int = 3) -> tuple[float, float]:
    """Improved precision and recall (k-NN manifolds; torch-fidelity's): generated first, real second."""
    # Full distance matrices are ~3 x 400 MB at 10k x 10k; beyond that torch-fidelity's blockwise path keeps memory flat.
    save_ram = gen.size(0) * real.size(0) > 10_000 * 10_000
    out = prc_features_to_metric(gen.float(), real.float(), prc_neighborhood=neighborhood, save_cpu_ram=save_ram, verbose=False)
    return out[KEY_METRIC_PRECISION], out[KEY_METRIC_RECALL]


def fit_inverse_n(counts: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Least-squares fit of values = a + b / N; returns (a, b). a is the value extrapolated to N -> infinity."""
    n = np.asarray(counts, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if n.shape != y.shape or n.size < 2 or len(np.unique(n)) < 2:
        raise ValueError(f"fitting a + b/N needs at least two distinct sample counts, got {n.tolist()}")
    design = np.stack([np.ones_like(n), 1.0 / n], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(a), float(b)


def fid_infinity(
    gen: Tensor, mu: np.ndarray, sigma: np.ndarray, points: int = 15, min_samples: int = 1000, seed: int = 0
) -> tuple[float, dict[int, float]]:
    """FID extrapolated to infinitely many samples (Chong & Forsyth 2020): FID of ``points`` seeded random subsets,
    N evenly spaced from ``min_samples`` to all samples, fitted as FID = a + b/N; returns a and the FID per N.

    FID is biased upwards by ~1/N; the intercept removes that bias so runs scored on different N compare.
    The real statistics stay fixed (as in the paper): only the generated side's N varies.
    """
    total = gen.size(0)
    low = min_samples if min_samples < total else max(2, total // 5)  # e.g. the reference row scoring fewer images
    counts = sorted({int(round(c)) for c in np.linspace(low, total, max(2, points))})
    rng = torch.Generator().manual_seed(seed)
    per_n: dict[int, float] = {}
    for n in counts:
        subset = gen[torch.randperm(total, generator=rng)[:n]]
        m, s = feature_statistics(subset)
        per_n[n] = frechet_distance(m, s, mu, sigma)
    a, _ = fit_inverse_n(list(per_n), list(per_n.values()))
    return a, per_n


@dataclass
class RealFeatures:
    """One extractor's features of a real image set, with the statistics every evaluation reuses."""

    layers: dict[str, Tensor]  # layer name -> (N, D) features
    labels: Tensor  # (N,) int64 true labels
    layer_for: dict[str, str]  # metric -> layer
    prc_index: Tensor | None = None  # the subset precision/recall compares with (same size as the samples)
    mu: np.ndarray = field(init=False)
    sigma: np.ndarray = field(init=False)
    class_stats: dict[int, tuple[np.ndarray, np.ndarray]] = field(init=False)
    density_radii: dict[int, Tensor] = field(init=False, default_factory=dict)  # k -> k-NN radii of the prc subset, computed once

    def __post_init__(self) -> None:
        fid = self.layers[self.layer_for["fid"]]
        self.mu, self.sigma = feature_statistics(fid)
        self.class_stats = {}
        for c in torch.unique(self.labels).tolist():
            members = fid[self.labels == c]
            if members.size(0) >= 2:
                self.class_stats[int(c)] = feature_statistics(members)


def fidelity_metrics(
    gen: Mapping[str, Tensor],
    real: RealFeatures,
    suffix: str,
    settings: MetricSettings,
    which: Sequence[str] = ("fid", "kid", "isc", "prc"),
) -> dict[str, float]:
    """FID, KID (+ std), IS, precision and recall of generated features against ``real``, named ``<metric>_<suffix>``."""
    out: dict[str, float] = {}
    layer = real.layer_for
    if "fid" in which:
        mu, sigma = feature_statistics(gen[layer["fid"]])
        out[f"fid_{suffix}"] = frechet_distance(mu, sigma, real.mu, real.sigma)
    if "kid" in which:
        mean, std = kernel_distance(gen[layer["kid"]], real.layers[layer["kid"]], settings.kid_subsets, settings.kid_subset_size, settings.seed)
        out[f"kid_{suffix}"], out[f"kid_{suffix}_std"] = mean, std
    if "isc" in which:
        out[f"is_{suffix}"] = inception_score(gen[layer["isc"]], settings.isc_splits, settings.seed)
    if "prc" in which:
        reference = real.layers[layer["prc"]]
        if real.prc_index is not None:
            reference = reference[real.prc_index]
        out[f"precision_{suffix}"], out[f"recall_{suffix}"] = precision_recall(gen[layer["prc"]], reference, settings.prc_neighborhood)
    return out


def intra_fid(gen_features: Tensor, gen_labels: Tensor, class_stats: Mapping[int, tuple[np.ndarray, np.ndarray]]) -> tuple[float, dict[int, float]]:
    """Mean over classes of the FID between class-c samples and class-c real images, and the per-class values."""
    per_class: dict[int, float] = {}
    for c, (mu_real, sigma_real) in sorted(class_stats.items()):
        members = gen_features[gen_labels == c]
        if members.size(0) < 2:
            continue
        mu, sigma = feature_statistics(members)
        per_class[c] = frechet_distance(mu, sigma, mu_real, sigma_real)
    mean = float(np.mean(list(per_class.values()))) if per_class else float("nan")
    return mean, per_class


# --------------------------------------------------------------------------- class histograms and reports


def class_counts(labels: Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """How many of ``labels`` fall in each class."""
    array = np.asarray(labels.cpu().numpy() if isinstance(labels, Tensor) else labels, dtype=np.int64)
    return np.bincount(array, minlength=num_classes)[:num_classes]


def modes_covered(counts: Sequence[int] | np.ndarray, min_share: float = 0.01) -> int:
    """Classes that receive at least ``min_share`` of all samples."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return int((counts >= min_share * total).sum()) if total > 0 else 0


def mode_kl(gen_counts: Sequence[int] | np.ndarray, real_counts: Sequence[int] | np.ndarray, eps: float = 1e-10) -> float:
    """KL(p_generated || p_real) of class histograms, in nats (0 when the shares match).

    This direction stays finite when the generator drops a class (that class adds 0); ``eps`` only
    guards classes missing from the real histogram.
    """
    p = np.asarray(gen_counts, dtype=np.float64)
    q = np.asarray(real_counts, dtype=np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError(f"mode_kl needs two non-empty histograms of the same length, got {p.shape} and {q.shape}")
    p, q = p / p.sum(), q / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / np.maximum(q[mask], eps))))


def _labels(values: Tensor | np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(values.cpu() if isinstance(values, Tensor) else values, dtype=np.int64))


def confusion_matrix(y_true: Tensor | np.ndarray, y_pred: Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: row = requested (true) class, column = predicted class."""
    metric = MulticlassConfusionMatrix(num_classes=num_classes, validate_args=False)
    return metric(_labels(y_pred), _labels(y_true)).numpy().astype(np.int64)


def classification_report(y_true: Tensor | np.ndarray, y_pred: Tensor | np.ndarray, num_classes: int) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support, with accuracy and macro/weighted means (a class never predicted scores 0).

    The per-class values are torchmetrics'; macro is their plain mean over every class, weighted their mean by support.
    """
    target, preds = _labels(y_true), _labels(y_pred)
    per_class = {
        name: cls(num_classes=num_classes, average="none", validate_args=False)(preds, target).double().numpy()
        for name, cls in (("precision", MulticlassPrecision), ("recall", MulticlassRecall), ("f1", MulticlassF1Score))
    }
    precision, recall, f1 = per_class["precision"], per_class["recall"], per_class["f1"]
    support = np.bincount(target.numpy(), minlength=num_classes)[:num_classes].astype(np.float64)
    total = support.sum()
    correct = int((preds == target).sum())
    rows = [
        {"class": c, "precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]), "support": int(support[c])}
        for c in range(num_classes)
    ]
    weights = support / total if total > 0 else np.zeros_like(support)
    return {
        "per_class": rows,
        "accuracy": float(correct / total) if total > 0 else float("nan"),
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
        "weighted": {"precision": float(precision @ weights), "recall": float(recall @ weights), "f1": float(f1 @ weights)},
        "support": int(total),
    }


def report_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The classification report as flat metrics: ``gen_macro_{precision,recall,f1}`` and ``gen_{precision,recall,f1}_<c>``.

    ``gen_recall_<c>`` is the share of samples asked for class c that the classifier names c (per-class accuracy).
    """
    out = {f"gen_macro_{k}": float(v) for k, v in report["macro"].items()}
    for row in report["per_class"]:
        out.update({f"gen_{k}_{row['class']}": float(row[k]) for k in ("precision", "recall", "f1")})
    return out


def format_report(report: Mapping[str, Any]) -> str:
    """The report as a fixed-width table (the seed S3 layout: precision, recall, F1, support per class)."""
    lines = [f"{'class':>8} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for row in report["per_class"]:
        lines.append(f"{row['class']:>8} {row['precision']:>9.4f} {row['recall']:>9.4f} {row['f1']:>9.4f} {row['support']:>8}")
    lines.append("")
    lines.append(f"{'accuracy':>8} {'':>9} {'':>9} {report['accuracy']:>9.4f} {report['support']:>8}")
    for name in ("macro", "weighted"):
        m = report[name]
        lines.append(f"{name:>8} {m['precision']:>9.4f} {m['recall']:>9.4f} {m['f1']:>9.4f} {report['support']:>8}")
    return "\n".join(lines) + "\n"
