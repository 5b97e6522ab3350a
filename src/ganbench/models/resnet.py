"""An SNGAN-style ResNet GAN (Miyato et al. 2018; Miyato & Koyama 2018) for 28x28 and 32x32 digits.

G: z -> Linear -> (C, S/2^k, S/2^k) -> k upsampling residual blocks -> BN, ReLU, 3x3 conv, tanh
(28 px: 7 -> 14 -> 28; 32 px: 4 -> 8 -> 16 -> 32). D: an optimised first block, downsampling residual
blocks, ReLU, global sum pooling, a linear score; spectral norm on every weight layer (SNGAN's D).

``conditioning`` says how the class reaches the nets:
``none``; ``concat`` (one-hot on z in G, label channels on D's input); ``projection`` (G concat, D the
projection head); ``cbn`` (G conditional BatchNorm, D projection: the full SNGAN/BigGAN conditioning);
``acgan`` (G concat, D a class head).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganbench.models.base import DOutput, label_channels, one_hot
from ganbench.models.conditioning import ConditionalBatchNorm2d, Projection, check_conditioning

G_CONCAT = ("concat", "projection", "acgan")
D_CONCAT = ("concat",)
D_PROJECTION = ("projection", "cbn")


def base_size(image_size: int) -> tuple[int, int]:
    """(starting size, number of upsampling blocks) for an image size: 28 -> (7, 2), 32 -> (4, 3)."""
    for base in (7, 4):
        blocks = 0
        size = base
        while size < image_size:
            size, blocks = size * 2, blocks + 1
        if size == image_size:
            return base, blocks
    raise ValueError(f"image_size {image_size} is not 7 or 4 times a power of two (28 and 32 work)")


class GBlock(nn.Module):
    """BN, ReLU, nearest x2, 3x3 conv, BN, ReLU, 3x3 conv; shortcut: x2 and a 1x1 conv. BN is class-conditional for cbn."""

    def __init__(self, c_in: int, c_out: int, num_classes: int, cbn: bool) -> None:
        super().__init__()
        self.cbn = cbn
        self.norm1 = ConditionalBatchNorm2d(c_in, num_classes) if cbn else nn.BatchNorm2d(c_in)
        self.norm2 = ConditionalBatchNorm2d(c_out, num_classes) if cbn else nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def _norm(self, norm: nn.Module, x: Tensor, labels: Tensor) -> Tensor:
        return norm(x, labels) if self.cbn else norm(x)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self._norm(self.norm1, x, labels)), scale_factor=2.0)
        h = self.conv2(F.relu(self._norm(self.norm2, self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))


class Generator(nn.Module):
    def __init__(self, z_dim: int, image_size: int, num_classes: int = 10, width: int = 64, conditioning: str = "cbn") -> None:
        super().__init__()
        check_conditioning(conditioning)
        self.z_dim, self.num_classes, self.conditioning = z_dim, num_classes, conditioning
        self.conditional = conditioning != "none"
        self.base, blocks = base_size(image_size)
        self.width = width
        in_features = z_dim + (num_classes if conditioning in G_CONCAT else 0)
        self.project = nn.Linear(in_features, width * self.base**2)
        self.blocks = nn.ModuleList(GBlock(width, width, num_classes, conditioning == "cbn") for _ in range(blocks))
        self.out_norm = nn.BatchNorm2d(width)
        self.out = nn.Conv2d(width, 1, 3, 1, 1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if labels is None:
            labels = torch.zeros(z.size(0), dtype=torch.long, device=z.device)
        if self.conditioning in G_CONCAT:
            z = torch.cat([z, one_hot(labels, self.num_classes, z.dtype)], dim=1)
        h = self.project(z).view(z.size(0), self.width, self.base, self.base)
        for block in self.blocks:
            h = block(h, labels)
        return torch.tanh(self.out(F.relu(self.out_norm(h))))


class DBlock(nn.Module):
    """ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 average pool; shortcut: 1x1 conv and pool. ``first``: no leading ReLU."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, first: bool = False) -> None:
        super().__init__()
        self.first, self.downsample = first, downsample
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        skip = x
        if self.downsample:  # pooling before the 1x1 conv: the same map as after it (both are linear), and cheaper
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return h + self.shortcut(skip)


class Discriminator(nn.Module):
    def __init__(self, image_size: int, num_classes: int = 10, width: int = 64, conditioning: str = "cbn",
                 spectral_norm: bool = True) -> None:
        super().__init__()
        check_conditioning(conditioning)
        self.num_classes, self.conditioning = num_classes, conditioning
        c_in = 1 + (num_classes if conditioning in D_CONCAT else 0)
        # 28 -> 14 -> 7 -> 7; 32 -> 16 -> 8 -> 8: two halvings, then a block at that size.
        self.blocks = nn.Sequential(DBlock(c_in, width, True, first=True), DBlock(width, width, True), DBlock(width, width, False))
        self.score = nn.Linear(width, 1)
        self.projection = Projection(width, num_classes) if conditioning in D_PROJECTION else None
        self.class_head = nn.Linear(width, num_classes) if conditioning == "acgan" else None
        if spectral_norm:
            for module in list(self.modules()):
                for name, child in list(module.named_children()):
                    if isinstance(child, (nn.Conv2d, nn.Linear, nn.Embedding)):  # the projection embedding too, as SNGAN
                        setattr(module, name, nn.utils.parametrizations.spectral_norm(child))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        if labels is None:
            labels = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        if self.conditioning in D_CONCAT:
            x = torch.cat([x, label_channels(labels, self.num_classes, x.size(-1), x.dtype)], dim=1)
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        score = self.score(h).squeeze(1)
        if self.projection is not None:
            score = score + self.projection(h, labels)
        return score, self.class_head(h) if self.class_head is not None else None
