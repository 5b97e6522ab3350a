"""dataset.preprocess=hoda_reader (seed S3's HodaDatasetReader loader) and dataset.train_with_test, on the real files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module

from ganbench.data import DataError, DigitData, dataset_label, hoda_reader, load_dataset, read_hoda_cdb
from ganbench.data.hoda_reader import cv_resize_cubic, hoda_reader_batch
from ganbench.data.preprocess import mnist_style_batch, to_uint8
from ganbench.evaluate.classifier import classifier_key
from ganbench.evaluate.settings import ClassifierSettings
from ganbench.report.leaderboard import build
from ganbench.report.records import RunRecord
from ganbench.tracking import grid_tags
from ganbench.tracking.layout import HELDOUT_SEEN_TAG
from ganbench.validate import config_problems

TEST_IMAGES, REMAINING_IMAGES = 20_000, 22_352


def compose_cfg(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def reader_test() -> DigitData:
    """Hoda's Test 20000.cdb under hoda_reader (the session cache keeps it decoded)."""
    return load_dataset("hoda", "test", 28, preprocess="hoda_reader")


# ---------------------------------------------------------------- the reader's rule on hand-made crops


def test_a_large_digit_is_shrunk_keeping_its_aspect_and_placed_by_its_box() -> None:
    crop = np.full((40, 20), 255, dtype=np.uint8)  # scale min(28/40, 28/20) = 0.7 -> 28 x 14
    assert cv_resize_cubic(crop[None], 0.7).shape == (1, 28, 14)
    out = hoda_reader(crop)
    expected = np.zeros((28, 28), dtype=np.uint8)
    expected[0:28, 7:21] = 255  # offsets ((28-28)//2, (28-14)//2)
    np.testing.assert_array_equal(out, expected)


def test_a_small_digit_is_never_enlarged() -> None:
    rng = np.random.default_rng(0)
    crop = (rng.random((10, 6)) < 0.5).astype(np.uint8) * 255
    out = hoda_reader(crop)
    top, left = (28 - 10) // 2, (28 - 6) // 2
    np.testing.assert_array_equal(out[top : top + 10, left : left + 6], crop)
    assert out.sum() == crop.astype(np.int64).sum()  # nothing outside the pasted crop


def test_a_resized_stroke_is_binarised_at_half() -> None:
    crop = np.zeros((56, 8), dtype=np.uint8)  # scale 0.5: 28 x 4; grey edges of the stroke round to 0 or 255
    crop[:, 2:5] = 255
    out = hoda_reader(crop)
    assert set(np.unique(out).tolist()) == {0, 255}
    assert out[:, :12].sum() == 0 and out[:, 16:].sum() == 0  # the 4-wide resize sits at column (28-4)//2 = 12


def test_batch_matches_one_at_a_time() -> None:
    rng = np.random.default_rng(1)
    crops = [(rng.random(shape) < 0.4).astype(np.uint8) * 255 for shape in [(40, 20), (10, 6), (40, 20), (31, 33), (5, 29)]]
    batch = hoda_reader_batch(crops)
    for crop, image in zip(crops, batch, strict=True):
        np.testing.assert_array_equal(image, hoda_reader(crop))


# ---------------------------------------------------------------- on the real Hoda files


def test_hoda_reader_images_are_exactly_minus_one_and_one(reader_test: DigitData) -> None:
    assert reader_test.images.shape == (TEST_IMAGES, 1, 28, 28) and reader_test.images.dtype == torch.float32
    assert bool(((reader_test.images == -1) | (reader_test.images == 1)).all())
    assert reader_test.labels.bincount().tolist() == [2000] * 10
    assert reader_test.preprocess == "hoda_reader" and reader_test.params()["preprocess"] == "hoda_reader"


def test_zeros_stay_small_dots_under_hoda_reader(data_root: Path) -> None:
    crops, labels = read_hoda_cdb(data_root / "hoda" / "DigitDB" / "Test 20000.cdb")
    zeros, fives = ([crops[i] for i in np.flatnonzero(labels == digit)[:300]] for digit in (0, 5))

    def mean_ink(images: np.ndarray) -> float:
        return float((images >= 128).sum(axis=(1, 2)).mean())

    reader_zeros, mnist_zeros = hoda_reader_batch(zeros), mnist_style_batch(zeros)
    assert mean_ink(reader_zeros) < 0.6 * mean_ink(mnist_zeros)  # about 100 vs 220 pixels
    assert mean_ink(reader_zeros) < 0.6 * mean_ink(hoda_reader_batch(fives))  # a dot, not a five-sized blob
    assert len(np.unique(mnist_zeros)) > 2 and set(np.unique(reader_zeros).tolist()) == {0, 255}


