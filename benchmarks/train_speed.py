"""Training speed: ganbench's trainer vs a bare PyTorch loop, FLOP efficiency, speed options, batch scaling.

Run: .venv/bin/python benchmarks/train_speed.py [--quick] [--only-overhead | --only-presets | --only-amp].
With no option it runs parts 1-4 (the harness against bare loops, the DCGAN step's FLOP share, the speed options,
batch scaling). Part 5, every seed preset in fresh processes (up to 90 s of warm-up each, seed S3 about 6 s a
step), runs alone with `--only-presets`, all eight or the `--presets` named, so that each command stays within
the benchmarks' 15 minutes.
Figures come last as `name: value` lines.
Every figure is a ratio or a rate measured in this one run (interleaved where two things are compared).
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from torch.utils.flop_counter import FlopCounterMode

from ganbench.errors import run_script
from ganbench.data import load_dataset
from ganbench.memory import keep_freed_memory
from ganbench.models import build_models
from ganbench.train.run import train_run
from ganbench.train.settings import TrainSettings
from ganbench.train.build import build
from ganbench.tracking import make_client, mlflow_run
from omegaconf import OmegaConf


def compose_cfg(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def bare_dcgan_seconds(cfg, images: torch.Tensor, steps: int, batch: int) -> float:
    """The same DCGAN trained by the plainest loop we can write: no hooks, no logging."""
    torch.manual_seed(0)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    G, D = build_models(model_cfg, cfg.noise.dim, cfg.dataset.image_size, 10)
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    n = images.size(0)
    start = time.perf_counter()
    done = 0
    while done < steps:
        order = torch.randperm(n)
        for i in range(n // batch):
            real = images[order[i * batch : (i + 1) * batch]]
            labels = torch.zeros(batch, dtype=torch.long)
            z = torch.randn(batch, cfg.noise.dim)
            with torch.no_grad():
                fake = G(z, labels)
            d_loss = F.binary_cross_entropy_with_logits(D(real, labels)[0], ones) + F.binary_cross_entropy_with_logits(
                D(fake, labels)[0], zeros
            )
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            z = torch.randn(batch, cfg.noise.dim)
            g_loss = F.binary_cross_entropy_with_logits(D(G(z, labels), labels)[0], ones)
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            d_loss.item(), g_loss.item()  # the bare loop reads its losses too, as any loop that prints them does
            done += 1
            if done == steps:
                break
    return time.perf_counter() - start


def example_dcgan_seconds(cfg, images: torch.Tensor, steps: int, batch: int) -> float:
    """The loop of the PyTorch DCGAN example: one G forward a step, its fakes detached for D and reused for G."""
    torch.manual_seed(0)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    G, D = build_models(model_cfg, cfg.noise.dim, cfg.dataset.image_size, 10)
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    labels = torch.zeros(batch, dtype=torch.long)
    n = images.size(0)
    start = time.perf_counter()
    done = 0
    while done < steps:
        order = torch.randperm(n)
        for i in range(n // batch):
            real = images[order[i * batch : (i + 1) * batch]]
            fake = G(torch.randn(batch, cfg.noise.dim), labels)
            d_loss = F.binary_cross_entropy_with_logits(D(real, labels)[0], ones) + F.binary_cross_entropy_with_logits(
                D(fake.detach(), labels)[0], zeros
            )
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            g_loss = F.binary_cross_entropy_with_logits(D(fake, labels)[0], ones)
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            d_loss.item(), g_loss.item()
            done += 1
            if done == steps:
                break
    return time.perf_counter() - start


def harness_seconds(cfg, data, tmp: Path) -> tuple[float, int]:
    """ganbench's own trainer with its default MLflow logging into a fresh SQLite store."""
    client = make_client(f"sqlite:///{tmp}/bench-{time.monotonic_ns()}.db")
    with mlflow_run(client, "bench", "harness", {}) as logger:
        result = train_run(TrainSettings.from_config(cfg, "train_speed"), data, logger, torch.device("cpu"))
    return result["seconds"], result["steps"]


