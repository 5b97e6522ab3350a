"""Stroke statistics: ink counts and stroke widths of hand-drawn images, against what they were drawn with."""

from __future__ import annotations

import pytest
import torch

from ganbench.evaluate.strokes import ink_counts, ink_per_digit, skeleton, stroke_statistics, stroke_width, stroke_widths


def canvas(n: int = 1, size: int = 28) -> torch.Tensor:
    """Blank (n, 1, size, size) images in [-1, 1]."""
    return -torch.ones(n, 1, size, size)


def bar(width: int, length: int = 20, vertical: bool = False) -> torch.Tensor:
    """One image with a white bar ``width`` pixels wide and ``length`` long."""
    image = canvas()
    rows, cols = slice(4, 4 + width), slice(4, 4 + length)
    image[0, 0, cols if vertical else rows, rows if vertical else cols] = 1.0
    return image


@pytest.mark.parametrize("vertical", [False, True])
def test_a_three_pixel_bar_is_three_pixels_wide_and_has_its_ink(vertical):
    image = bar(3, 20, vertical)
    assert ink_per_digit(image) == 60.0
    assert stroke_width(image) == pytest.approx(3.0, abs=0.05)


def test_a_one_pixel_line_is_one_pixel_wide_and_its_own_skeleton():
    image = bar(1, 20)
    assert ink_per_digit(image) == 20.0
    assert torch.equal(skeleton(image[:, 0] > 0), image[:, 0] > 0)  # thinning keeps a line's ends
    assert stroke_width(image) == pytest.approx(1.0, abs=0.06)
    diagonal = canvas()
    for i in range(4, 24):
        diagonal[0, 0, i, i] = 1.0
    assert stroke_width(diagonal) == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize("width", [2, 4, 5])
def test_bars_of_other_widths_measure_their_width(width):
    assert stroke_width(bar(width, 20)) == pytest.approx(width, abs=0.05)


def test_a_closed_ring_has_no_ends_and_measures_ink_per_skeleton_pixel():
    image = canvas()
    image[0, 0, 6:22, 6:22] = 1.0
    image[0, 0, 8:20, 8:20] = -1.0  # a 16 x 16 square ring, 2 pixels thick
    assert stroke_width(image) == pytest.approx(2.0, rel=0.1)


def test_an_empty_image_counts_zero_and_does_not_divide_by_zero():
    empty = canvas(3)
    assert ink_per_digit(empty) == 0.0 and stroke_width(empty) == 0.0
    assert ink_counts(empty).tolist() == [0, 0, 0] and stroke_widths(empty).tolist() == [0.0, 0.0, 0.0]
    mixed = torch.cat([bar(3, 20), canvas()])
    assert ink_per_digit(mixed) == 30.0  # the blank image counts 0 ink ...
    assert stroke_width(mixed) == pytest.approx(3.0, abs=0.05)  # ... and has no stroke to average in
    assert ink_per_digit(canvas(0)) == 0.0 and stroke_width(canvas(0)) == 0.0


def test_ink_is_above_mid_grey_and_uint8_images_read_the_same():
    image = canvas()
    image[0, 0, 0, :3] = torch.tensor([0.0, 0.01, -0.01])
    assert ink_per_digit(image) == 1.0  # only 0.01: mid-grey itself is not ink
    drawn = torch.cat([bar(3, 20), bar(1, 20, vertical=True)])
    as_uint8 = drawn.add(1).mul(127.5).round().to(torch.uint8)
    assert stroke_statistics(as_uint8, "_real") == {"ink_per_digit_real": 40.0, "stroke_width_real": pytest.approx(2.0, abs=0.05)}  # bars 3 and 1 px wide


def test_a_tiny_dot_thinned_away_still_has_a_width():
    image = canvas()
    image[0, 0, 10:12, 10:12] = 1.0  # Zhang-Suen deletes a 2x2 block entirely
    assert 1.0 <= stroke_width(image) <= 2.0
