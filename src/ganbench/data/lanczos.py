"""PIL's LANCZOS resize of 8-bit greyscale images, for a stack of images of one shape at once.

Every cached Hoda dataset, the classifiers trained on it and every published score depend on the exact pixels
of ``PIL.Image.resize(..., LANCZOS)``, so this is Pillow's own algorithm (``libImaging/Resample.c``, the 8-bit
path), not "a Lanczos filter": weights computed in double, normalised to sum 1, quantised to 22-bit fixed point
with round-half-away-from-zero; two passes, each rounded and clipped to 8 bits, the vertical one first when the
height shrinks by more than twice the width's loss (Pillow 13's order; Pillow 10-12 always went horizontal first,
so the pixels of some digits depend on the Pillow release: here they no longer do).
Written by hand because PIL resizes one image per call: the digits' 1,239 crop shapes cost 20,000 calls and the
conversions around them (~0.4 s), where one matrix product per shape costs ~0.05 s. ``tests/data/test_lanczos.py``
checks it against PIL pixel for pixel on every real Hoda crop.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

PRECISION_BITS = 32 - 8 - 2  # Resample.c: 8-bit samples, 2 bits of headroom in an int32 accumulator
SUPPORT = 3.0  # LANCZOS's half-width, in input pixels at scale 1


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x  # math.sin is the C library's sin, the one Pillow calls


def _lanczos(x: float) -> float:
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


@lru_cache(maxsize=None)
def fixed_point_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float64 matrix of Pillow's integer (22-bit fixed-point) LANCZOS weights for one axis.

    Follows ``precompute_coeffs`` and ``normalize_coeffs_8bpc`` operation for operation, so each weight is
    the very integer Pillow uses. Stored as float64 (exact: the integers are below 2**23) for BLAS products.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = SUPPORT * filterscale
    ss = 1.0 / filterscale
    one = float(1 << PRECISION_BITS)
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)  # C's (int) truncates; negatives are clamped to 0 either way
        xmax = min(int(center + support + 0.5), in_size) - xmin
        k = [_lanczos((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for w in k:  # a plain loop, as C adds: sum() compensates its rounding (Python >= 3.12) and would differ
            ww += w
        for x, w in enumerate(k):
            if ww != 0.0:
                w /= ww
            weights[xx, xmin + x] = int(-0.5 + w * one) if w < 0 else int(0.5 + w * one)
    return weights


def _pass(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One separable pass along the last axis: (..., in) -> (..., out), rounded and clipped to 8 bits like clip8.

    The products and sums are of integers below 2**31 (Pillow's int32 accumulator never overflows for 8-bit
    input), so float64 holds them exactly in any summation order.
    """
    acc = values @ weights.T + float(1 << (PRECISION_BITS - 1))
    return np.clip(np.floor(acc / float(1 << PRECISION_BITS)), 0, 255)


def resize_lanczos(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, H, W) uint8 -> (N, height, width) uint8, each image exactly as ``Image.resize((width, height), LANCZOS)``."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"resize_lanczos needs (N, H, W) uint8 images, got {images.dtype} {images.shape}")
    if height < 1 or width < 1:
        raise ValueError(f"resize_lanczos needs an output size of at least 1x1, got {height}x{width}")
    in_h, in_w = images.shape[1:]
    out = images.astype(np.float64)
    # ImagingResampleInner's order; a pass whose size does not change is skipped (no 8-bit rounding for it).
    vertical_first = in_h - height > 0 and in_h - height > 2 * (in_w - width)
    for axis in ("vertical", "horizontal") if vertical_first else ("horizontal", "vertical"):
        if axis == "horizontal" and width != in_w:
            out = _pass(out, fixed_point_weights(in_w, width))
        elif axis == "vertical" and height != in_h:
            out = _pass(out.swapaxes(1, 2), fixed_point_weights(in_h, height)).swapaxes(1, 2)
    return out.astype(np.uint8)
