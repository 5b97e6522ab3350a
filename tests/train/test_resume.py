"""Resume checkpoints: a run resumed mid-epoch from one matches the run that was never interrupted, step for step."""

import logging

import pytest
import torch
from hydra import compose, initialize_config_module

from ganbench.data import load_dataset
from ganbench.train.build import build
from ganbench.train.checkpoint import load_checkpoint, save_checkpoint
from ganbench.train.loop import Hooks, LoopState, fit
from ganbench.train.resume import restore, resume_payload
from ganbench.train.settings import TrainSettings

CPU = torch.device("cpu")
STEPS, CHECKPOINT_AT = 8, 3  # 64 images / batch 16: two epochs of 4 steps, resumed mid-epoch at an odd step
NARROW = ("model.generator.channels=[32,16]", "model.discriminator.channels=[16,32]")
# Tricks whose D terms carry state from one D update to the next (LeCam's anchors, lazy R1's counter, whose phase
# an odd step shows), beside stateless ones that resumed exactly before.
TECHNIQUES = {
    "none": ("stabilize=none",),
    "ema+diffaug": ("stabilize=[ema,diffaug]", "stabilize.ema.decay=0.9"),
    "bcr": ("stabilize=bcr",),
    "r1": ("stabilize=r1",),
    "r1-every-2": ("stabilize=r1", "stabilize.r1.every=2"),
    "lecam": ("stabilize=lecam",),
}


@pytest.fixture(scope="module")
def hoda_small(data_root, tmp_path_factory):
    import os

    os.environ.setdefault("GANBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    return load_dataset("hoda", "train", image_size=28, root=data_root, limit=64)


def settings_for(*overrides: str) -> TrainSettings:
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*NARROW, "train.d_steps=1", "seed=7", *overrides])
    return TrainSettings.from_config(cfg, "test")


def train(settings: TrainSettings, data, state: LoopState | None = None, ckpt: dict | None = None,
          on_step=None) -> tuple[dict[int, dict[str, float]], dict]:
    """Train to STEPS as ``run_training`` does (fresh, or from ``ckpt``); the losses of each step and G's weights."""
    torch.manual_seed(settings.seed)
    built = build(settings, data.num_classes, CPU, STEPS)
    if ckpt is not None:
        state, _, _ = restore(ckpt, built, CPU)
    losses: dict[int, dict[str, float]] = {}

    def record(state: LoopState, values: dict[str, float]) -> None:
        losses[state.step] = values
        if on_step is not None:
            on_step(state, built)

    fit(built.step, data.images, data.labels, 16, settings.epochs, STEPS, 1, torch.Generator().manual_seed(settings.seed),
        built.schedulers, Hooks(on_step=record), state=state, input_transforms=built.input_transforms)
    return losses, built.step.generator.state_dict()


def train_with_checkpoint(settings: TrainSettings, data, path) -> tuple[dict[int, dict[str, float]], dict]:
    """Train to STEPS, writing a resume checkpoint to ``path`` at CHECKPOINT_AT as the run's step hook does."""

    def save(state: LoopState, built) -> None:
        if state.step == CHECKPOINT_AT:
            save_checkpoint(path, resume_payload("run", settings.config, state, built, [], 0.0, CPU))

    return train(settings, data, on_step=save)


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_a_run_resumed_mid_epoch_matches_the_uninterrupted_one(technique, hoda_small, tmp_path):
    settings = settings_for(*TECHNIQUES[technique])
    uninterrupted, final = train_with_checkpoint(settings, hoda_small, tmp_path / "step3.pt")
    resumed, resumed_final = train(settings, hoda_small, ckpt=load_checkpoint(tmp_path / "step3.pt"))
    assert sorted(resumed) == list(range(CHECKPOINT_AT + 1, STEPS + 1))
    for step, values in resumed.items():
        assert values == uninterrupted[step], f"step {step}"
    assert all(torch.equal(resumed_final[k], final[k]) for k in final)


def test_a_checkpoint_without_regularizer_state_still_resumes_and_says_so(hoda_small, tmp_path, caplog):
    settings = settings_for("stabilize=lecam")
    train_with_checkpoint(settings, hoda_small, tmp_path / "step3.pt")
    old = load_checkpoint(tmp_path / "step3.pt")
    del old["regularizers"]  # as ganbench wrote checkpoints before it saved the terms' state
    with caplog.at_level(logging.WARNING, logger="ganbench"):
        resumed, _ = train(settings, hoda_small, ckpt=old)
    assert sorted(resumed) == list(range(CHECKPOINT_AT + 1, STEPS + 1))
    assert "holds no regularizer state" in caplog.text and "LeCam starts afresh" in caplog.text
