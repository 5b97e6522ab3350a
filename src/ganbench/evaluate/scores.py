"""What one evaluation measured (``Scores``), and its JSON form: logged as ``metrics.json``, cached for reference rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch

from ganbench.evaluate.neighbours import NearestPairs

PAIR_IMAGES = "nearest_pair_images"  # Scores.to_json(pair_images=True): the pair grid's images


@dataclass
class Scores:
    """What one evaluation measured: metrics and the data behind its artifacts."""

    metrics: dict[str, float]
    report: dict[str, Any] | None = None  # per-class precision/recall/F1 (conditional)
    confusion: list[list[int]] | None = None
    intra_fid: dict[int, float] = field(default_factory=dict)
    histogram: list[int] | None = None  # predicted class counts (unconditional)
    real_histogram: list[int] | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for the benchmark and the curious
    fid_by_n: dict[int, float] = field(default_factory=dict)  # eval.fid_inf: FID at each sample count of the 1/N fit
    pairs: NearestPairs | None = None  # the samples closest to a training image (the pair grid); images in the JSON on request
    measured: dict[str, str] = field(default_factory=dict)  # measured.* tags only the scoring knows (resized_from)

    def to_json(self, pair_images: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; ``pair_images`` adds the pair grid's images (the cached reference scores need them)."""
        out = asdict(replace(self, pairs=None))
        out.pop("pairs")
        out["intra_fid"] = {str(k): v for k, v in self.intra_fid.items()}
        out["fid_by_n"] = {str(k): v for k, v in self.fid_by_n.items()}
        if self.pairs is not None:
            out["nearest_pair_distances"] = self.pairs.distances
            if pair_images:  # uint8 pixel lists: 16 pairs of 28x28 images are ~60 KB of JSON
                out[PAIR_IMAGES] = {"samples": self.pairs.samples.tolist(), "train": self.pairs.train.tolist()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Scores":
        """Scores from ``to_json``'s dict; the pair grid only when it was written with ``pair_images``."""
        names = {f.name for f in fields(cls)} - {"pairs"}
        kept = {k: v for k, v in data.items() if k in names}
        kept["intra_fid"] = {int(k): v for k, v in data.get("intra_fid", {}).items()}
        kept["fid_by_n"] = {int(k): v for k, v in data.get("fid_by_n", {}).items()}
        scores = cls(**kept)
        if PAIR_IMAGES in data:
            images = {k: torch.tensor(v, dtype=torch.uint8) for k, v in data[PAIR_IMAGES].items()}
            scores.pairs = NearestPairs(images["samples"], images["train"], [float(d) for d in data["nearest_pair_distances"]])
        return scores
