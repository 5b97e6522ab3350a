"""Minutes of training until a conditional GAN's Hoda digits are classified right 97% / 99% of the time, and held.

Trains `experiment=fast_hoda` (or the preset/overrides given) with ganbench's own training step and data, and
every `--every` generator steps scores `gen_accuracy`: the auxiliary Hoda classifier's accuracy on `--samples`
(10,000) generated digits from fixed noise, balanced over the ten requested classes, sampled with the BatchNorm
statistics `eval.bn_mode` names (eval: the running ones; standing: re-estimated, as `stabilize=ema` needs). The
same samples are also scored by a second, independent classifier (`eval.classifier.arch=lenet`, seed 1: LeNet-5
style, no BatchNorm).
The clock counts training only; scoring pauses it. The run trains as the configuration's own run would
(`train.epochs`, `train.max_steps`: a learning-rate schedule ends where a user's run ends) or for `--minutes`,
whichever comes first, whatever the scores do; its last step is always scored.

`minutes_to_97` / `minutes_to_99` are the first score from which every later score of the run stays at or above
the target (held to the end, not touched once); `first_touch_*` is the first score at or above it.

Diversity at the reported times: after training, the generator as it was at the 97% and 99% times and at the end
gets the standard evaluation (`ganbench.evaluate`: 10,000 samples, BatchNorm in eval mode, CAS on), whose
`recall_clf`, `intra_fid_clf` and `cas` show whether accuracy was bought with diversity. The same evaluation is
also taken at the target times themselves (`--at`, default 1.5 and 5 minutes: the last score at or before each),
so the diversity a user gets at the promised time is on record, not only at the first score that held.

A wall-clock guard (`--wall-minutes`, 12.5 from the script's start, classifier training and scoring included) stops
training early on a slow machine, so that the script, its full evaluations included, stays under 15 minutes; the
figures then say what stopped it.

Run: .venv/bin/python benchmarks/time_to_quality.py [--minutes 6] [--every 200] [--samples 10000] [--wall-minutes 12.5] [override ...]
Figures come last as `name: value` lines.
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace

import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from ganbench.errors import run_script
from ganbench.data import DEFAULT_PREPROCESS, load_dataset
from ganbench.device import resolve_device, set_determinism, set_threads
from ganbench.evaluate import EvalSettings
from ganbench.evaluate.batchnorm import sampling_generator
from ganbench.evaluate.classifier import get_classifier, load_splits
from ganbench.evaluate.classifier_net import accuracy
from ganbench.evaluate.evaluator import get_evaluator
from ganbench.memory import keep_freed_memory
from ganbench.models.sampling import generate
from ganbench.noise import sample_noise
from ganbench.train.build import build
from ganbench.train.loop import Hooks, fit
from ganbench.train.settings import TrainSettings

TARGETS = (0.97, 0.99)
REPORTED = ("recall_clf", "intra_fid_clf", "cas", "fid_clf", "gen_accuracy")


class OutOfTime(Exception):
    pass


def held_from(curve: list[tuple[int, float, float]], target: float) -> int | None:
    """Index of the first score from which every later score stays >= target, or None."""
    index = None
    for i, (_, _, acc) in enumerate(curve):
        if acc < target:
            index = None
        elif index is None:
            index = i
    return index


def first_touch(curve: list[tuple[int, float, float]], target: float) -> int | None:
    return next((i for i, (_, _, acc) in enumerate(curve) if acc >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0,
                        help="most training minutes (the run stops sooner where the configuration's own run ends)")
    parser.add_argument("--every", type=int, default=200, help="score every N generator steps")
    parser.add_argument("--samples", type=int, default=10000, help="generated digits per score (balanced classes)")
    parser.add_argument("--at", type=float, nargs="*", default=[1.5, 5.0],
                        help="also fully evaluate the last score at or before each of these training minutes")
    parser.add_argument("--wall-minutes", type=float, default=12.5,
                        help="stop training this many wall-clock minutes after the script started (classifiers, "
                             "scoring and all), so that the script with its full evaluations stays under 15 minutes")
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides (default: experiment=fast_hoda)")
    args = parser.parse_args()
    started = time.perf_counter()
    overrides = args.overrides or ["experiment=fast_hoda"]
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    torch.manual_seed(cfg.seed)
    set_threads(cfg.train.num_threads)
    if cfg.train.keep_freed_memory:  # the process set-up of every ganbench run (ganbench.app.run)
        keep_freed_memory()
    device = resolve_device(cfg.device)  # device=cuda for benchmarks/gpu.sh
    set_determinism(cfg.train.deterministic, device)

    eval_settings = EvalSettings.from_config(cfg)
    evaluator = get_evaluator(replace(eval_settings, num_samples=10000), device)
    clf = evaluator.classifier
    train_split, test_split = load_splits(eval_settings.dataset, cfg.data.root, "test")
    second = get_classifier(train_split, test_split, replace(eval_settings.classifier, arch="lenet", seed=1), device)
    print(f"auxiliary classifier {clf.sha256[:12]}: {clf.test_accuracy:.4f} on the test split; "
          f"second (lenet, seed 1) {second.sha256[:12]}: {second.test_accuracy:.4f}")

    data = load_dataset(cfg.dataset.name, split="train", image_size=cfg.dataset.image_size, root=cfg.data.root,
                        limit=cfg.data.limit, preprocess=cfg.dataset.get("preprocess", DEFAULT_PREPROCESS))
    settings = TrainSettings.from_config(cfg, "time-to-quality")
    last_step = settings.total_steps(data.images.size(0))
    built = build(settings, data.num_classes, device, total_steps=last_step,
                  epoch_steps=settings.steps_per_epoch(data.images.size(0)))
    assert built.conditional, "time to quality needs a conditional generator (its requested labels are the truth)"
    g = torch.Generator().manual_seed(12345)
    z = sample_noise(cfg.noise.name, args.samples, cfg.noise.dim, generator=g).to(device)
    wanted = (torch.arange(args.samples) % data.num_classes).to(device)
    print(f"{' '.join(overrides)}: {data.images.size(0)} training images, batch {cfg.train.batch_size}, "
          f"{torch.get_num_threads()} threads; scoring {args.samples} samples every {args.every} steps, "
          f"BatchNorm {eval_settings.bn_mode}; the run ends at step {last_step} or after {args.minutes:g} minutes")

    clock = {"train": 0.0, "score": 0.0, "since": time.perf_counter()}
    curve: list[tuple[int, float, float]] = []  # (step, training minutes, gen_accuracy)
    second_acc: list[float] = []
    snapshots: list[dict[str, torch.Tensor]] = []  # the sampling generator at each score, for the full evaluations

    def on_step(state, values) -> None:
        if state.step % args.every and state.step != last_step:
            return
        clock["train"] += time.perf_counter() - clock["since"]
        scoring_start = time.perf_counter()
        # eval.bn_mode, as the full evaluation: stabilize=ema needs standing statistics (its BatchNorm buffers are copies).
        sampler = sampling_generator(built.sampler, eval_settings.bn_mode, steps=eval_settings.standing_steps,
                                     batch_size=evaluator.batch_size, z_dim=cfg.noise.dim, prior=cfg.noise.name,
                                     num_classes=data.num_classes, device=device, seed=cfg.seed)
        with torch.no_grad():
            images = torch.cat([generate(sampler, z[i:i + 1000], wanted[i:i + 1000]) for i in range(0, args.samples, 1000)])
        acc = accuracy(clf.model, images, wanted, device)
        second_acc.append(accuracy(second.model, images, wanted, device))
        snapshots.append(copy.deepcopy(built.sampler.state_dict()))
        clock["score"] += time.perf_counter() - scoring_start
        minutes = clock["train"] / 60
        curve.append((state.step, minutes, acc))
        print(f"step {state.step:6d}  {minutes:6.2f} min  gen_accuracy {acc:.4f}  second {second_acc[-1]:.4f}", flush=True)
        if minutes >= args.minutes:
            raise OutOfTime(f"--minutes {args.minutes:g}")
        if (time.perf_counter() - started) / 60 >= args.wall_minutes:
            raise OutOfTime(f"--wall-minutes {args.wall_minutes:g} (the script's wall clock)")
        clock["since"] = time.perf_counter()

    stopped_by = "the configuration's own end"
    try:
        # The configuration's epochs and max_steps, as a user's run: a schedule is not trained past its end.
        fit(built.step, data.images.to(device), data.labels.to(device), settings.batch_size, settings.epochs,
            settings.max_steps, settings.d_steps,
            torch.Generator().manual_seed(cfg.seed), built.schedulers, Hooks(on_step=on_step),
            input_transforms=built.input_transforms)
    except OutOfTime as stop:
        stopped_by = str(stop)

    reported: dict[str, int] = {}
    for target in TARGETS:
        index = held_from(curve, target)
        if index is not None:
            reported[f"held_{round(target * 100)}"] = index
    for minutes in args.at:
        before = [i for i, (_, m, _) in enumerate(curve) if m <= minutes]
        if before:
            reported[f"at_{minutes:g}_min"] = before[-1]
    reported["end"] = len(curve) - 1
    full: dict[str, dict[str, float]] = {}
    for name, index in reported.items():
        built.sampler.load_state_dict(snapshots[index])
        scores = evaluator.score_generator(built.sampler, True, cfg.noise.dim, cfg.noise.name)
        full[name] = {k: scores.metrics[k] for k in REPORTED if k in scores.metrics}

    print()
    print(f"config: {' '.join(overrides)}")
    print(f"training_minutes: {clock['train'] / 60:.2f}")
    print(f"steps: {curve[-1][0]} of {last_step} (stopped by {stopped_by})")
    print(f"script_wall_minutes: {(time.perf_counter() - started) / 60:.2f}")
    print(f"scoring_minutes: {clock['score'] / 60:.2f}")
    print(f"scores: {len(curve)}")
    print(f"samples_per_score: {args.samples}")
    print(f"best_gen_accuracy: {max(a for _, _, a in curve):.4f}")
    print(f"final_gen_accuracy: {curve[-1][2]:.4f} (step {curve[-1][0]}); second classifier {second_acc[-1]:.4f}")
    for target in TARGETS:
        pct = round(target * 100)
        touch, held = first_touch(curve, target), held_from(curve, target)
        print(f"first_touch_{pct}: " + (f"{curve[touch][1]:.2f} (step {curve[touch][0]})" if touch is not None else "not reached"))
        if held is None:
            print(f"minutes_to_{pct}: not held to the end of the run ({curve[-1][1]:.2f} min)")
        else:
            step, minutes, acc = curve[held]
            print(f"minutes_to_{pct}: {minutes:.2f} (step {step}; gen_accuracy {acc:.4f}, second classifier {second_acc[held]:.4f})")
    for name, metrics in full.items():
        index = reported[name]
        line = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        held = all(a >= TARGETS[0] for _, _, a in curve[index:])
        print(f"full_eval_{name}: step {curve[index][0]}, {curve[index][1]:.2f} min "
              f"(97% held from here: {'yes' if held else 'no'}): {line}")


if __name__ == "__main__":
    run_script(main, "time_to_quality.py")
