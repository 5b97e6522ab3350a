"""dataset.preprocess=hoda_reader: Hoda digits as HodaDatasetReader's ``read_hoda_dataset`` makes them (seed S3).

github.com/amir-saniyan/HodaDatasetReader: a crop taller or wider than the target is shrunk with OpenCV's
INTER_CUBIC, aspect kept; a smaller one is never enlarged; the whole (resized) crop is pasted at offsets
((S-h)//2, (S-w)//2) of a zero canvas; pixels / 255 are binarised at 0.5. A Persian zero (a small dot)
stays a small dot, where MNIST-style normalisation blows it up to the size of a five.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.data.core import DataError
from ganbench.data.preprocess import check_image_size

INK = 255
# image / 255 >= 0.5 on uint8 pixels is pixel >= 127.5, i.e. pixel >= 128.
THRESHOLD = 128


def cv_scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(h, w) of ``cv2.resize(dsize=(0, 0), fx=scale, fy=scale)``: each side times scale, rounded half to even."""
    # OpenCV's saturate_cast<int>(double) is cvRound (round half to even), as Python's round on a float.
    return max(1, round(height * scale)), max(1, round(width * scale))


def cv_resize_cubic(crops: np.ndarray, scale: float) -> np.ndarray:
    """``cv2.resize(src, (0, 0), fx=scale, fy=scale, interpolation=INTER_CUBIC)`` of (N, h, w) uint8 crops, as uint8.

    Without an OpenCV dependency (a large binary wheel for one resize): torch's bicubic has OpenCV's kernel
    (a = -0.75), half-pixel centres and clamped borders. OpenCV maps pixels with the given fx, not with
    out/in, so the input is padded at its far edges (by repeating them, which clamping already does) until
    torch's floor(in * scale) output covers OpenCV's rounded size, and the extra is cut off. OpenCV's
    fixed-point uint8 arithmetic can still differ by a grey level (at exact halves, 127.5 included).
    """
    crops = np.asarray(crops)
    if crops.ndim != 3:
        raise DataError(f"cv_resize_cubic needs (N, h, w) crops, got shape {crops.shape}")
    if not scale > 0:
        raise DataError(f"cv_resize_cubic needs a scale > 0, got {scale!r}")
    out_h, out_w = cv_scaled_size(crops.shape[1], crops.shape[2], scale)
    pad = math.ceil(1 / scale) + 1  # pad * scale >= 1: the padded floor size reaches the rounded one
    # Padding and rounding in numpy: on tiny tensors torch's per-op overhead costs more than the resize.
    padded = np.pad(crops, ((0, 0), (0, pad), (0, pad)), mode="edge").astype(np.float32)
    resized = F.interpolate(
        torch.from_numpy(padded)[:, None], scale_factor=scale, mode="bicubic", align_corners=False, antialias=False,
        recompute_scale_factor=False,
    )[:, 0, :out_h, :out_w].numpy()
    # saturate_cast<uchar>: round half to even (np.rint), clamp to 0..255.
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def reader_scale(height: int, width: int, image_size: int) -> float | None:
    """HodaDatasetReader's shrink factor min(S/h, S/w) for a crop larger than S in a side, else None (kept as is)."""
    if height > image_size or width > image_size:
        return min(image_size / height, image_size / width)
    return None


def place(digit: np.ndarray, image_size: int) -> np.ndarray:
    """The whole digit crop pasted at ((S-h)//2, (S-w)//2) of an S x S zero canvas, binarised to 0 / 255."""
    height, width = digit.shape
    canvas = np.zeros((image_size, image_size), dtype=np.uint8)
    top, left = (image_size - height) // 2, (image_size - width) // 2
    canvas[top : top + height, left : left + width] = np.where(digit >= THRESHOLD, INK, 0)
    return canvas


def hoda_reader_batch(crops: Sequence[np.ndarray], image_size: int = 28) -> np.ndarray:
    """HodaDatasetReader's preprocessing of raw .cdb crops, stacked into (N, S, S) uint8 of exactly 0 and 255."""
    image_size = check_image_size(image_size)
    out = np.zeros((len(crops), image_size, image_size), dtype=np.uint8)
    # Crops of one shape share a scale: one interpolate call for each shape, not one per crop.
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, crop in enumerate(crops):
        if np.ndim(crop) != 2:
            raise DataError(f"hoda_reader needs 2-D crops, got shape {np.shape(crop)} at index {i}")
        by_shape.setdefault(tuple(np.shape(crop)), []).append(i)
    for (height, width), index in by_shape.items():
        stack = np.stack([np.asarray(crops[i], dtype=np.uint8) for i in index])
        scale = reader_scale(height, width, image_size)
        if scale is not None:
            stack = cv_resize_cubic(stack, scale)
        for i, digit in zip(index, stack, strict=True):
            out[i] = place(digit, image_size)
    return out


def hoda_reader(crop: np.ndarray, image_size: int = 28) -> np.ndarray:
    """One raw .cdb crop as HodaDatasetReader makes it: (S, S) uint8 of 0 and 255."""
    return hoda_reader_batch([crop], image_size)[0]
