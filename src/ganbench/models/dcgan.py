"""Convolutional GANs (Radford et al. 2016) and their conditional, ACGAN and Wasserstein variants.

One generator and one discriminator, configured by the model's YAML (``model.conditioning=concat|projection|
cbn|acgan`` on the conditional ones picks how the class reaches the nets, as for ``model=sngan``):
``dcgan`` (plain), ``cgan_conv`` (one-hot label concatenated to z and broadcast
as extra D input channels, the seed S3 design), ``acgan`` (label into G, class
head on D), ``wgan`` (critic score, weights clipped by the trainer) and
``wgan_gp`` (critic without BatchNorm, because the gradient penalty is taken
per sample and batch statistics would couple the samples).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganbench.models.base import DOutput, label_channels, one_hot
from ganbench.models.conditioning import ConditionalBatchNorm2d, Projection, check_conditioning
from ganbench.models.dropout import Dropout


def _norm2d(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        # GroupNorm with one group normalises each sample over (C, H, W): layer norm for conv maps.
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose batch, layer or none")


def upsampling_stages(channels: Sequence[int]) -> int:
    """How many stride-2 stages a net with these widths has (one per width)."""
    return len(channels)


class Generator(nn.Module):
    """z (+ one-hot label) -> Linear -> (C0, S/2^n, S/2^n) -> n stride-2 transposed convs -> tanh."""

    def __init__(
        self,
        z_dim: int,
        image_size: int,
        num_classes: int = 10,
        channels: Sequence[int] = (128, 64),
        kernel_size: int = 4,
        conditional: bool = False,
        conditioning: str | None = None,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        # ``bn_momentum`` (PyTorch's convention, its default 0.1) weighs each training batch in the running
        # statistics that eval-mode sampling uses; training itself normalises by batch statistics, so it changes
        # no weight, only how many batches the sampled statistics average (about 2 / bn_momentum).
        # ``conditioning`` (model.conditioning) overrides the older flag: cbn puts the class into BatchNorm,
        # every other conditional choice concatenates the one-hot label to z.
        if conditioning is not None:
            check_conditioning(conditioning)
            conditional = conditioning != "none"
        self.cbn = conditioning == "cbn"
        n = upsampling_stages(channels)
        if image_size % 2**n:
            raise ValueError(f"image_size {image_size} is not divisible by 2^{n} (one halving per generator width)")
        self.z_dim, self.num_classes, self.conditional = z_dim, num_classes, conditional
        self.base = image_size // 2**n
        self.channels = list(channels)
        in_features = z_dim + (num_classes if conditional and not self.cbn else 0)
        self.project = nn.Sequential(
            nn.Linear(in_features, self.channels[0] * self.base**2, bias=False),
            nn.BatchNorm1d(self.channels[0] * self.base**2, momentum=bn_momentum),
            nn.ReLU(inplace=True),
        )
        padding = (kernel_size - 1) // 2
        output_padding = kernel_size % 2  # odd kernels need it to double the size exactly
        layers: list[nn.Module] = []
        widths = self.channels + [1]
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            last = i == len(widths) - 2
            layers.append(
                nn.ConvTranspose2d(c_in, c_out, kernel_size, 2, padding, output_padding, bias=last)
            )
            norm = (ConditionalBatchNorm2d(c_out, num_classes, bn_momentum) if self.cbn
                    else nn.BatchNorm2d(c_out, momentum=bn_momentum))
            layers += [nn.Tanh()] if last else [norm, nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.conditional and not self.cbn:
            z = torch.cat([z, one_hot(labels, self.num_classes, z.dtype)], dim=1)
        h = self.project(z).view(z.size(0), self.channels[0], self.base, self.base)
        if not self.cbn:
            return self.net(h)
        for layer in self.net:  # conditional BatchNorm layers take the labels too
            h = layer(h, labels) if isinstance(layer, ConditionalBatchNorm2d) else layer(h)
        return h


class Discriminator(nn.Module):
    """n stride-2 convs with LeakyReLU(0.2) -> linear score (and class logits for ACGAN)."""

    def __init__(
        self,
        image_size: int,
        num_classes: int = 10,
        channels: Sequence[int] = (64, 128),
        kernel_size: int = 4,
        norm: str = "batch",
        conditional: bool = False,
        class_head: bool = False,
        dropout: float = 0.0,
        conditioning: str | None = None,
    ):
        super().__init__()
        # ``conditioning`` (model.conditioning) overrides the older flags: concat adds label channels to the
        # input, projection and cbn add the projection head, acgan the class head.
        if conditioning is not None:
            check_conditioning(conditioning)
            conditional, class_head = conditioning == "concat", conditioning == "acgan"
        n = len(channels)
        if image_size % 2**n:
            raise ValueError(f"image_size {image_size} is not divisible by 2^{n} (one halving per discriminator width)")
        self.num_classes, self.conditional, self.image_size = num_classes, conditional, image_size
        padding = (kernel_size - 1) // 2
        layers: list[nn.Module] = []
        c_in = 1 + (num_classes if conditional else 0)
        for i, c_out in enumerate(channels):
            # No normalisation on the first layer, as in DCGAN: it would wash out the input's statistics.
            layers.append(nn.Conv2d(c_in, c_out, kernel_size, 2, padding, bias=(i == 0 or norm == "none")))
            if i > 0:
                layers.append(_norm2d(norm, c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout > 0:
                layers.append(Dropout(dropout))
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        feat = c_in * (image_size // 2**n) ** 2
        self.score = nn.Linear(feat, 1)
        self.class_head = nn.Linear(feat, num_classes) if class_head else None
        self.projection = Projection(feat, num_classes) if conditioning in ("projection", "cbn") else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        if self.conditional:
            x = torch.cat([x, label_channels(labels, self.num_classes, x.size(-1), x.dtype)], dim=1)
        h = self.features(x)
        class_logits = self.class_head(h) if self.class_head is not None else None
        score = self.score(h).squeeze(1)
        if self.projection is not None:
            score = score + self.projection(h, labels)
        return score, class_logits
