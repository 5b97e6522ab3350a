"""Where and how torch computes: the device, determinism, CPU threads."""

from __future__ import annotations

import os
import re

import torch

from ganbench.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU, or a name that is none of these, is a config error."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(name)):
        raise ConfigError(f"device={name!r} is invalid: choose auto, cpu or cuda (cuda:N for one GPU of several)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA GPU is visible; use device=cpu or device=auto")
    return torch.device(name)


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """Deterministic kernels where PyTorch has them (free on the CPU); cuDNN autotuning otherwise.

    On CUDA, cuBLAS needs CUBLAS_WORKSPACE_CONFIG before its first use to be reproducible; an op without a
    deterministic CUDA kernel warns (warn_only) rather than stopping a benchmark run.
    """
    if deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic and device.type == "cuda"


def set_threads(num_threads: int | None) -> None:
    """Use ``num_threads`` CPU threads for torch's kernels (``None`` or 0 keeps torch's default)."""
    if num_threads:
        torch.set_num_threads(int(num_threads))


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: CUDA, or a CPU with AVX512-BF16 or AMX (oneDNN uses them).

    Elsewhere (most laptop CPUs) bf16 is emulated through float32 and autocast only slows a step down.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    # torch.cpu's feature probes are private, so a release without them counts as "no" rather than failing.
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(probe() for probe in probes if probe is not None)