def matmul_peak_flops(size: int = 2048, repeats: int = 20) -> float:
    """The machine's measured float32 matmul rate (best of a few), our yardstick for 'peak'."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def step_flops(cfg, batch: int) -> int:
    """FLOPs of one training step (D update + G update), counted by torch.utils.flop_counter."""
    built = build(TrainSettings.from_config(cfg, "bench"), 10, torch.device("cpu"), total_steps=1)
    real = torch.randn(batch, 1, cfg.dataset.image_size, cfg.dataset.image_size)
    labels = torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        built.step.discriminator_step(real, labels)
        built.step.generator_step(batch, torch.device("cpu"))
    return counter.get_total_flops()


def step_rate(cfg, images: torch.Tensor, labels: torch.Tensor, batch: int, steps: int, warmup: int = 3) -> float:
    """Generator steps per second of GANStep alone (no hooks) after a warm-up."""
    torch.manual_seed(0)
    built = build(TrainSettings.from_config(cfg, "bench"), 10, torch.device("cpu"), total_steps=steps)
    if cfg.train.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    for i in range(warmup):  # warm-up (and compilation when train.compile=true)
        built.step.discriminator_step(images[:batch], labels[:batch])
        built.step.generator_step(batch, torch.device("cpu"))
    start = time.perf_counter()
    for i in range(steps):
        j = (i * batch) % (images.size(0) - batch)
        built.step.discriminator_step(images[j : j + batch], labels[j : j + batch])
        out = built.step.generator_step(batch, torch.device("cpu"))
        out["g_loss"].item()
    return steps / (time.perf_counter() - start)


SEED_PRESETS = ("seed_s0a_dcgan_sign", "seed_s0b_dcgan_sign_stable", "seed_s0c_acgan_sign", "seed_s0d_wgan_sign",
                "seed_s1_cgan_mnist", "seed_s2_dcgan_mnist_normal", "seed_s3_cgan_hoda", "seed_s4_gan_mnist")
# The variants of part 5, each timed in a fresh process (the heap setting holds for a whole process): PyTorch's
# default memory format or channels_last, with glibc's default heap ("system") or ganbench's (train.keep_freed_memory).
PRESET_VARIANTS = {
    "system": ("train.keep_freed_memory=false",),
    "keep": ("train.keep_freed_memory=true",),
    "channels_last_keep": ("train.keep_freed_memory=true", "train.channels_last=true"),
}


# The ops that carry a step's counted FLOPs (what torch.utils.flop_counter counts: matmuls and convolutions), as
# torch.profiler names them; the rest of a step's time (elementwise ops, BatchNorm, dropout's RNG, the optimizer,
# Python) is what "avoiding needless work" can remove.
FLOP_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::convolution", "aten::_convolution",
                      "aten::convolution_backward", "aten::mkldnn_convolution", "aten::_slow_conv2d_forward",
                      "aten::_slow_conv2d_backward", "aten::slow_conv_transpose2d", "aten::mkldnn_linear"})


def flop_op_time_share(step: Callable[[int], None], steps: int) -> float:
    """The share of ``steps`` steps' CPU time (torch.profiler, self time) spent inside FLOP_OPS."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for i in range(steps):
            step(i)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if e.key in FLOP_OPS) / total


def preset_images_per_s(name: str, overrides: Sequence[str], seconds: float,
                        settle_seconds: float = 90.0) -> tuple[float, float]:
    """Images/s of one seed preset's step in this process, as a run of it would train (heap setting included).

    Random images in [-1, 1] of the preset's size (a step's cost does not depend on the pixels); one D update
    and one G update per step, whatever the preset's d_steps. Warm-up steps run until one faults in less than 1 MB
    of fresh memory (the heap has settled: with train.keep_freed_memory it takes a few dozen steps to find its
    block sizes) or for ``settle_seconds`` (glibc's default heap never settles), then about ``seconds`` are timed.
    Also returns the share of a step's time inside its matmuls and convolutions (``flop_op_time_share``).
    """
    cfg = compose_cfg(f"experiment={name}", *overrides)
    if cfg.train.keep_freed_memory:
        keep_freed_memory()
    batch, size = int(cfg.train.batch_size), int(cfg.dataset.image_size)
    images = torch.rand(batch * 2, 1, size, size) * 2 - 1
    labels = torch.randint(0, 10, (batch * 2,))
    torch.manual_seed(0)
    built = build(TrainSettings.from_config(cfg, "bench"), 10, torch.device("cpu"), total_steps=1000)
    if cfg.train.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)

    def one_step(i: int) -> None:
        j = (i * batch) % images.size(0)
        built.step.discriminator_step(images[j : j + batch], labels[j : j + batch])
        built.step.generator_step(batch, torch.device("cpu"))["g_loss"].item()

    start, i = time.perf_counter(), 0
    while True:
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        began = time.perf_counter()
        one_step(i)
        i, step_seconds = i + 1, time.perf_counter() - began
        settled = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) * resource.getpagesize() < 2**20
        if i >= 2 and (settled or time.perf_counter() - start > settle_seconds):
            break
    steps = max(2, min(200, round(seconds / step_seconds)))
    began = time.perf_counter()
    for k in range(steps):
        one_step(i + k)
    rate = batch * steps / (time.perf_counter() - began)
    return rate, flop_op_time_share(lambda k: one_step(i + steps + k), max(1, min(5, round(3 / step_seconds))))


