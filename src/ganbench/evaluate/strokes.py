"""Stroke statistics of digit images, pure functions of batches in [-1, 1]: how much ink, how thick the strokes.

They put numbers on what a sample grid shows by eye (S2: "the uniform prior gave sparse, thin digits").
Ink is every pixel above mid-grey (> 0 in [-1, 1], uint8 >= 128). A stroke's width is its ink pixels per
skeleton pixel, with the skeleton's ends corrected (``stroke_widths``): a bar w pixels wide measures w. The
skeleton is Zhang and Suen's thinning (1984; the method behind ``skimage.morphology.skeletonize`` in 2-D),
written here with numpy lookup tables, so scikit-image is not a dependency.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

CHUNK = 4096  # images thinned at once: 4,096 28x28 images keep each neighbourhood array near 3 MB


def ink_mask(images: Tensor) -> Tensor:
    """Boolean (N, H, W) ink of (N, 1, H, W) or (N, H, W) images in [-1, 1] (or uint8, as to_uint8 makes them): above mid-grey."""
    if images.dim() == 4:
        images = images[:, 0]
    if images.dim() != 3:
        raise ValueError(f"stroke statistics need (N, 1, H, W) or (N, H, W) images, got shape {tuple(images.shape)}")
    return images >= 128 if images.dtype == torch.uint8 else images > 0  # 0.0 in [-1, 1] rounds to uint8 128: the first ink level


def ink_counts(images: Tensor) -> Tensor:
    """Ink pixels of each image, (N,) int64."""
    return ink_mask(images).flatten(1).sum(1)


def ink_per_digit(images: Tensor) -> float:
    """Mean number of ink pixels per image (0.0 for an empty batch)."""
    counts = ink_counts(images)
    return float(counts.double().mean()) if counts.numel() else 0.0


OFFSETS = ((0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0))  # P2..P9: N, NE, E, SE, S, SW, W, NW


def _deletable(code: int, first: bool) -> bool:
    """Whether Zhang and Suen delete an ink pixel whose neighbours P2..P9 are the bits of ``code``, in sub-iteration 1 or 2."""
    p = [(code >> i) & 1 for i in range(8)]
    count = sum(p)  # B(P): ink neighbours
    transitions = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))  # A(P): 0 -> 1 steps around P
    p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
    if first:  # the south-east boundary and the north-west corner
        side = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
    else:  # the north-west boundary and the south-east corner
        side = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return 2 <= count <= 6 and transitions == 1 and side


# The two sub-iterations as lookup tables over the 256 neighbourhoods (how scikit-image thins, too).
DELETE = tuple(np.array([_deletable(code, first) for code in range(256)]) for first in (True, False))
NEIGHBOURS = np.array([bin(code).count("1") for code in range(256)], dtype=np.int64)  # ink neighbours of each code


def neighbourhood_codes(mask: np.ndarray) -> np.ndarray:
    """Each pixel's 8 neighbours P2..P9 of a boolean (N, H, W) mask as the bits of a uint8 code (outside is background)."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1))).view(np.uint8)
    h, w = mask.shape[1:]
    code = np.zeros(mask.shape, dtype=np.uint8)
    for bit, (dy, dx) in enumerate(OFFSETS):
        code |= padded[:, dy : dy + h, dx : dx + w] << bit
    return code


def skeleton(mask: Tensor) -> Tensor:
    """Zhang-Suen skeleton of a boolean (N, H, W) mask: strokes thinned to one pixel, their ends and connections kept."""
    return torch.from_numpy(_thin(mask.numpy()))


def _thin(mask: np.ndarray) -> np.ndarray:
    # numpy, not torch: thinning is many small elementwise steps, which torch's thread pool slows down on a busy CPU.
    out = mask.astype(bool, copy=True)
    for start in range(0, out.shape[0], CHUNK):
        todo = np.arange(start, min(start + CHUNK, out.shape[0]))
        while todo.size:  # only the images still thinning are worked on
            part = out[todo]
            changed = np.zeros(todo.size, dtype=bool)
            for table in DELETE:
                delete = part & table[neighbourhood_codes(part)]
                changed |= delete.any(axis=(1, 2))
                part &= ~delete
            out[todo] = part
            todo = todo[changed]
    return out


def _ends(skel: np.ndarray) -> np.ndarray:
    """Stroke ends of each skeleton, (N,): 1 per pixel with one skeleton neighbour, 2 per isolated pixel (a dot)."""
    degree = NEIGHBOURS[neighbourhood_codes(skel)]
    return (np.clip(2 - degree, 0, None) * skel).sum(axis=(1, 2))


def stroke_widths(images: Tensor) -> Tensor:
    """Each image's stroke width in pixels, (N,) float64: ink pixels per skeleton pixel, ends corrected; 0 without ink.

    Thinning stops each skeleton end about half a stroke width short of the stroke's end, so the skeleton of a
    w x L bar has L - w pixels. With e ends the width solves ink = w * (length + e * w / 2), which gives a bar
    back exactly (w x L has ink w * L, length L - w, two ends) and a closed loop (no ends) ink / length.
    """
    mask = ink_mask(images).numpy()
    skel = _thin(mask)
    ink, length, ends = (a.astype(np.float64) for a in (mask.sum(axis=(1, 2)), skel.sum(axis=(1, 2)), _ends(skel)))
    # Thinning can remove a tiny blob (a 2x2 dot) entirely: it counts as a one-pixel dot, which has two ends.
    thinned_away = (length == 0) & (ink > 0)
    length, ends = np.where(thinned_away, 1.0, length), np.where(thinned_away, 2.0, ends)
    # The positive root of (e / 2) w^2 + length * w - ink = 0, written so e = 0 needs no special case.
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 for images without ink, replaced by 0 below
        width = 2 * ink / (length + np.sqrt(length**2 + 2 * ends * ink))
    return torch.from_numpy(np.where(ink > 0, width, 0.0))


def stroke_width(images: Tensor) -> float:
    """Mean stroke width (pixels) over the images that have ink; 0.0 when none has (nothing to divide by)."""
    widths = stroke_widths(images)
    inked = widths[widths > 0]
    return float(inked.mean()) if inked.numel() else 0.0


def stroke_statistics(images: Tensor, suffix: str = "") -> dict[str, float]:
    """``ink_per_digit`` and ``stroke_width`` of ``images`` (uint8 or [-1, 1]), the names ending in ``suffix``."""
    return {f"ink_per_digit{suffix}": ink_per_digit(images), f"stroke_width{suffix}": stroke_width(images)}
