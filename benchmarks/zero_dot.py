"""The Persian zero (a small dot) under each Hoda preprocessing: how often the auxiliary classifier mixes 0 and 5.

MNIST-style normalisation blows the dot up to a blob about the size of a five; dataset.preprocess=hoda_reader
(seed S3's HodaDatasetReader loader) keeps it a dot. For each preprocessing this trains (or finds in the cache)
the auxiliary classifier a run would use and reports, on 'Test 20000.cdb': the share of zeros classified as 5,
of fives classified as 0, and the overall accuracy. It also writes benchmarks/zero_dot.png: per preprocessing,
a row of the first 10 test zeros, then a row of the first 10 test fives.

Run: .venv/bin/python benchmarks/zero_dot.py [--quick] [--threads 2] [--png PATH]
(--quick: a small classifier on 2,000 images, 1 epoch, to check the script runs; its figures mean little.)
Figures come last as `name: value` lines.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from torchvision.utils import make_grid, save_image

from ganbench.errors import run_script
from ganbench.evaluate import EvalSettings
from ganbench.evaluate.classifier import get_classifier, load_splits
from ganbench.evaluate.classifier_net import predict_logits

PREPROCESSINGS = ("mnist", "hoda_reader")
QUICK = ("eval.classifier.epochs=1", "eval.classifier.min_steps=0", "eval.classifier.train_limit=2000", "eval.classifier.width=16", "eval.classifier.feature_dim=64")
SHOWN = 10  # zeros and fives per row of the grid


def settings_for(preprocess: str, quick: bool) -> EvalSettings:
    """The evaluation settings of a Hoda run with this preprocessing (the classifier a run would use)."""
    overrides = ["dataset=hoda", f"dataset.preprocess={preprocess}", *(QUICK if quick else ())]
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return EvalSettings.from_config(compose("config", overrides=overrides))


def confusion(predicted: torch.Tensor, labels: torch.Tensor, true: int, as_digit: int) -> float:
    """Share of the images labelled ``true`` that were predicted as ``as_digit``."""
    chosen = labels == true
    return float((predicted[chosen] == as_digit).float().mean())


def grid_rows(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The first SHOWN zeros, then the first SHOWN fives, as (2 * SHOWN, 1, S, S) images in [0, 1]."""
    picked = [images[labels == digit][:SHOWN] for digit in (0, 5)]
    return torch.cat(picked).add(1).div(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small classifier, only to check the script runs")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--png", type=Path, default=Path(__file__).with_name("zero_dot.png"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)

    figures: dict[str, str] = {}
    rows = []
    for preprocess in PREPROCESSINGS:
        settings = settings_for(preprocess, args.quick)
        train, test = load_splits(settings.dataset, settings.data_root, settings.heldout_split)
        started = time.perf_counter()
        loaded = get_classifier(train, test, settings.classifier)
        seconds = time.perf_counter() - started
        predicted = predict_logits(loaded.model, test.images).argmax(dim=1)
        figures[f"{preprocess}_zero_as_five"] = f"{confusion(predicted, test.labels, 0, 5):.4f}"
        figures[f"{preprocess}_five_as_zero"] = f"{confusion(predicted, test.labels, 5, 0):.4f}"
        figures[f"{preprocess}_accuracy"] = f"{float((predicted == test.labels).float().mean()):.4f}"
        figures[f"{preprocess}_zero_ink_pixels"] = f"{float((test.images[test.labels == 0] > 0).sum(dim=(1, 2, 3)).float().mean()):.1f}"
        figures[f"{preprocess}_classifier_seconds"] = f"{seconds:.1f}"  # training it, or reading it from the cache
        figures[f"{preprocess}_classifier"] = str(loaded.path)
        rows.append(grid_rows(test.images, test.labels))

    args.png.parent.mkdir(parents=True, exist_ok=True)
    save_image(make_grid(torch.cat(rows), nrow=SHOWN, padding=2, pad_value=0.5), args.png)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads; quick: {args.quick}")
    print(f"grid: {args.png} (rows: mnist zeros, mnist fives, hoda_reader zeros, hoda_reader fives)")
    for name, value in figures.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    run_script(main, "zero_dot.py")