def test_each_preprocessing_has_its_own_cache_entry(data_root: Path, cache_dir: Path) -> None:
    reader = load_dataset("hoda", "test", 28, root=data_root, preprocess="hoda_reader", limit=50)
    mnist = load_dataset("hoda", "test", 28, root=data_root, limit=50)
    assert len(list((cache_dir / "data").glob("hoda-*.pt"))) == 2
    # each entry holds its own preprocessing of the file's first 50 digits, and reads back as it was written
    crops, _ = read_hoda_cdb(data_root / "hoda" / "DigitDB" / "Test 20000.cdb")
    for loaded, batch in ((reader, hoda_reader_batch), (mnist, mnist_style_batch)):
        assert torch.equal(to_uint8(loaded.images), torch.from_numpy(batch(crops[:50], 28)).unsqueeze(1))
    again = load_dataset("hoda", "test", 28, root=data_root, preprocess="hoda_reader", limit=50)
    assert torch.equal(again.images, reader.images) and not torch.equal(reader.images, mnist.images)
    assert torch.equal(load_dataset("hoda", "test", 28, root=data_root, limit=50).images, mnist.images)


def test_classifier_key_and_dataset_tag_name_the_preprocessing(reader_test: DigitData) -> None:
    settings = ClassifierSettings()
    assert classifier_key(reader_test, settings) != classifier_key(replace(reader_test, preprocess="mnist"), settings)
    assert dataset_label({"name": "hoda", "preprocess": "hoda_reader"}) == "hoda+hoda_reader"
    assert dataset_label({"name": "hoda", "preprocess": "mnist"}) == dataset_label({"name": "hoda"}) == "hoda"
    assert grid_tags(compose_cfg("dataset.preprocess=hoda_reader"), "none")["dataset"] == "hoda+hoda_reader"
    assert grid_tags(compose_cfg(), "none")["dataset"] == "hoda"


# ---------------------------------------------------------------- train_with_test


def test_train_with_test_trains_on_both_splits(data_root: Path) -> None:
    both = load_dataset("hoda", "train", 28, root=data_root, preprocess="hoda_reader", with_test=True)
    assert len(both) == REMAINING_IMAGES + TEST_IMAGES and both.split == "train+test"
    assert torch.equal(both.images[REMAINING_IMAGES:], load_dataset("hoda", "test", 28, preprocess="hoda_reader").images)
    assert [Path(f["path"]).name for f in both.files] == ["RemainingSamples.cdb", "Test 20000.cdb"]
    assert "not held out" in both.note
    # MNIST without its training split already trains on the test split: it is not added twice.
    mnist = load_dataset("mnist", "train", 28, root=data_root, with_test=True)
    assert len(mnist) == 10_000 and "not held out" in mnist.note
    with pytest.raises(DataError, match="does not apply to split='test'"):
        load_dataset("hoda", "test", 28, root=data_root, with_test=True)


def test_train_with_test_is_tagged_and_warned_in_the_report() -> None:
    assert grid_tags(compose_cfg("dataset.train_with_test=true"), "none")[HELDOUT_SEEN_TAG] == "true"
    assert HELDOUT_SEEN_TAG not in grid_tags(compose_cfg(), "none")

    def run(seed: int, seen: bool) -> RunRecord:
        tags = {"model": "cgan_conv", "loss": "bce", "stabilize": "none", "dataset": "hoda", "noise": "normal", "seed": str(seed)}
        tags |= {HELDOUT_SEEN_TAG: "true"} if seen else {}
        return RunRecord(f"run{seed}{seen}", f"s3-{seed}", "FINISHED", seed, tags, {}, {"fid_clf": 1.0 + seed})

    board = build([run(0, False), run(1, False), run(0, True)], "fid_clf")
    assert len(board.rows) == 2  # trained-on-test runs never share a row with the others
    (warning,) = [w for w in board.warnings if "train_with_test" in w]
    assert "1 run(s) trained on the held-out split too" in warning and "s3-0" in warning


# ---------------------------------------------------------------- bad combinations


@pytest.mark.parametrize("dataset", ["mnist", "sign_digits"])
def test_hoda_reader_is_refused_for_other_datasets(dataset: str, run_cli, tmp_path: Path) -> None:
    problems = config_problems(compose_cfg(f"dataset={dataset}", "dataset.preprocess=hoda_reader"))
    assert f"dataset.preprocess=hoda_reader is for dataset=hoda only, not dataset={dataset}" in "; ".join(problems)
    with pytest.raises(DataError, match="is for dataset=hoda only"):
        load_dataset(dataset, "test", preprocess="hoda_reader")
    proc = run_cli("ganbench", f"dataset={dataset}", "dataset.preprocess=hoda_reader",
                   f"tracking.uri=sqlite:///{tmp_path}/m.db", f"hydra.run.dir={tmp_path}/out")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("ganbench: error: dataset.preprocess=hoda_reader is for dataset=hoda only")
    assert not (tmp_path / "m.db").exists()


def test_unknown_preprocessing_and_non_boolean_train_with_test_are_refused() -> None:
    problems = config_problems(compose_cfg("dataset.preprocess=pil", "dataset.train_with_test=maybe"))
    assert "dataset.preprocess='pil' is invalid: choose one of mnist, hoda_reader" in problems
    assert "dataset.train_with_test='maybe' is invalid: choose true or false" in problems
