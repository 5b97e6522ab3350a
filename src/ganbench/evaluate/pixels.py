"""Metrics of the pixels themselves, not of features: stroke statistics (always) and the Parzen-window log-likelihood (``eval.parzen``).

What they compare with is fixed per evaluator and prepared once: the stroke statistics of the FID's reference
images, and Parzen's validation images (a seeded subset of the training split, where sigma is chosen) and test
images (the held-out images CAS tests on). The two never share an image: ``load_splits`` keeps train and
held-out apart, carving MNIST's one split in two when it has no training files. The generator may still have
trained on the test images: MNIST without training files trains on its whole test split (``measured.split_note``
says the split was carved), and ``dataset.train_with_test`` adds the test split to training (the run's
``data.note`` says so); its parzen_ll is then measured on images it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ganbench.data import DigitData
from ganbench.data.preprocess import to_uint8
from ganbench.evaluate.features import subset_index
from ganbench.evaluate.parzen import parzen_score
from ganbench.evaluate.settings import EvalSettings
from ganbench.evaluate.strokes import stroke_statistics

PARZEN_VALIDATION_SEED, STROKE_REFERENCE_SEED = 8, 9  # offsets from eval.seed, apart from the evaluator's others (1-7)


@dataclass
class PixelMetrics:
    """The real images pixel metrics compare with, and how many samples they read."""

    stroke_limit: int | None
    real_strokes: dict[str, float]  # ink_per_digit_real, stroke_width_real
    measured: dict[str, str]  # their measured.* tags
    parzen_validation: Tensor | None = None  # uint8 (N, 1, S, S); None: eval.parzen is off
    parzen_test: Tensor | None = None
    parzen_sigmas: tuple[float, ...] = ()
    device: torch.device = torch.device("cpu")

    def score(self, images: Tensor, parzen: bool) -> dict[str, float]:
        """Stroke statistics of uint8 ``images`` beside the real ones, and (``parzen`` and eval.parzen) the Parzen metrics."""
        limit = images.size(0) if self.stroke_limit is None else self.stroke_limit
        out = {**stroke_statistics(images[:limit]), **self.real_strokes}
        if parzen and self.parzen_validation is not None and self.parzen_test is not None:
            samples, validation, test = (unit_pixels(x, self.device) for x in (images, self.parzen_validation, self.parzen_test))
            out.update(parzen_score(samples, validation, test, self.parzen_sigmas))
        return out


def unit_pixels(images: Tensor, device: torch.device) -> Tensor:
    """uint8 images as float64 pixels in [0, 1] on ``device``: the paper's MNIST scale, (x + 1) / 2 of [-1, 1]."""
    return images.to(device).to(torch.float64).div_(255.0)


def pixel_metrics(settings: EvalSettings, train: DigitData, reference: Tensor, test: Tensor, heldout_split: str, device: torch.device) -> PixelMetrics:
    """Pixel metrics against the FID's uint8 ``reference`` images and, for Parzen, ``train`` (validation) and uint8 held-out ``test``."""
    seed, limit = settings.seed, settings.stroke_limit
    stroke_real = reference[subset_index(reference.size(0), limit, seed + STROKE_REFERENCE_SEED)]
    samples = settings.num_samples if limit is None else min(limit, settings.num_samples)
    measured = {
        "stroke_samples": str(samples),
        "stroke_reference_images": str(stroke_real.size(0)),
        "stroke_ink": "pixels > 0 in [-1, 1] (uint8 >= 128)",
        "parzen": "off",
    }
    metrics = PixelMetrics(limit, stroke_statistics(stroke_real, "_real"), measured, device=device)
    if settings.parzen:
        index = subset_index(len(train), settings.parzen_validation, seed + PARZEN_VALIDATION_SEED)
        metrics.parzen_validation, metrics.parzen_test, metrics.parzen_sigmas = to_uint8(train.images[index]), test, settings.parzen_sigmas
        measured.update(
            {
                "parzen": "on",
                "parzen_num_samples": str(settings.num_samples),
                "parzen_validation_split": train.split,
                "parzen_validation_images": str(index.numel()),
                "parzen_test_split": heldout_split,
                "parzen_test_images": str(test.size(0)),
                "parzen_sigmas": ",".join(f"{s:.4g}" for s in settings.parzen_sigmas),
                "parzen_pixels": f"{train.images[0].numel()} per image, in [0, 1]",
            }
        )
    return metrics
