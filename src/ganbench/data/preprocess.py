"""Image preprocessing shared by the datasets: MNIST-style digit normalisation, resizing, scaling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.data.core import DataError
from ganbench.data.lanczos import resize_lanczos

MIN_IMAGE_SIZE = 8


def check_image_size(image_size: int) -> int:
    """image_size as an int, or DataError when it is not an integer >= 8."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < MIN_IMAGE_SIZE:
        raise DataError(f"image_size must be an integer >= {MIN_IMAGE_SIZE}, got {image_size!r}")
    return int(image_size)


def digit_box(image_size: int) -> int:
    """Side of the box the digit's longer side is fitted into: 20 for 28 (MNIST), 20 for 32, else 20/28 of it.

    32 keeps MNIST's 20-pixel box with a 6-pixel margin, so every dataset at 32x32 looks like
    MNIST zero-padded by 2 pixels (how the seed reports fed 32x32 models).
    """
    if image_size == 32:
        return 20
    return max(1, int(round(20 * image_size / 28)))


def ink_crop(img: np.ndarray) -> np.ndarray | None:
    """The ink's bounding box of a 2-D image as a contiguous uint8 array; None without ink (no nonzero pixel)."""
    img = np.asarray(img)
    if img.ndim != 2:
        raise DataError(f"mnist_style needs a 2-D image, got shape {img.shape}")
    rows = np.flatnonzero(img.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(img.any(axis=0))
    return np.ascontiguousarray(img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], dtype=np.uint8)


def fitted_size(height: int, width: int, box: int) -> tuple[int, int]:
    """(h, w) of a height x width crop scaled, aspect kept, so that its longer side is ``box``."""
    scale = box / max(height, width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def fitted_digit(img: np.ndarray, box: int) -> np.ndarray | None:
    """The ink's bounding box of a 2-D image, resized (PIL's LANCZOS, aspect kept) so its longer side is ``box``; None without ink."""
    crop = ink_crop(img)
    if crop is None:
        return None
    return resize_lanczos(crop[None], *fitted_size(*crop.shape, box))[0]


def fitted_digits(images: Sequence[np.ndarray], box: int) -> tuple[np.ndarray, np.ndarray]:
    """fitted_digit over a list of images: the digits zero-padded into (N, box, box) uint8, and their (h, w).

    An image without ink has size (0, 0). Crops of one shape are resized together, in one ``resize_lanczos`` call.
    """
    digits = np.zeros((len(images), box, box), dtype=np.uint8)
    sizes = np.zeros((len(images), 2), dtype=np.int64)
    crops = [ink_crop(img) for img in images]
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, crop in enumerate(crops):
        if crop is not None:
            by_shape.setdefault(crop.shape, []).append(i)
    for shape, index in by_shape.items():
        new_h, new_w = fitted_size(*shape, box)
        digits[index, :new_h, :new_w] = resize_lanczos(np.stack([crops[i] for i in index]), new_h, new_w)
        sizes[index] = (new_h, new_w)
    return digits, sizes


def mnist_style(img: np.ndarray, image_size: int = 28) -> np.ndarray:
    """Crop to the ink, fit into the digit box (LANCZOS, aspect kept), centre by mass in an image_size canvas.

    Ink is any nonzero pixel (255 on 0, like MNIST); an image without ink gives an all-zero canvas.
    The one-image reference of ``mnist_style_batch``, which gives the same pixels faster.
    """
    image_size = check_image_size(image_size)
    canvas = np.zeros((image_size, image_size), dtype=np.uint8)
    digit = fitted_digit(img, digit_box(image_size))
    if digit is None:
        return canvas
    new_h, new_w = digit.shape

    mass = digit.astype(np.float64)
    total = mass.sum()
    if total > 0:
        com_y = float((mass.sum(axis=1) * np.arange(new_h)).sum() / total)
        com_x = float((mass.sum(axis=0) * np.arange(new_w)).sum() / total)
    else:  # resampling can wipe out a faint speck; fall back to the box centre
        com_y, com_x = (new_h - 1) / 2, (new_w - 1) / 2
    centre = (image_size - 1) / 2
    # Integer shift keeps strokes sharp; clipping keeps the whole digit inside the canvas.
    top = min(max(int(np.floor(centre - com_y + 0.5)), 0), image_size - new_h)
    left = min(max(int(np.floor(centre - com_x + 0.5)), 0), image_size - new_w)
    canvas[top : top + new_h, left : left + new_w] = digit
    return canvas


def mnist_style_batch(images: Sequence[np.ndarray], image_size: int = 28) -> np.ndarray:
    """mnist_style over a list of raw crops, stacked into (N, S, S) uint8: the same pixels, image for image.

    The digits are fitted shape by shape (``fitted_digits``) and their centres of mass taken for the whole batch,
    on the digits padded with zeros into one (N, box, box) array. The sums are of integer-valued float64s, exact
    in any order, so every centre equals mnist_style's to the last bit.
    """
    image_size = check_image_size(image_size)
    digits, sizes = fitted_digits(images, digit_box(image_size))
    tops, lefts = mass_centred_offsets(digits, sizes, image_size)
    out = np.zeros((len(images), image_size, image_size), dtype=np.uint8)
    for i, ((h, w), top, left) in enumerate(zip(sizes.tolist(), tops.tolist(), lefts.tolist())):
        out[i, top : top + h, left : left + w] = digits[i, :h, :w]
    return out


def mass_centred_offsets(digits: np.ndarray, sizes: np.ndarray, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(top, left) that put each zero-padded digit's centre of mass at the canvas centre, rounded, kept inside."""
    mass = digits.astype(np.float64)
    total = mass.sum(axis=(1, 2))
    heights, widths = sizes[:, 0], sizes[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        com_y = (mass.sum(axis=2) * np.arange(digits.shape[1])).sum(axis=1) / total
        com_x = (mass.sum(axis=1) * np.arange(digits.shape[2])).sum(axis=1) / total
    # Resampling can wipe out a faint speck: the box centre then, as in mnist_style.
    com_y = np.where(total > 0, com_y, (heights - 1) / 2)
    com_x = np.where(total > 0, com_x, (widths - 1) / 2)
    centre = (image_size - 1) / 2
    tops = np.minimum(np.maximum(np.floor(centre - com_y + 0.5).astype(np.int64), 0), image_size - heights)
    lefts = np.minimum(np.maximum(np.floor(centre - com_x + 0.5).astype(np.int64), 0), image_size - widths)
    return tops, lefts


def resize_batch(images: np.ndarray | torch.Tensor, image_size: int) -> torch.Tensor:
    """Resize (N, H, W) uint8 images to (N, S, S) uint8 with anti-aliased bilinear filtering."""
    batch = torch.as_tensor(images)
    if tuple(batch.shape[1:]) == (image_size, image_size):
        return batch.to(torch.uint8)
    resized = F.interpolate(
        batch[:, None].float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
    )
    return resized[:, 0].round().clamp(0, 255).to(torch.uint8)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] (pixel / 127.5 - 1), the range of a tanh generator."""
    # In place on the fresh float copy: a third of the time of the out-of-place expression.
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, S, S) -> float32 (N, 1, S, S) in [-1, 1], as datasets hand images to a GAN."""
    return to_unit(images).unsqueeze(1)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Floats in [-1, 1] -> uint8, rounding like an 8-bit image file would (real data is stored this way)."""
    return images.detach().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
