"""``eval.image_size``: generators of another image size scored in the dataset's feature space at that size.

A generated image is mapped the way the dataset itself makes its two sizes differ, so the digit is as large as in
the real images it is compared with. Sign Language Digits photos fill the frame at every size: the sample is
resized (anti-aliased bilinear). Hoda and MNIST fit the digit into a box of ``digit_box(size)`` pixels (20 at both
28 and 32: 32 px is 28 px with a wider margin), so the sample is scaled by the ratio of the boxes and centre
cropped or padded with background; 32 -> 28 is then a 2-pixel crop, not a shrink that would make every digit
an eighth smaller than the real ones. Hoda with ``dataset.preprocess=hoda_reader`` shrinks a large digit to the
whole canvas (and never enlarges a small one): it is resized like a photo, the nearest of the two rules.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ganbench.data.preprocess import digit_box

FRAME_FILLING = ("sign_digits",)  # datasets resized as whole photos (ganbench.data.sign_digits.read_gray)
FRAME_PREPROCESSING = ("hoda_reader",)  # dataset.preprocess choices that fit the digit to the canvas, not to a box


def fills_frame(dataset: str, preprocess: str) -> bool:
    """Whether ``dataset``'s images scale with the canvas (photos) rather than keep a digit box inside it."""
    return dataset in FRAME_FILLING or preprocess in FRAME_PREPROCESSING


def content_size(dataset: str, size: int, preprocess: str = "mnist") -> int:
    """The side, in pixels, of what an image of ``size`` shows: the whole frame (photos) or the digit box (digits)."""
    return size if fills_frame(dataset, preprocess) else digit_box(size)


def scaled_size(dataset: str, source: int, target: int, preprocess: str = "mnist") -> int:
    """The side a ``source`` px image is resized to before the centre crop or pad to ``target`` px."""
    return max(1, round(source * content_size(dataset, target, preprocess) / content_size(dataset, source, preprocess)))


def resize_note(dataset: str, source: int, target: int, preprocess: str = "mnist") -> str:
    """How a ``source`` px sample is mapped to ``target`` px, in words (the tag measured.resize)."""
    if source == target:
        return "none"
    scaled = scaled_size(dataset, source, target, preprocess)
    steps = [] if scaled == source else [f"anti-aliased bilinear resize to {scaled} px"]
    if scaled != target:
        steps.append(f"centre {'crop' if scaled > target else 'pad'} to {target} px")
    boxes = f"digit box {content_size(dataset, source, preprocess)} -> {content_size(dataset, target, preprocess)} px"
    return f"{source} -> {target} px ({'frame' if fills_frame(dataset, preprocess) else boxes}): " + ", then ".join(steps)


def centre_fit(images: Tensor, size: int, background: float = -1.0) -> Tensor:
    """(N, C, S, S) images centre cropped or padded (with ``background``) to (N, C, size, size)."""
    before = (size - images.size(-1)) // 2
    after = size - images.size(-1) - before
    return F.pad(images, (before, after, before, after), value=background)  # negative padding crops


def match_size(images: Tensor, dataset: str, size: int, preprocess: str = "mnist") -> Tensor:
    """(N, C, S, S) images in [-1, 1] mapped to ``size`` px the way ``dataset`` makes its sizes differ."""
    source = images.size(-1)
    if source == size:
        return images
    scaled = scaled_size(dataset, source, size, preprocess)
    if scaled != source:
        images = F.interpolate(images, size=(scaled, scaled), mode="bilinear", antialias=True, align_corners=False)
    return centre_fit(images, size).clamp(-1.0, 1.0)


class ResizedGenerator(nn.Module):
    """A generator whose samples come out at ``size`` px (``match_size``); remembers the size it made them at."""

    def __init__(self, inner: nn.Module, dataset: str, size: int, preprocess: str = "mnist"):
        super().__init__()
        self.inner, self.dataset, self.size, self.preprocess = inner, dataset, int(size), preprocess
        self.source_size: int | None = None

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        images = self.inner(z, labels)
        self.source_size = int(images.size(-1))
        return match_size(images, self.dataset, self.size, self.preprocess)

    def measured(self) -> dict[str, str]:
        """The measured.* tags of the resizing: resized_from (the generator's size, or none) and resize."""
        if self.source_size is None or self.source_size == self.size:
            return {"resized_from": "none", "resize": "none"}
        return {"resized_from": str(self.source_size), "resize": resize_note(self.dataset, self.source_size, self.size, self.preprocess)}
