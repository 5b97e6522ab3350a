"""A preset's training step under variants meant to leave what it trains unchanged: same weights? faster?

Run: .venv/bin/python benchmarks/step_variants.py PRESET [--variants foreach,fused,compiled_optimizer,no_onednn]
     [--rounds 8] [--steps 40]      (PRESET: any experiment, e.g. seed_s1_cgan_mnist or fast_hoda)

Each variant is checked first: from the same seeds, 30 steps of the base and of the variant, then the largest
difference in any weight of G or D (0 means the same run to the bit). Then the base and every variant, each built
once, alternate in rounds of ``--steps`` steps in this one process (the kept heap on, as every run); each figure is
the median of its rounds, so the machine's drift falls on all alike. Figures come last as `name: value` lines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from ganbench.errors import run_script
from ganbench.memory import keep_freed_memory
from ganbench.train.build import Built, build
from ganbench.train.settings import TrainSettings
from train_speed import compose_cfg


def optimizer_update(built: Built, **flags: bool) -> None:
    """Set the optimizers' update: ``foreach`` (multi-tensor; PyTorch's default on CUDA only, on CPU a loop over
    tensors) or ``fused`` (one vectorised C++ kernel a parameter group, as ``optim.fused=true``)."""
    for optimizer in (built.step.d_optimizer, built.step.g_optimizer):
        for group in optimizer.param_groups:
            group.update(flags)


def compiled_optimizer(built: Built) -> None:
    """``torch.compile`` of each optimizer's step: inductor writes the whole update as one C++ kernel."""
    optimizer_update(built, foreach=True)
    for optimizer in (built.step.d_optimizer, built.step.g_optimizer):
        optimizer.step = torch.compile(optimizer.step)


def as_built(built: Built) -> None:
    """The base, and ``no_onednn``: PyTorch's own im2col-and-matmul convolutions instead of oneDNN's, a global
    switch that ``train`` turns around that variant's steps."""


VARIANTS: dict[str, Callable[[Built], None]] = {
    "foreach": partial(optimizer_update, foreach=True), "fused": partial(optimizer_update, fused=True),
    "compiled_optimizer": compiled_optimizer, "no_onednn": as_built}


def make(cfg, variant: str) -> Built:
    torch.manual_seed(0)
    built = build(TrainSettings.from_config(cfg, "bench"), 10, torch.device("cpu"), total_steps=1000)
    VARIANTS.get(variant, as_built)(built)
    return built


def train(built: Built, variant: str, images: Tensor, labels: Tensor, steps: int, first: int = 0) -> None:
    """``steps`` D and G updates on the fixed batches, cycling through them."""
    batch = images.size(0) // 2
    # Only the on/off switch: torch.backends.mkldnn.flags() would also set its deterministic and TF32 flags.
    torch.backends.mkldnn.enabled = variant != "no_onednn"
    try:
        for i in range(first, first + steps):
            j = (i % 2) * batch
            built.step.discriminator_step(images[j : j + batch], labels[j : j + batch])
            built.step.generator_step(batch, torch.device("cpu"))["g_loss"].item()
    finally:
        torch.backends.mkldnn.enabled = True


def weights_after(cfg, variant: str, images: Tensor, labels: Tensor, steps: int = 30) -> Tensor:
    built = make(cfg, variant)
    torch.manual_seed(1)
    train(built, variant, images, labels, steps)
    nets = (built.step.generator, built.step.discriminator)
    return torch.cat([p.detach().flatten() for net in nets for p in net.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="an experiment preset, e.g. seed_s1_cgan_mnist")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds of every variant, alternating")
    parser.add_argument("--steps", type=int, default=40, help="steps a round")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.exit(2, f"step_variants.py: unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}\n")

    keep_freed_memory()
    cfg = compose_cfg(f"experiment={args.preset}")
    batch, size = int(cfg.train.batch_size), int(cfg.dataset.image_size)
    g = torch.Generator().manual_seed(2)
    images = torch.rand(2 * batch, 1, size, size, generator=g) * 2 - 1  # a step's cost does not depend on the pixels
    labels = torch.randint(0, 10, (2 * batch,), generator=g)

    figures: dict[str, float] = {}
    base = weights_after(cfg, "base", images, labels)
    for variant in variants:
        figures[f"{variant}_max_weight_difference_after_30_steps"] = (weights_after(cfg, variant, images, labels) - base).abs().max().item()

    runs = {name: make(cfg, name) for name in ["base", *variants]}
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for name, built in runs.items():  # warm-up: the kept heap settles, the compiled step compiles
        train(built, name, images, labels, 40)
    for r in range(args.rounds):
        for name, built in runs.items():
            began = time.perf_counter()
            train(built, name, images, labels, args.steps, first=(r + 1) * args.steps)
            rates[name].append(batch * args.steps / (time.perf_counter() - began))
    for name, values in rates.items():
        figures[f"{name}_images_per_s"] = statistics.median(values)
        if name != "base":
            figures[f"{name}_speedup"] = figures[f"{name}_images_per_s"] / statistics.median(rates["base"])
    print(f"{args.preset}: {args.rounds} rounds of {args.steps} steps, batch {batch}, {torch.get_num_threads()} threads")
    for key, value in figures.items():
        print(f"{key}: {value:.4g}")


if __name__ == "__main__":
    run_script(main, "step_variants.py")
