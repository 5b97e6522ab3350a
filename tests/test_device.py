"""Where torch computes: a device name every entry point accepts, or one line saying what to choose."""

import pytest
import torch

from ganbench.device import resolve_device
from ganbench.errors import ConfigError


def test_cpu_and_auto_resolve_without_a_gpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda0", "", "cpu:x"])
def test_a_device_that_is_none_of_the_choices_is_a_config_error_naming_them(name):
    # sample, evaluate and the classifier command resolve their own device: torch's RuntimeError was a traceback there.
    with pytest.raises(ConfigError, match=r"choose auto, cpu or cuda"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_gpu_says_to_use_the_cpu(name):
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        resolve_device(name)