def preset_images_per_s_apart(name: str, overrides: Sequence[str], seconds: float) -> tuple[float, float, float]:
    """``preset_images_per_s`` in a fresh Python process (this script with ``--rate-of``), and the matmul peak
    measured in that process right after it (a shared machine's speed drifts; each share is against its own peak)."""
    out = subprocess.run([sys.executable, __file__, "--rate-of", name, "--seconds", str(seconds), *overrides],
                         capture_output=True, text=True, check=True)
    rate, flop_ops, peak = out.stdout.strip().splitlines()[-1].split()
    return float(rate), float(flop_ops), float(peak)


def preset_speeds(seconds: float = 8.0, presets: tuple[str, ...] = SEED_PRESETS) -> dict[str, float]:
    """Images/s and FLOP share of the matmul peak of every seed preset's step, in each of PRESET_VARIANTS."""
    figures: dict[str, float] = {}
    for name in presets:
        short = name.removeprefix("seed_")
        base = compose_cfg(f"experiment={name}")
        flops = step_flops(base, int(base.train.batch_size))  # the same count in every variant
        figures[f"{short}_step_gflops"] = flops / 1e9
        for variant, overrides in PRESET_VARIANTS.items():
            rate, flop_ops, peak = preset_images_per_s_apart(name, overrides, seconds)
            share = flops * rate / int(base.train.batch_size) / peak
            figures[f"{short}_{variant}_images_per_s"] = rate
            figures[f"{short}_{variant}_matmul_peak_gflops"] = peak / 1e9
            figures[f"{short}_{variant}_flops_fraction_of_peak"] = share
            # The share if every op but the matmuls and convolutions took no time: what their kernels allow.
            figures[f"{short}_{variant}_kernel_ceiling"] = share / flop_ops
        figures[f"{short}_keep_speedup"] = figures[f"{short}_keep_images_per_s"] / figures[f"{short}_system_images_per_s"]
    return figures


