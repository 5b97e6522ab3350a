"""Minutes of training until a conditional GAN's Hoda digits are classified right 97% / 99% of the time.

Trains `experiment=fast_hoda` (or the preset/overrides given) with ganbench's own step, and every
`--every` generator steps scores `gen_accuracy`: the auxiliary Hoda classifier's accuracy on
`--samples` generated digits whose requested labels are known (balanced over the ten classes).
The clock counts training only; scoring pauses it.

Run: .venv/bin/python benchmarks/time_to_quality.py [--minutes 12] [--every 250] [override ...]
Figures come last as `name: value` lines.
"""

from __future__ import annotations

import argparse
import time

import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from ganbench.evaluate.classifier import get_classifier, load_splits
from ganbench.evaluate.classifier_net import accuracy
from ganbench.evaluate.settings import ClassifierSettings
from ganbench.data import load_dataset
from ganbench.noise import sample_noise
from ganbench.models.sampling import generate
from ganbench.train.settings import TrainSettings
from ganbench.train.build import build
from ganbench.train.loop import Hooks, fit


class OutOfTime(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="give up after this much training time")
    parser.add_argument("--wall-minutes", type=float, default=14.5,
                        help="give up after this much wall-clock time, scoring included (keeps the script under 15 min)")
    parser.add_argument("--every", type=int, default=250, help="score every N generator steps")
    parser.add_argument("--samples", type=int, default=2000, help="generated digits per score (balanced classes)")
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides (default: experiment=fast_hoda)")
    args = parser.parse_args()
    wall_start = time.perf_counter()  # counts the classifier's training too, when the cache has none yet
    overrides = args.overrides or ["experiment=fast_hoda"]
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    torch.manual_seed(cfg.seed)

    train_split, test_split = load_splits(OmegaConf.to_container(cfg.dataset, resolve=True), cfg.data.root, "test")
    clf = get_classifier(train_split, test_split, ClassifierSettings.from_config(cfg.eval.classifier))
    print(f"classifier {clf.sha256[:12]}: {clf.test_accuracy:.4f} on Hoda 'Test 20000.cdb'")

    data = load_dataset("hoda", "train", image_size=cfg.dataset.image_size, root=cfg.data.root, limit=cfg.data.limit)
    device = torch.device("cpu")
    built = build(TrainSettings.from_config(cfg, "bench"), data.num_classes, device, total_steps=10**9)
    assert built.conditional, "time to quality needs a conditional generator (its requested labels are the truth)"
    g = torch.Generator().manual_seed(12345)
    z = sample_noise(cfg.noise.name, args.samples, cfg.noise.dim, generator=g)
    wanted = torch.arange(args.samples) % data.num_classes
    print(f"{' '.join(overrides)}: {data.images.size(0)} training images, batch {cfg.train.batch_size}, "
          f"{torch.get_num_threads()} threads; scoring {args.samples} samples every {args.every} steps")

    clock = {"train": 0.0, "score": 0.0, "since": time.perf_counter()}
    reached: dict[float, float] = {}
    curve: list[tuple[int, float, float]] = []

    def on_step(state, values) -> None:
        if state.step % args.every:
            return
        clock["train"] += time.perf_counter() - clock["since"]
        scoring_start = time.perf_counter()
        acc = accuracy(clf.model, generate(built.step.generator, z, wanted), wanted)
        clock["score"] += time.perf_counter() - scoring_start
        minutes = clock["train"] / 60
        curve.append((state.step, minutes, acc))
        print(f"step {state.step:6d}  {minutes:6.2f} min  gen_accuracy {acc:.4f}", flush=True)
        for target in (0.97, 0.99):
            if acc >= target and target not in reached:
                reached[target] = minutes
        if 0.99 in reached or minutes >= args.minutes or time.perf_counter() - wall_start >= args.wall_minutes * 60:
            raise OutOfTime
        clock["since"] = time.perf_counter()

    try:
        fit(built.step, data.images, data.labels, cfg.train.batch_size, 10**6, None, cfg.train.d_steps,
            torch.Generator().manual_seed(cfg.seed), built.schedulers, Hooks(on_step=on_step), instance_noise=built.instance_noise)
    except OutOfTime:
        pass
    print()
    print(f"config: {' '.join(overrides)}")
    print(f"training_minutes: {clock['train'] / 60:.2f}")
    print(f"scoring_minutes: {clock['score'] / 60:.2f}")
    print(f"scores: {len(curve)}")
    print(f"samples_per_score: {args.samples}")
    print(f"best_gen_accuracy: {max(a for _, _, a in curve):.4f}")
    for target in (0.97, 0.99):
        value = reached.get(target)
        print(f"minutes_to_{round(target * 100)}: {value:.2f}" if value is not None else f"minutes_to_{round(target * 100)}: not reached in {args.minutes:g} min")


if __name__ == "__main__":
    main()
