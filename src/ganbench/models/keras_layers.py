"""Keras' layers as the seed systems used them, in PyTorch: TensorFlow's 'same' padding, Keras' BatchNorm.

``padding="same"`` pads like TensorFlow, the odd pixel going to the bottom/right (``KerasConv2d``,
``KerasConvTranspose2d``), so feature maps line up with the original's, not only their shapes. The seed
architectures built from these are in ``ganbench.models.keras_seeds``.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ganbench.models.init import KERAS_BN_EPS, KERAS_BN_MOMENTUM
from ganbench.models.kernels import one_map_conv2d

KERAS_LEAKY_SLOPE = 0.3  # tf.keras.layers.LeakyReLU()'s default alpha


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding along one axis: (before, after), the odd pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def keras_conv_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """Output side of a Keras Conv2D: ceil(size/stride) for 'same', else ceil((size-kernel+1)/stride)."""
    if padding == "same":
        return math.ceil(size / stride)
    return math.ceil((size - kernel + 1) / stride)


class KerasConv2d(nn.Conv2d):
    """nn.Conv2d with Keras' ``padding='same'`` (TensorFlow's asymmetric padding) or ``'valid'``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: str = "same", bias: bool = True
    ):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, bias=bias)
        self.keras_padding = padding

    def forward(self, x: Tensor) -> Tensor:
        if self.keras_padding == "same":
            top, bottom = _same_pads(x.size(-2), self.kernel_size[0], self.stride[0])
            left, right = _same_pads(x.size(-1), self.kernel_size[1], self.stride[1])
            if top == bottom and left == right:
                if self.out_channels == 1 and self.stride == (1, 1) and self.groups == 1 and self.dilation == (1, 1):
                    # Seed S3's 7x7 output conv: oneDNN's one-channel conv is its slowest layer (models.kernels).
                    return one_map_conv2d(x, self.weight, self.bias, (top, left))
                # Even padding is the conv's own zero padding: no padded copy of x (the same sums).
                return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class KerasConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d with Keras' ``padding='same'``: output = input * stride, cropped as TensorFlow does.

    A 'same' transposed conv is the adjoint of a 'same' conv, so its full output is cropped
    by that conv's padding: the odd pixel comes off the bottom/right (PyTorch's ``padding``
    and ``output_padding`` would crop symmetrically and shift the map by one pixel).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        if kernel_size < stride:
            raise ValueError(f"kernel_size {kernel_size} < stride {stride}: 'same' would need zero rows, unsupported")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, bias=bias)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        h, w = x.size(-2) * self.stride[0], x.size(-1) * self.stride[1]
        top, bottom = _same_pads(h, self.kernel_size[0], self.stride[0])
        left, right = _same_pads(w, self.kernel_size[1], self.stride[1])
        if top == bottom and left == right:
            # An even crop is PyTorch's own ``padding``: the conv computes only the kept window, with no cropped
            # copy and no zero-filled gradient of the full map (a tenth of seed S3's step at batch 1,024).
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, (top, left), 0, self.groups, self.dilation)
        return super().forward(x)[..., top : top + h, left : left + w]


def keras_batchnorm(features: int, momentum: float = KERAS_BN_MOMENTUM, dims: int = 2) -> nn.Module:
    """BatchNorm with Keras' epsilon (1e-3); ``momentum`` in PyTorch's convention."""
    norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return norm(features, eps=KERAS_BN_EPS, momentum=momentum)


def check_divisible(image_size: int, factor: int, what: str) -> None:
    if image_size % factor:
        raise ValueError(f"{what} needs image_size divisible by {factor}, got {image_size}")


class GlobalMaxPool(nn.Module):
    """Keras' GlobalMaxPooling2D: (N, C, H, W) -> (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.amax(dim=(2, 3))
