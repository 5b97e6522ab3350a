"""Fully connected GANs: the original GAN (Goodfellow et al. 2014) and seed S1's conditional MLP GAN."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ganbench.models.base import DOutput, Maxout


class Generator(nn.Module):
    """z -> ReLU (or LeakyReLU+BN) hidden layers -> tanh image; conditional: z times a label embedding (seed S1)."""

    def __init__(
        self,
        z_dim: int,
        image_size: int,
        num_classes: int = 10,
        hidden: Sequence[int] = (1200, 1200),
        batch_norm: bool = False,
        bn_momentum: float = 0.1,
        activation: str = "relu",
        conditional: bool = False,
    ):
        super().__init__()
        self.image_size, self.conditional = image_size, conditional
        self.embed = nn.Embedding(num_classes, z_dim) if conditional else None
        layers: list[nn.Module] = []
        width = z_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            layers.append(nn.ReLU(inplace=True) if activation == "relu" else nn.LeakyReLU(0.2, inplace=True))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h, momentum=bn_momentum))
            width = h
        layers += [nn.Linear(width, image_size * image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = z * self.embed(labels)
        return self.net(z).view(z.size(0), 1, self.image_size, self.image_size)


class MaxoutDiscriminator(nn.Module):
    """The original GAN's D: dropout on the input, maxout hidden layers with dropout, one score."""

    def __init__(
        self,
        image_size: int,
        num_classes: int = 10,
        units: Sequence[int] = (240, 240),
        pieces: int = 5,
        input_dropout: float = 0.2,
        dropout: float = 0.5,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(input_dropout)]
        width = image_size * image_size
        for u in units:
            layers += [Maxout(width, u, pieces), nn.Dropout(dropout)]
            width = u
        self.features = nn.Sequential(*layers)
        self.score = nn.Linear(width, 1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        return self.score(self.features(x)).squeeze(1), None


class Discriminator(nn.Module):
    """Flattened image (times a label embedding when conditional, seed S1) -> LeakyReLU MLP -> one score."""

    def __init__(
        self,
        image_size: int,
        num_classes: int = 10,
        hidden: Sequence[int] = (512, 512, 512),
        dropout: float = 0.4,
        conditional: bool = False,
    ):
        super().__init__()
        pixels = image_size * image_size
        self.embed = nn.Embedding(num_classes, pixels) if conditional else None
        layers: list[nn.Module] = []
        width = pixels
        for i, h in enumerate(hidden):
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, inplace=True)]
            # S1 puts dropout after the second and third hidden layers, not the first.
            if i > 0 and dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.features = nn.Sequential(*layers)
        self.score = nn.Linear(width, 1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> DOutput:
        h = x.flatten(1)
        if self.embed is not None:
            h = h * self.embed(labels)
        return self.score(self.features(h)).squeeze(1), None
