"""ganbench.data.lanczos against PIL itself: the batched resize must give Image.resize(LANCZOS)'s pixels exactly.

The reference is Pillow >= 13 (pyproject pins it): 13 changed the order of the two passes for crops whose height
shrinks much more than their width, which moves pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganbench.data import read_hoda_cdb
from ganbench.data.lanczos import fixed_point_weights, resize_lanczos
from ganbench.data.preprocess import digit_box, fitted_digits, fitted_size, ink_crop

HODA_FILES = ("Test 20000.cdb", "RemainingSamples.cdb")


def pil_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


@pytest.mark.parametrize("name", HODA_FILES)
def test_every_real_hoda_crop_resizes_to_pils_pixels(data_root: Path, name: str) -> None:
    # The cached datasets were built with PIL: not one pixel of one digit may move, at any digit box in use.
    images, _ = read_hoda_cdb(data_root / "hoda" / "DigitDB" / name)
    for box in sorted({digit_box(28), digit_box(9), digit_box(64)}):  # 20, 6 and 46 pixels
        digits, sizes = fitted_digits(images, box)
        for i, image in enumerate(images):
            crop = ink_crop(image)
            h, w = sizes[i]
            if crop is None:
                assert (h, w) == (0, 0) and not digits[i].any()
                continue
            expected = pil_resize(crop, *fitted_size(*crop.shape, box))
            assert (h, w) == expected.shape
            assert np.array_equal(digits[i, :h, :w], expected), (name, box, i)
            assert not digits[i, h:].any() and not digits[i, :, w:].any()  # zero padding beyond the digit


def test_random_images_of_many_shapes_match_pil() -> None:
    # Up- and down-scaling, one axis unchanged (Pillow then skips that pass), 1-pixel sides, extreme ratios, both
    # pass orders (vertical first when the height loses more than twice the width's pixels; 40->10 by 30->15 is
    # exactly twice, so horizontal first, and 30->16 tips it);
    # full-range noise drives the clipping at 0 and 255 that smooth digits rarely reach.
    rng = np.random.default_rng(0)
    shapes = [(1, 1, 1, 1), (1, 9, 1, 3), (9, 1, 2, 1), (5, 5, 5, 11), (7, 13, 7, 13), (13, 7, 20, 3),
              (50, 2, 20, 1), (2, 50, 1, 20), (31, 17, 3, 60), (64, 64, 20, 20), (20, 20, 64, 64), (3, 40, 30, 4),
              (34, 12, 6, 2), (30, 12, 6, 2), (35, 42, 18, 33), (39, 6, 16, 1), (40, 30, 10, 15), (40, 30, 10, 16)]
    for in_h, in_w, out_h, out_w in shapes:
        images = rng.integers(0, 256, size=(4, in_h, in_w), dtype=np.uint8)
        images[0] = 0
        images[1] = 255
        got = resize_lanczos(images, out_h, out_w)
        expected = np.stack([pil_resize(image, out_h, out_w) for image in images])
        assert got.dtype == np.uint8 and np.array_equal(got, expected), (in_h, in_w, out_h, out_w)


def test_the_weights_are_pillows_fixed_point_rows() -> None:
    one = 1 << 22
    for in_size, out_size in [(40, 20), (20, 40), (7, 3), (3, 7), (1, 5)]:
        weights = fixed_point_weights(in_size, out_size)
        assert weights.shape == (out_size, in_size)
        assert np.array_equal(weights, np.round(weights))  # integers
        # Each row sums to 1 in fixed point, up to the rounding of its taps (half a unit each).
        assert np.all(np.abs(weights.sum(axis=1) - one) <= (2 * np.ceil(3 * max(in_size / out_size, 1)) + 1))


def test_fitted_size_keeps_the_aspect_and_the_longer_side() -> None:
    assert fitted_size(40, 20, 20) == (20, 10)
    assert fitted_size(1, 50, 20) == (1, 20)  # never below one pixel
    assert fitted_size(3, 3, 6) == (6, 6)
    assert ink_crop(np.zeros((4, 4), np.uint8)) is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        resize_lanczos(np.zeros((2, 3, 3), np.float32), 2, 2)
    with pytest.raises(ValueError, match="at least 1x1"):
        resize_lanczos(np.zeros((2, 3, 3), np.uint8), 0, 2)
