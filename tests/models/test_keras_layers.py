"""Keras' layers in PyTorch: TensorFlow's 'same' padding, and the fast path that keeps its bits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganbench.models.keras_layers import KerasConv2d, KerasConvTranspose2d


def test_keras_same_transposed_conv_is_the_adjoint_of_the_same_conv() -> None:
    """TensorFlow defines a 'same' transposed conv as the adjoint of a 'same' conv (odd padding bottom/right)."""
    torch.manual_seed(0)
    for kernel, stride, size in ((5, 2, 16), (4, 2, 16), (5, 1, 8), (3, 2, 28)):
        conv = KerasConv2d(2, 3, kernel, stride, "same", bias=False)
        transposed = KerasConvTranspose2d(3, 2, kernel, stride, bias=False)
        transposed.weight.data.copy_(conv.weight.data)
        x = torch.randn(1, 2, size, size)
        y = torch.randn(1, 3, size // stride, size // stride)
        assert conv(x).shape == y.shape
        assert torch.allclose((conv(x) * y).sum(), (transposed(y) * x).sum(), rtol=1e-4, atol=1e-4)


def test_even_same_padding_takes_the_conv_s_own_padding_and_gives_the_same_bits() -> None:
    # The fast path (no padded or cropped copy) must not change a seed preset's numbers: forward and gradients
    # equal, bit for bit, the explicit pad / crop TensorFlow's definition spells out.
    torch.manual_seed(0)
    for kernel, stride, size in ((4, 2, 7), (4, 2, 14), (7, 1, 28)):
        transposed = KerasConvTranspose2d(6, 5, kernel, stride)
        y = torch.randn(4, 6, size, size, requires_grad=True)
        full = F.conv_transpose2d(y, transposed.weight, transposed.bias, stride)
        crop = (kernel - stride) // 2
        cropped = full[..., crop : crop + size * stride, crop : crop + size * stride]
        fast = transposed(y)
        assert torch.equal(fast, cropped)
        assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad(fast.square().sum(), (y, transposed.weight)),
                                                    torch.autograd.grad(cropped.square().sum(), (y, transposed.weight))))
    conv = KerasConv2d(5, 3, 7, 1, "same")
    x = torch.randn(4, 5, 28, 28, requires_grad=True)
    padded = F.conv2d(F.pad(x, (3, 3, 3, 3)), conv.weight, conv.bias)
    fast = conv(x)
    assert torch.equal(fast, padded)
    assert torch.equal(torch.autograd.grad(fast.sum(), x)[0], torch.autograd.grad(padded.sum(), x)[0])
