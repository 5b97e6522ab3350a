"""Training-step speed of the main presets on one device, in fp32, bf16 autocast and with torch.compile.

For each preset, GANStep alone (one D update + one G update, no hooks or logging) is timed after a warm-up
that also covers compilation; on CUDA every timing ends with a synchronize. Every figure is images/s of
one variant measured in this run; the speed-ups are ratios against the same preset's fp32 rate.

Run: .venv/bin/python benchmarks/gpu_speed.py [--device cuda] [--steps 50] [--quick]
(benchmarks/gpu.sh runs it with the time-to-quality search on a GPU machine.) Figures come last as
`name: value` lines.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from hydra import compose, initialize_config_module

from ganbench.errors import run_script
from ganbench.data import load_dataset
from ganbench.train.build import build
from ganbench.train.settings import TrainSettings

PRESETS = {
    "fast_hoda": ("experiment=fast_hoda",),
    "seed_s3": ("experiment=seed_s3_cgan_hoda",),
    "dcgan_hoda": ("model=dcgan", "dataset=hoda", "dataset.image_size=28", "train.batch_size=128"),
    "sngan_hoda": ("experiment=hoda/sngan", "dataset=hoda", "dataset.image_size=28", "train.batch_size=64"),
}
WARMUP = 5
VARIANTS = {"fp32": ("train.amp=false",), "bf16": ("train.amp=true",), "compile_bf16": ("train.amp=true", "train.compile=true")}


def compose_cfg(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_s(cfg, images: torch.Tensor, labels: torch.Tensor, device: torch.device, steps: int) -> float:
    """Training images per second of GANStep on ``device`` after WARMUP untimed steps."""
    torch.manual_seed(0)
    batch = cfg.train.batch_size
    built = build(TrainSettings.from_config(cfg, "gpu_speed"), 10, device, total_steps=steps + WARMUP)
    images, labels = images.to(device), labels.to(device)
    if cfg.train.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)

    def one(i: int) -> None:
        j = (i * batch) % (images.size(0) - batch + 1)
        built.step.discriminator_step(images[j : j + batch], labels[j : j + batch])
        built.step.generator_step(batch, device)

    for i in range(WARMUP):  # allocator growth, cuDNN's algorithm search, compilation
        one(i)
    sync(device)
    start = time.perf_counter()
    for i in range(steps):
        one(i)
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per preset and variant")
    parser.add_argument("--quick", action="store_true", help="3 steps, fp32 and bf16 only: a smoke test of the script")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated subset of " + ",".join(PRESETS))
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = 3 if args.quick else args.steps
    variants = {k: v for k, v in VARIANTS.items() if not (args.quick and k.startswith("compile"))}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    figures: dict[str, float] = {}
    for preset in args.presets.split(","):
        base = compose_cfg(*PRESETS[preset], f"device={device.type}")
        batch = base.train.batch_size
        data = load_dataset(base.dataset.name, "train", image_size=base.dataset.image_size, limit=batch * 8)
        for variant, overrides in variants.items():
            cfg = compose_cfg(*PRESETS[preset], f"device={device.type}", *overrides)
            rate = images_per_s(cfg, data.images, data.labels, device, steps)
            figures[f"{preset}_{variant}_images_per_s"] = rate
            print(f"{preset} (batch {batch}) {variant}: {rate:,.0f} img/s", flush=True)
        for variant in variants:
            if variant != "fp32":
                figures[f"{preset}_{variant}_speedup"] = figures[f"{preset}_{variant}_images_per_s"] / figures[f"{preset}_fp32_images_per_s"]
    print()
    for key, value in figures.items():
        print(f"{key}: {value:.4g}")


if __name__ == "__main__":
    run_script(main, "gpu_speed.py")