def amp_speedups(images: torch.Tensor, labels: torch.Tensor, rounds: int, steps: int) -> dict[str, float]:
    """`fast_hoda`'s steps a minute in float32 and under bf16 autocast, at its half width and at full width.

    The two settings alternate round by round in this one process, and each figure is the median of its rounds,
    so the machine's drift falls on both alike.
    """
    widths = {"fast_hoda": [], "fast_hoda_full_width": ["model.generator.channels=[128,64]",
                                                        "model.discriminator.channels=[64,128]"]}
    figures: dict[str, float] = {}
    for name, width in widths.items():
        rates: dict[str, list[float]] = {"off": [], "true": []}
        for _ in range(rounds):
            for amp in rates:
                cfg = compose_cfg("experiment=fast_hoda", f"train.amp={amp}", *width)
                rates[amp].append(60 * step_rate(cfg, images, labels, cfg.train.batch_size, steps))
        fp32, bf16 = statistics.median(rates["off"]), statistics.median(rates["true"])
        figures |= {f"{name}_fp32_steps_per_min": fp32, f"{name}_bf16_steps_per_min": bf16,
                    f"{name}_bf16_speedup": bf16 / fp32}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test of the script)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="counted interleaved rounds of bare vs ganbench (with --only-amp: of float32 vs bf16)")
    parser.add_argument("--only-overhead", action="store_true", help="only part 1: ganbench vs the bare and example loops")
    parser.add_argument("--only-presets", action="store_true",
                        help="part 5 (not run otherwise): every seed preset's images/s and FLOP share")
    parser.add_argument("--only-amp", action="store_true",
                        help="only bf16 autocast against float32 on fast_hoda, half and full width (rounds x 300 steps)")
    parser.add_argument("--presets", default=",".join(SEED_PRESETS),
                        help="comma-separated seed presets for part 5 (default: all), e.g. seed_s3_cgan_hoda")
    parser.add_argument("--rate-of", metavar="PRESET", help=argparse.SUPPRESS)  # part 5's worker: one preset's images/s
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds timed per seed preset and variant (part 5)")
    parser.add_argument("overrides", nargs="*", default=[], help=argparse.SUPPRESS)  # the worker's config overrides
    args = parser.parse_args()
    if args.rate_of:
        print(*preset_images_per_s(args.rate_of, args.overrides, args.seconds), matmul_peak_flops())
        return
    keep_freed_memory()  # as every ganbench run does (train.keep_freed_memory=true), for parts 1-4
    presets = tuple(args.presets.split(","))
    if unknown := sorted(set(presets) - set(SEED_PRESETS)):
        parser.error(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(SEED_PRESETS)}")
    if args.only_presets:
        print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
        for name, value in preset_speeds(args.seconds, presets).items():
            print(f"{name}: {value:.4g}")
        return
    if args.only_amp:
        data = load_dataset("hoda", "train", image_size=28, limit=32 * 700)
        print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads; fast_hoda (batch 32), {args.rounds} alternating rounds")
        for name, value in amp_speedups(data.images, data.labels, args.rounds, 20 if args.quick else 300).items():
            print(f"{name}: {value:.4g}")
        return
    steps = 20 if args.quick else 80
    batch = 128
    data = load_dataset("hoda", "train", image_size=28, limit=batch * steps)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; DCGAN on {data.images.size(0)} Hoda images, batch {batch}")

    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # 1. Harness overhead, interleaved: bare, harness, bare, harness, ...
        cfg = compose_cfg(f"train.batch_size={batch}", "train.epochs=1", f"train.max_steps={steps}", "train.checkpoint_every=0",
                          f"train.checkpoint_dir={tmp}/ck", "eval.enabled=false")
        reuse_cfg = compose_cfg(*[f"{k}={v}" for k, v in (("train.batch_size", batch), ("train.epochs", 1), ("train.max_steps", steps),
                                                        ("train.checkpoint_every", 0), ("train.checkpoint_dir", f"{tmp}/ck"),
                                                        ("eval.enabled", "false"), ("train.reuse_fakes", "true"))])
        seconds: dict[str, list[float]] = {"bare": [], "example": [], "harness": [], "harness_reuse": []}
        # Round 0 warms up everything (first-time imports of the image and plotting code, allocator growth) and is not counted.
        for r in range(args.rounds + 1):
            times = {
                "bare": bare_dcgan_seconds(cfg, data.images, steps, batch),
                "example": example_dcgan_seconds(cfg, data.images, steps, batch),
                "harness": harness_seconds(cfg, data, Path(tmp))[0],
                "harness_reuse": harness_seconds(reuse_cfg, data, Path(tmp))[0],
            }
            print(f"round {r}{' (warm-up)' if r == 0 else ''}: " + ", ".join(f"{k} {steps * batch / v:,.0f} img/s" for k, v in times.items()))
            if r:
                for key, value in times.items():
                    seconds[key].append(value)
        # Ratios of images/s, each from the same round, then the median over rounds.
        ratio = lambda a, b: statistics.median(x / y for x, y in zip(seconds[a], seconds[b]))  # noqa: E731
        figures["harness_vs_bare"] = ratio("bare", "harness")
        figures["harness_vs_example"] = ratio("example", "harness")
        figures["harness_reuse_fakes_vs_example"] = ratio("example", "harness_reuse")
        figures["reuse_fakes_speedup"] = ratio("harness", "harness_reuse")
        figures["harness_images_per_s"] = steps * batch / statistics.median(seconds["harness"])
    if args.only_overhead:
        print()
        for name, value in figures.items():
            print(f"{name}: {value:.4g}")
        return

    # 2. FLOP efficiency of the step against the measured matmul peak.
    cfg = compose_cfg(f"train.batch_size={batch}")
    flops = step_flops(cfg, batch)
    peak = matmul_peak_flops()
    rate = step_rate(cfg, data.images, data.labels, batch, steps)
    figures["step_gflops"] = flops / 1e9
    figures["matmul_peak_gflops_per_s"] = peak / 1e9
    figures["step_flops_fraction_of_peak"] = flops * rate / peak

    # 3. Speed options, each against the default step in the same run (interleaved pairs).
    options = {"fused_adam": ["optim.fused=true"], "channels_last": ["train.channels_last=true"],
               "bf16_autocast_cpu": ["train.amp=true"], "compile": ["train.compile=true"]}
    for name, overrides in options.items():
        base, fast = [], []
        for _ in range(2):
            base.append(step_rate(compose_cfg(f"train.batch_size={batch}"), data.images, data.labels, batch, steps // 2))
            fast.append(step_rate(compose_cfg(f"train.batch_size={batch}", *overrides), data.images, data.labels, batch, steps // 2))
        figures[f"{name}_speedup"] = statistics.median(fast) / statistics.median(base)
    figures["compile_speedup"] = figures.pop("compile_speedup")

    # 4. Images/s against batch size.
    for b in (32, 64, 128, 256, 512):
        figures[f"images_per_s_batch_{b}"] = b * step_rate(compose_cfg(f"train.batch_size={b}"), data.images, data.labels, b, max(5, steps * 128 // b // 2))

    print()
    for name, value in figures.items():
        print(f"{name}: {value:.4g}")


if __name__ == "__main__":
    run_script(main, "train_speed.py")
