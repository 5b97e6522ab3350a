"""Sample-quality metrics behind one registry of feature extractors (torch-fidelity's).

Feature extractors are torch-fidelity ``FeatureExtractorBase`` classes looked
up by name: ``inception-v3-compat`` (torch-fidelity's own) and
``ganbench-classifier`` (the auxiliary digit classifier, its weights file given
as ``feature_extractor_weights_path``). ``fidelity_metrics`` is the one place
FID/KID/IS/precision/recall are computed from features; KID, IS and PR are
torch-fidelity's functions, FID is ``frechet_distance`` below (torch-fidelity's
eigenvalue method, in float64). Mode coverage, class-histogram KL and per-class
reports for the classifier-based metrics live here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_fidelity import FeatureExtractorBase, GenerativeModelBase
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, NOISE_SOURCE_REGISTRY, register_feature_extractor, register_noise_source
from torch_fidelity.utils import create_feature_extractor

CLASSIFIER_EXTRACTOR = "ganbench-classifier"
INCEPTION_EXTRACTOR = "inception-v3-compat"
METRIC_LAYERS = ("fid", "kid", "prc", "isc")


# --------------------------------------------------------------------------- the registry


def register_extractor(name: str, cls: type[FeatureExtractorBase]) -> None:
    """Register ``cls`` under ``name`` in torch-fidelity's registry; registering the same pair again is a no-op."""
    existing = FEATURE_EXTRACTORS_REGISTRY.get(name)
    if existing is cls:
        return
    if existing is not None:
        raise ValueError(f"feature extractor {name!r} is already registered as {existing.__name__}")
    register_feature_extractor(name, cls)


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """The auxiliary digit classifier as a torch-fidelity feature extractor.

    Features: ``features`` (its ``feature_dim`` layer; FID/KID/PR) and ``logits`` (IS). Input: uint8
    (N, 1, S, S) images, or (N, 3, S, S) grayscale tiled to RGB (the first channel is used).
    """

    def __init__(self, name: str, features_list: Sequence[str], feature_extractor_weights_path: str | None = None, **kwargs: Any):
        super().__init__(name, list(features_list))
        from ganbench.classifier import load_classifier

        if feature_extractor_weights_path is None:
            raise ValueError(f"{name} needs feature_extractor_weights_path: the classifier file to load")
        loaded = load_classifier(feature_extractor_weights_path)  # weights_only=True inside
        self.classifier = loaded.model
        self.sha256 = loaded.sha256

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return "features", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> Tensor:
        return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4:
            raise ValueError(f"{self.name} expects uint8 images (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
        unit = x[:, :1].to(torch.float32).div(127.5).sub(1.0)
        feats, logits = self.classifier.features_and_logits(unit)
        out = {"features": feats.float(), "logits": logits.float()}
        return tuple(out[name] for name in self.features_list)


register_extractor(CLASSIFIER_EXTRACTOR, ClassifierFeatureExtractor)


def metric_layers(name: str) -> dict[str, str]:
    """The feature layer each metric (fid, kid, prc, isc) reads for extractor ``name``."""
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        raise ValueError(f"feature extractor {name!r} is not registered; registered: {', '.join(sorted(FEATURE_EXTRACTORS_REGISTRY))}")
    cls = FEATURE_EXTRACTORS_REGISTRY[name]
    return {metric: cls.get_default_feature_layer_for_metric(metric) for metric in METRIC_LAYERS}


def create_extractor(name: str, weights_path: str | None = None, device: torch.device | str = "cpu") -> FeatureExtractorBase:
    """Build registered extractor ``name`` with the layers the metrics need, in eval mode on ``device``."""
    layers = sorted(set(metric_layers(name).values()))
    extractor = create_feature_extractor(name, layers, cuda=False, feature_extractor_weights_path=weights_path, verbose=False)
    return extractor.to(device)


def extractor_channels(extractor: FeatureExtractorBase) -> int:
    """3 for RGB extractors (Inception, and any that is not ganbench's), 1 for the digit classifier."""
    return 1 if isinstance(extractor, ClassifierFeatureExtractor) else 3


# --------------------------------------------------------------------------- torch-fidelity inputs


class UInt8Images(Dataset):
    """A fixed set of uint8 images (N, 1, S, S) as a torch-fidelity input, optionally tiled to 3 channels."""

    def __init__(self, images: Tensor, channels: int = 1):
        if images.dtype != torch.uint8 or images.dim() != 4 or images.size(1) != 1:
            raise ValueError(f"UInt8Images needs uint8 (N, 1, S, S) images, got {images.dtype} {tuple(images.shape)}")
        self.images, self.channels = images, channels

    @classmethod
    def from_unit(cls, images: Tensor, channels: int = 1) -> "UInt8Images":
        """From floats in [-1, 1] (the datasets' and generators' range)."""
        from ganbench.classifier import to_uint8

        return cls(to_uint8(images), channels)

    def __len__(self) -> int:
        return self.images.size(0)

    def __getitem__(self, i: int) -> Tensor:
        image = self.images[i]
        return image.expand(self.channels, -1, -1).contiguous() if self.channels != 1 else image


def _register_noise_sources() -> None:
    # ganbench's priors, so torch-fidelity's own sampling loop draws z the way training did.
    sources = {
        "ganbench-normal": lambda rng, shape: torch.from_numpy(rng.randn(*shape)).float(),
        "ganbench-uniform": lambda rng, shape: torch.from_numpy(rng.uniform(-1.0, 1.0, size=shape)).float(),
    }
    for name, fn in sources.items():
        if name not in NOISE_SOURCE_REGISTRY:
            register_noise_source(name, fn)


_register_noise_sources()


class GeneratorInput(GenerativeModelBase):
    """A ganbench generator as a torch-fidelity input: samples are drawn batch by batch, never all held.

    torch-fidelity sees an unconditional model (its conditional path uses the removed ``np.int``);
    a conditional generator gets labels cycling 0..C-1, so every class is equally represented.
    """

    def __init__(self, generator: torch.nn.Module, z_dim: int, prior: str, num_classes: int, conditional: bool, channels: int = 1):
        super().__init__()
        self.generator, self._z_dim, self._prior = generator.eval(), int(z_dim), prior
        self.classes, self.conditional, self.channels = int(num_classes), bool(conditional), channels
        self._next_label = 0

    @property
    def z_size(self) -> int:
        return self._z_dim

    @property
    def z_type(self) -> str:
        return f"ganbench-{self._prior}"

    @property
    def num_classes(self) -> int:
        return 0

    @torch.no_grad()
    def forward(self, z: Tensor) -> Tensor:
        from ganbench.classifier import to_uint8

        device = next(self.generator.parameters()).device
        labels = (torch.arange(z.size(0)) + self._next_label) % max(self.classes, 1)
        self._next_label = int(labels[-1]) + 1 if len(labels) else self._next_label
        images = to_uint8(self.generator(z.to(device), labels.to(device))).cpu()
        return images.expand(-1, self.channels, -1, -1) if self.channels != 1 else images


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

    def __post_init__(self) -> None:
        fid = self.layers[self.layer_for["fid"]]
        self.mu, self.sigma = feature_statistics(fid)
        self.class_stats = {}
        for c in torch.unique(self.labels).tolist():
            members = fid[self.labels == c]
            if members.size(0) >= 2:
                self.class_stats[int(c)] = feature_statistics(members)


@dataclass
class MetricSettings:
    """The knobs of the fidelity metrics (from ``cfg.eval``)."""

    kid_subsets: int = 100
    kid_subset_size: int = 1000
    prc_neighborhood: int = 3
    isc_splits: int = 10
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "MetricSettings":
        return cls(**{k: cfg[k] for k in ("kid_subsets", "kid_subset_size", "prc_neighborhood", "isc_splits", "seed") if k in cfg})


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


def confusion_matrix(y_true: Tensor | np.ndarray, y_pred: Tensor | np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts: row = requested (true) class, column = predicted class."""
    t = np.asarray(y_true.cpu().numpy() if isinstance(y_true, Tensor) else y_true, dtype=np.int64)
    p = np.asarray(y_pred.cpu().numpy() if isinstance(y_pred, Tensor) else y_pred, dtype=np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_report(matrix: np.ndarray) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support from a confusion matrix, with accuracy and macro/weighted means."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    total = support.sum()
    rows = [
        {"class": c, "precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]), "support": int(support[c])}
        for c in range(matrix.shape[0])
    ]
    weights = support / total if total > 0 else np.zeros_like(support)
    return {
        "per_class": rows,
        "accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
        "weighted": {"precision": float(precision @ weights), "recall": float(recall @ weights), "f1": float(f1 @ weights)},
        "support": int(total),
    }


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


def confusion_figure(matrix: np.ndarray, title: str = "") -> "matplotlib.figure.Figure":
    """The confusion matrix as a heat map, row-normalised, with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=np.float64), where=rows > 0)
    n = matrix.shape[0]
    fig = Figure(figsize=(6, 5.2), constrained_layout=True)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7, color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("requested class")
    ax.set_title(title or "classifier on generated images")
    fig.colorbar(image, ax=ax, label="share of requested class")
    return fig


def histogram_figure(gen_counts: np.ndarray, real_counts: np.ndarray, title: str = "") -> "matplotlib.figure.Figure":
    """Predicted class shares of the samples beside the real class shares."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    gen = np.asarray(gen_counts, dtype=np.float64)
    real = np.asarray(real_counts, dtype=np.float64)
    x = np.arange(len(gen))
    fig = Figure(figsize=(6, 3.2), constrained_layout=True)
    ax = fig.subplots()
    ax.bar(x - 0.2, gen / max(gen.sum(), 1), width=0.4, label="generated (predicted class)")
    ax.bar(x + 0.2, real / max(real.sum(), 1), width=0.4, label="real")
    ax.set_xticks(x)
    ax.set_xlabel("class")
    ax.set_ylabel("share")
    ax.set_title(title or "class histogram")
    ax.legend(fontsize=8)
    return fig
