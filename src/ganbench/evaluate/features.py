"""Feature spaces: torch-fidelity's extractor registry, the classifier as an extractor, streaming extraction, real-feature cache.

Feature extractors are torch-fidelity ``FeatureExtractorBase`` classes looked up by name:
``inception-v3-compat`` (torch-fidelity's own; its weights are looked up on disk, never downloaded) and
``ganbench-classifier`` (the auxiliary digit classifier, its weights file given as
``feature_extractor_weights_path``). Samples are streamed batch by batch through every space's extractor
in one pass; a real image set's features are computed once and cached on disk, keyed by everything they
depend on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_fidelity import FeatureExtractorBase, GenerativeModelBase
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, NOISE_SOURCE_REGISTRY, register_feature_extractor, register_noise_source
from torch_fidelity.utils import create_feature_extractor

from ganbench.data.preprocess import to_uint8
from ganbench.errors import first_line
from ganbench.evaluate.classifier import load_classifier
from ganbench.evaluate.errors import EvalError
from ganbench.evaluate.metrics import RealFeatures
from ganbench.evaluate.settings import InceptionSettings
from ganbench.files import atomic_save_torch
from ganbench.progress import progress_bar

log = logging.getLogger("ganbench.evaluate")

CLASSIFIER_EXTRACTOR = "ganbench-classifier"
INCEPTION_EXTRACTOR = "inception-v3-compat"
METRIC_LAYERS = ("fid", "kid", "prc", "isc")

Batches = Iterator[tuple[Tensor, Tensor]]  # (uint8 (B, 1, S, S) images on the CPU, int64 labels)


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
        device = next(self.generator.parameters()).device
        labels = (torch.arange(z.size(0)) + self._next_label) % max(self.classes, 1)
        self._next_label = int(labels[-1]) + 1 if len(labels) else self._next_label
        images = to_uint8(self.generator(z.to(device), labels.to(device))).cpu()
        return images.expand(-1, self.channels, -1, -1) if self.channels != 1 else images


# --------------------------------------------------------------------------- streaming extraction


def tensor_batches(images: Tensor, labels: Tensor, batch_size: int) -> Batches:
    """A fixed uint8 image set in order, batch by batch."""
    for start in range(0, images.size(0), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]


def subset_index(total: int, limit: int | None, seed: int) -> Tensor:
    """A seeded random subset of ``limit`` indices out of ``total`` (all, in order, when limit is None or >= total).

    Random, not the first N: Hoda's test file is sorted by class.
    """
    if limit is None or limit >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


@dataclass
class Space:
    """One feature space: a torch-fidelity extractor, the real features it is compared with, its sample cap."""

    name: str  # metric suffix: clf or inception
    extractor: Any
    extractor_name: str
    weights_sha256: str
    real: RealFeatures | None  # None only while the real features themselves are being extracted
    limit: int  # samples fed to this extractor per evaluation
    channels: int


@torch.no_grad()
def extract(
    spaces: Sequence[Space], batches: Batches, total: int, description: str, keep: list[Tensor] | None = None
) -> tuple[dict[str, dict[str, Tensor]], Tensor]:
    """Feed every batch once through every space's extractor; features per space and layer, and the labels.

    The images themselves are dropped batch by batch unless ``keep`` (a list) asks for them.
    """
    collected: dict[str, dict[str, list[Tensor]]] = {s.name: {} for s in spaces}
    labels: list[Tensor] = []
    seen = 0
    with progress_bar(description, total) as advance:
        for images, batch_labels in batches:
            labels.append(batch_labels)
            if keep is not None:
                keep.append(images)
            for space in spaces:
                take = min(images.size(0), space.limit - seen)
                if take <= 0:
                    continue
                device = next(iter(space.extractor.parameters()), torch.empty(0)).device
                x = images[:take].to(device)
                if space.channels == 3:
                    x = x.expand(-1, 3, -1, -1)  # grayscale tiled to RGB for Inception-like extractors
                out = space.extractor.convert_features_tuple_to_dict(space.extractor(x))
                for layer, value in out.items():
                    collected[space.name].setdefault(layer, []).append(value.detach().float().cpu())
            seen += images.size(0)
            advance(images.size(0))
    features = {name: {layer: torch.cat(parts) for layer, parts in layers.items()} for name, layers in collected.items()}
    return features, torch.cat(labels) if labels else torch.empty(0, dtype=torch.int64)


# --------------------------------------------------------------------------- real features, cached on disk


def load_features(path: Path, expected: int) -> dict[str, Tensor] | None:
    """Cached real features with ``expected`` rows per layer, or None (missing, damaged or stale: recompute)."""
    if not path.is_file():
        return None
    try:
        layers = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(layers, dict) and layers and all(isinstance(v, Tensor) and v.size(0) == expected for v in layers.values()):
            return layers
    except Exception as err:  # a damaged cache file is recomputed, whatever torch raised
        log.warning("cached real features %s are unreadable (%s); recomputing them", path, type(err).__name__)
        return None
    log.warning("cached real features %s do not match; recomputing them", path)
    return None


def real_features(
    space: Space, images: Tensor, labels: Tensor, batch_size: int, path: Path, prc_index: Tensor
) -> RealFeatures:
    """``space``'s features of a real uint8 image set: read from ``path``, or extracted now and cached there."""
    layers = load_features(path, images.size(0))
    if layers is None:
        probe = Space(space.name, space.extractor, space.extractor_name, space.weights_sha256, None, images.size(0), space.channels)
        extracted, _ = extract([probe], tensor_batches(images, labels, batch_size), images.size(0), f"real features ({space.name})")
        layers = extracted[space.name]
        try:
            atomic_save_torch(path, layers)
        except OSError as err:
            log.warning("could not cache real features at %s (%s)", path, err)
    return RealFeatures(layers, labels, metric_layers(space.extractor_name), prc_index)


# --------------------------------------------------------------------------- inception


def inception_weights(settings: InceptionSettings) -> tuple[str | None, str | None]:
    """(weights path or None, reason to skip or None) for the Inception space; never downloads.

    Raises EvalError when eval.inception=on and the weights are missing, or a given file is unusable.
    """
    if settings.mode == "off":
        return None, "eval.inception=off"
    name = settings.extractor or INCEPTION_EXTRACTOR
    if settings.weights:
        path = Path(settings.weights).expanduser()
        if not path.is_file():
            raise EvalError(f"eval.inception_weights={settings.weights}: no such file; give the path of the Inception weights or leave it null")
        _check_state_dict(path)
        return str(path), None
    if name != INCEPTION_EXTRACTOR:
        return None, None  # another registered extractor: it brings its own weights (or needs none)
    hub = Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[-1]
    if hub.is_file():
        _check_state_dict(hub)
        return str(hub), None
    reason = (
        f"Inception weights not found at {hub} and eval.inception_weights is not set (no download is attempted); "
        f"fetch {URL_INCEPTION_V3} there or pass eval.inception_weights=PATH"
    )
    if settings.mode == "on":
        raise EvalError(f"eval.inception=on but {reason}")
    return None, reason


def _check_state_dict(path: Path) -> None:
    """Refuse weights that are not a plain tensor state dict (torch-fidelity itself unpickles them fully)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EvalError(f"{path} is not a loadable weights file ({first_line(exc)}); replace it with torch-fidelity's Inception weights") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise EvalError(f"{path} is not a state dict of tensors; replace it with torch-fidelity's Inception weights")
