"""``diffaug``: DiffAugment (Zhao et al. 2020), differentiable translation and cutout of every image D sees.

Applied to real and fake images alike, in the D and the G update, so G learns through the augmentation.
No flips: a mirrored digit is another digit (or none). Pixels moved in from outside the image and the
cut-out square take the background value -1, not the paper's 0: on a digit a grey square reads as a stroke.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganbench.checks import number_in
from ganbench.stabilize.base import InputTransform, Trick

BACKGROUND = -1.0  # the value of an empty pixel in [-1, 1] images
POLICIES = ("translation", "cutout")


def translate(x: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y (integer pixels), filling with the background."""
    n, _, h, w = x.shape
    sx, sy = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device, generator=generator)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device, generator=generator)
    b, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1], value=BACKGROUND)  # the border row/column is what shifted-in pixels read
    return padded.permute(0, 2, 3, 1)[b, gx, gy].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float, generator: torch.Generator | None = None) -> Tensor:
    """Set a random square of side ``ratio`` x size of each image to the background (its centre may lie near an edge)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=generator)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=generator)
    b, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    keep = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    keep[b, gx, gy] = 0
    keep = keep.unsqueeze(1)
    return x * keep + BACKGROUND * (1 - keep)


class DiffAugment(InputTransform):
    """The policies in turn on every image D sees; differentiable in the pixels (the gradient reaches G)."""

    def __init__(self, policies: list[str], translation: float, cutout_ratio: float, generator: torch.Generator | None = None):
        self.policies, self.translation, self.cutout_ratio, self.generator = policies, translation, cutout_ratio, generator
        self.step = 0

    def __call__(self, x: Tensor) -> Tensor:
        for policy in self.policies:
            x = translate(x, self.translation, self.generator) if policy == "translation" else cutout(x, self.cutout_ratio, self.generator)
        return x


class DiffAugmentTrick(Trick):
    name = "diffaug"
    stage = 10  # before instance noise (stage 50): noise on the augmented image, as D sees it

    def problems(self) -> list[str]:
        s, p = self.settings, []
        policies = list(s.get("policies") or [])
        bad = [x for x in policies if x not in POLICIES]
        if not policies or bad:
            p.append(f"{self.key('policies')}={policies!r} is invalid: choose from {', '.join(POLICIES)} (no flips: a flipped digit is another digit)")
        number_in(p, self.key("translation"), s.get("translation"), 0, 0.5)
        number_in(p, self.key("cutout"), s.get("cutout"), 0, 1, high_open=True)
        return p

    def input_transform(self, total_steps: int) -> DiffAugment:
        s = self.settings
        return DiffAugment(list(s["policies"]), float(s["translation"]), float(s["cutout"]))
