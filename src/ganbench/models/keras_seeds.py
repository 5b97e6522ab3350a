"""The seed reports' own architectures, layer for layer (``../shared/seeds/SYSTEMS.md``).

Most seed systems were written in Keras; these PyTorch replicas keep what a
Keras ``model.summary()`` shows (layer order, widths, kernels, strides, biases,
output shapes) and what Keras does by default where the reports rely on it:

* ``padding="same"`` pads like TensorFlow, the odd pixel going to the bottom/right
  (``KerasConv2d``, ``KerasConvTranspose2d`` in ``ganbench.models.keras_layers``), so feature
  maps line up with the original's, not only their shapes;
* BatchNormalization uses eps 1e-3 and momentum 0.99 (``bn_momentum=0.01`` in
  PyTorch's convention, where momentum weighs the new batch);
* kernels start Glorot-uniform, biases zero, when the model config says ``init: keras``
  (``ganbench.models.init``; every Keras seed's ``conf/model/seed_*.yaml`` does), so ``model.init=null``
  can compare against PyTorch's defaults;
* ``LeakyReLU()`` without an argument has slope 0.3.

Seed S2 was PyTorch already; its small DCGAN lives here too because no generic
class has its shape. Every generator ends in tanh (ganbench feeds [-1, 1]
images); every discriminator returns raw logits (the loss applies the sigmoid).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ganbench.models.base import DOutput, label_channels, one_hot
from ganbench.models.dropout import Dropout
from ganbench.models.init import KERAS_BN_MOMENTUM
from ganbench.models.keras_layers import (
    KERAS_LEAKY_SLOPE,
    GlobalMaxPool,
    KerasConv2d,
    KerasConvTranspose2d,
    check_divisible,
    keras_batchnorm,
    keras_conv_size,
)

# --- Seed S0a/S0b: the TensorFlow DCGAN tutorial's nets, sized for 32x32 -------------------------------


class TutorialDCGANGenerator(nn.Module):
    """Seed S0a/S0b's G: Dense(S/4*S/4*256, no bias) -> BN -> LReLU -> ConvT 128 (5x5, s1) -> ConvT 64 (s2) ->
    ConvT 1 (s2) -> tanh. Every transposed conv is 5x5 'same' without bias, followed by BN and LeakyReLU but the last.
    At 32x32: 2,730,304 parameters as Keras counts them (2,697,152 trainable + 33,152 BN statistics).
    """

    conditional = False

    def __init__(
        self,
        z_dim: int,
        image_size: int,
        num_classes: int = 10,
        leaky_slope: float = KERAS_LEAKY_SLOPE,
        bn_momentum: float = KERAS_BN_MOMENTUM,
    ):
        super().__init__()
        check_divisible(image_size, 4, "TutorialDCGANGenerator (two stride-2 upsamplings)")
        self.base = image_size // 4
        self.project = nn.Sequential(
            nn.Linear(z_dim, self.base * self.base * 256, bias=False),
            keras_batchnorm(self.base * self.base * 256, bn_momentum, dims=1),
            nn.LeakyReLU(leaky_slope),
        )
        self.net = nn.Sequential(
            KerasConvTranspose2d(256, 128, 5, 1, bias=False),
            keras_batchnorm(128, bn_momentum),
            nn.LeakyReLU(leaky_slope),
            KerasConvTranspose2d(128, 64, 5, 2, bias=False),
            keras_batchnorm(64, bn_momentum),
            nn.LeakyReLU(leaky_slope),
            KerasConvTranspose2d(64, 1, 5, 2, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        # Keras reshapes channels-last (8, 8, 256); reading the Dense units as (256, 8, 8) instead only
        # permutes which unit feeds which pixel, a relabelling of the same parameters.
        h = self.project(z).view(z.size(0), 256, self.base, self.base)
        return self.net(h)


class TutorialDCGANDiscriminator(nn.Module):
    """Seed S0a/S0b's D: [Conv 64, Conv 128] (5x5, s2, same) each -> LReLU -> Dropout, Flatten, Dense(1).

    At 32x32: 214,785 parameters (1,664 + 204,928 + 8,193).
    """

    conditional = False

    def __init__(
        self, image_size: int, num_classes: int = 10, leaky_slope: float = KERAS_LEAKY_SLOPE, dropout: float = 0.3
    ):
        super().__init__()
        side = keras_conv_size(keras_conv_size(image_size, 5, 2, "same"), 5, 2, "same")
        self.features = nn.Sequential(
            KerasConv2d(1, 64, 5, 2, "same"),
            nn.LeakyReLU(leaky_slope),
            Dropout(dropout),
            KerasConv2d(64, 128, 5, 2, "same"),
            nn.LeakyReLU(leaky_slope),
            Dropout(dropout),
            nn.Flatten(),
        )
        self.score = nn.Linear(128 * side * side, 1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        return self.score(self.features(x)).squeeze(1), None


# --- Seeds S0c and S3: the keras.io conditional GAN generator ------------------------------------------


class LabelConcatGenerator(nn.Module):
    """keras.io's conditional-GAN G (seed S3; seed S0c's ACGAN G): [z, one-hot label] -> Dense(S/4*S/4*C) -> LReLU ->
    reshape (S/4, S/4, C) -> 2 x [ConvT 128 (4x4, s2, same) -> LReLU -> BN] -> Conv 1 (7x7, same) -> tanh.

    C = z_dim + num_classes, as in the original (``generator_in_channels``). Seed S3 used a sigmoid
    output on 0/1 images; ganbench's images are in [-1, 1], so the output is tanh (the same data up
    to an affine map). S0c at 32x32 with z_dim 118: 1,588,609 parameters as Keras counts them.
    """

    def __init__(
        self,
        z_dim: int,
        image_size: int,
        num_classes: int = 10,
        conditional: bool = True,
        leaky_slope: float = 0.2,
        bn_momentum: float = KERAS_BN_MOMENTUM,
    ):
        super().__init__()
        check_divisible(image_size, 4, "LabelConcatGenerator (two stride-2 transposed convs)")
        self.num_classes, self.conditional = num_classes, conditional
        self.base = image_size // 4
        self.channels = z_dim + (num_classes if conditional else 0)
        self.project = nn.Sequential(
            nn.Linear(self.channels, self.base * self.base * self.channels),
            nn.LeakyReLU(leaky_slope),
        )
        self.net = nn.Sequential(
            KerasConvTranspose2d(self.channels, 128, 4, 2),
            nn.LeakyReLU(leaky_slope),
            keras_batchnorm(128, bn_momentum),
            KerasConvTranspose2d(128, 128, 4, 2),
            nn.LeakyReLU(leaky_slope),
            keras_batchnorm(128, bn_momentum),
            KerasConv2d(128, 1, 7, 1, "same"),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.conditional:
            z = torch.cat([z, one_hot(labels, self.num_classes, z.dtype)], dim=1)
        h = self.project(z).view(z.size(0), self.channels, self.base, self.base)
        return self.net(h)


class LabelChannelDiscriminator(nn.Module):
    """Seed S3's D: image + one-hot label as 10 constant channels -> 2 x [Conv (3x3, s2, same) -> LReLU(0.2) ->
    Dropout(0.4)] with 64 and 128 filters -> GlobalMaxPool -> Dense(1).
    """

    def __init__(
        self,
        image_size: int,
        num_classes: int = 10,
        channels: Sequence[int] = (64, 128),
        leaky_slope: float = 0.2,
        dropout: float = 0.4,
        conditional: bool = True,
    ):
        super().__init__()
        self.num_classes, self.conditional = num_classes, conditional
        layers: list[nn.Module] = []
        c_in = 1 + (num_classes if conditional else 0)
        for c_out in channels:
            layers += [KerasConv2d(c_in, c_out, 3, 2, "same"), nn.LeakyReLU(leaky_slope), Dropout(dropout)]
            c_in = c_out
        self.features = nn.Sequential(*layers, GlobalMaxPool())
        self.score = nn.Linear(c_in, 1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        if self.conditional:
            x = torch.cat([x, label_channels(labels, self.num_classes, x.size(-1), x.dtype)], dim=1)
        return self.score(self.features(x)).squeeze(1), None


# --- Seed S0c: the ACGAN discriminator ---------------------------------------------------------------


class ACGANDiscriminator(nn.Module):
    """Seed S0c's D: Conv 32 (s2), 64 (s1), 128 (s2), 256 (s1), all 3x3 'same', each -> LReLU -> Dropout,
    GlobalMaxPool -> Dense(1), plus the auxiliary class head Dense(num_classes) on the pooled features.

    The report's table (388,097 parameters) lists the trunk and the real/fake score only; the class
    head (``class_head``, 2,570 parameters) is what makes it an ACGAN.
    """

    conditional = False

    def __init__(self, image_size: int, num_classes: int = 10, leaky_slope: float = 0.2, dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out, stride in ((32, 2), (64, 1), (128, 2), (256, 1)):
            layers += [KerasConv2d(c_in, c_out, 3, stride, "same"), nn.LeakyReLU(leaky_slope), Dropout(dropout)]
            c_in = c_out
        self.features = nn.Sequential(*layers, GlobalMaxPool())
        self.score = nn.Linear(c_in, 1)
        self.class_head = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        h = self.features(x)
        return self.score(h).squeeze(1), self.class_head(h)


# --- Seed S0d: the WGAN with upsampling generator -----------------------------------------------------


class UpsampleWGANGenerator(nn.Module):
    """Seed S0d's G: Dense(7*7*64) -> reshape -> [UpSampling -> Conv 256 (5x5)] -> BN -> act ->
    [UpSampling -> Conv 128 (5x5)] -> BN -> act -> [UpSampling -> Conv 64 (4x4)] -> BN -> act -> Conv 1 (2x2) -> tanh.

    All convs are 'valid' (the table's 14 -> 10, 20 -> 16, 32 -> 29, 29 -> 28), so the output side is
    8*base - 28: 28 for the report's 7x7 start. ``act`` is ReLU (the table names only "Activation").
    """

    conditional = False

    def __init__(
        self,
        z_dim: int,
        image_size: int,
        num_classes: int = 10,
        bn_momentum: float = KERAS_BN_MOMENTUM,
    ):
        super().__init__()
        if (image_size + 28) % 8 or image_size < 12:
            raise ValueError(
                f"UpsampleWGANGenerator makes images of side 8*base - 28 (12, 20, 28, 36, ...; 28 in seed S0d), "
                f"not {image_size}; use dataset.image_size=28"
            )
        self.base = (image_size + 28) // 8
        self.project = nn.Sequential(nn.Linear(z_dim, self.base * self.base * 64), nn.ReLU())
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            KerasConv2d(64, 256, 5, 1, "valid"),
            keras_batchnorm(256, bn_momentum),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            KerasConv2d(256, 128, 5, 1, "valid"),
            keras_batchnorm(128, bn_momentum),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            KerasConv2d(128, 64, 4, 1, "valid"),
            keras_batchnorm(64, bn_momentum),
            nn.ReLU(),
            KerasConv2d(64, 1, 2, 1, "valid"),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.project(z).view(z.size(0), 64, self.base, self.base)
        return self.net(h)


class WGANCritic(nn.Module):
    """Seed S0d's critic: Conv 16 (3x3, s2, valid) -> LReLU -> Dropout, then Conv 32 (3x3, s2), 64 (3x3, s2),
    128 (3x3, s1), 256 (2x2, s1), all 'same', each -> BN -> LReLU -> Dropout; Flatten -> Dense(1), linear.

    Kernels, strides and paddings are read off the table (28 -> 13 -> 7 -> 4 -> 4 -> 4; conv2d_35's
    131,328 parameters are a 2x2 kernel). No sigmoid: the Wasserstein loss reads a raw score.
    """

    conditional = False
    LAYERS = ((16, 3, 2, "valid"), (32, 3, 2, "same"), (64, 3, 2, "same"), (128, 3, 1, "same"), (256, 2, 1, "same"))

    def __init__(
        self,
        image_size: int,
        num_classes: int = 10,
        leaky_slope: float = 0.2,
        dropout: float = 0.3,
        bn_momentum: float = KERAS_BN_MOMENTUM,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, side = 1, image_size
        for i, (c_out, kernel, stride, padding) in enumerate(self.LAYERS):
            side = keras_conv_size(side, kernel, stride, padding)
            if side < 1:
                raise ValueError(
                    f"WGANCritic cannot take image_size {image_size}: its feature map vanishes (28 in seed S0d)"
                )
            layers.append(KerasConv2d(c_in, c_out, kernel, stride, padding))
            if i > 0:
                layers.append(keras_batchnorm(c_out, bn_momentum))
            layers += [nn.LeakyReLU(leaky_slope), Dropout(dropout)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.score = nn.Linear(c_in * side * side, 1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        return self.score(self.features(x)).squeeze(1), None


# --- Seed S2: the small PyTorch DCGAN (every conv 4x4) --------------------------------------------------


class SmallDCGANGenerator(nn.Module):
    """Seed S2's G, the mirror of its D: z (128) -> ConvT 64 (4x4, s1: 1 -> 4, linear) ->
    2 x [ConvT (4x4, s2, p1) -> BN -> LReLU(0.2)] to 16x16x16 -> ConvT 1 (4x4, s2, p1) -> tanh -> 32x32.

    The report calls the first transposed conv linear: no BN or activation follows it. Convs that
    feed a BN have no bias (it would be cancelled), as in PyTorch's DCGAN example.
    """

    conditional = False

    def __init__(
        self,
        z_dim: int,
        image_size: int,
        num_classes: int = 10,
        channels: Sequence[int] = (64, 32, 16),
        leaky_slope: float = 0.2,
    ):
        super().__init__()
        if image_size != 4 * 2 ** len(channels):
            raise ValueError(
                f"SmallDCGANGenerator with widths {list(channels)} makes {4 * 2 ** len(channels)}x"
                f"{4 * 2 ** len(channels)} images, not {image_size}; seed S2 pads MNIST to 32 (dataset.image_size=32)"
            )
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, channels[0], 4, 1, 0)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(leaky_slope),
            ]
        layers += [nn.ConvTranspose2d(channels[-1], 1, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z[:, :, None, None])


class SmallDCGANDiscriminator(nn.Module):
    """Seed S2's D: Dropout(0.3) on the image -> Conv 16 (4x4, s2, p1) -> LReLU -> [Conv -> BN -> LReLU(0.2)]
    to 8x8x32, 4x4x64 and (4x4 valid) 1x1x128 -> Conv 1 (1x1) -> logit.

    Input dropout is the report's cure for a D that grew too strong and made G jump to nonsense.
    """

    conditional = False

    def __init__(
        self,
        image_size: int,
        num_classes: int = 10,
        channels: Sequence[int] = (16, 32, 64, 128),
        input_dropout: float = 0.3,
        leaky_slope: float = 0.2,
    ):
        super().__init__()
        if image_size != 4 * 2 ** (len(channels) - 1):
            raise ValueError(
                f"SmallDCGANDiscriminator with widths {list(channels)} takes {4 * 2 ** (len(channels) - 1)}x"
                f"{4 * 2 ** (len(channels) - 1)} images, not {image_size}; seed S2 pads MNIST to 32 (dataset.image_size=32)"
            )
        layers: list[nn.Module] = [
            Dropout(input_dropout),
            nn.Conv2d(1, channels[0], 4, 2, 1),
            nn.LeakyReLU(leaky_slope),
        ]
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            last = i == len(channels) - 2
            # The last block reads the whole 4x4 map (valid conv) down to 1x1.
            conv = nn.Conv2d(c_in, c_out, 4, 1, 0, bias=False) if last else nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)
            layers += [conv, nn.BatchNorm2d(c_out), nn.LeakyReLU(leaky_slope)]
        self.features = nn.Sequential(*layers)
        self.score = nn.Conv2d(channels[-1], 1, 1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        return self.score(self.features(x)).flatten(), None
