"""models.kernels: the one-output-channel conv as a matmul and a fold equals F.conv2d, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganbench.models.keras_layers import KerasConv2d
from ganbench.models.kernels import one_map_conv2d


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("channels", "kh", "kw", "h", "w"), [(128, 7, 7, 28, 28), (5, 3, 5, 9, 6), (1, 1, 1, 4, 4)])
def test_one_map_conv_equals_the_conv_with_its_gradients(channels_last, channels, kh, kw, h, w) -> None:
    # float64, so that a wrong tap or offset shows as an O(1) difference and rounding as 1e-13.
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(3, channels, h, w, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    weight = torch.randn(1, channels, kh, kw, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(1, dtype=torch.float64, requires_grad=True)
    padding = ((kh - 1) // 2, (kw - 1) // 2)
    ours, ref = one_map_conv2d(x, weight, bias, padding), F.conv2d(x, weight, bias, 1, padding)
    assert ours.shape == ref.shape == (3, 1, h, w)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    probe = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((ours * probe).sum(), (x, weight, bias)),
                    torch.autograd.grad((ref * probe).sum(), (x, weight, bias))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_seed_s3s_output_conv_takes_the_fold_and_stays_the_conv_in_float32_and_bf16() -> None:
    torch.manual_seed(0)
    conv = KerasConv2d(128, 1, 7, 1, "same")
    x = torch.randn(4, 128, 28, 28)
    ref = F.conv2d(x, conv.weight, conv.bias, 1, 3)
    torch.testing.assert_close(conv(x), ref, rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = conv(x)
    # the matmul runs in bf16; autocast keeps fold (col2im) in float32
    torch.testing.assert_close(low.float(), ref, rtol=0.05, atol=0.05)


def test_shapes_the_fold_cannot_do_are_refused() -> None:
    x = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match="'same' padding"):
        one_map_conv2d(x, torch.randn(1, 4, 4, 4), None, (2, 2))  # even kernel: TensorFlow pads it unevenly
    with pytest.raises(ValueError, match="weight"):
        one_map_conv2d(x, torch.randn(2, 4, 3, 3), None, (1, 1))
