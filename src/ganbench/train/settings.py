"""What the trainer reads from the config, built once (``TrainSettings.from_config``) and typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


@dataclass(frozen=True)
class TrainSettings:
    """One run's training: the nets, loss, tricks and optimiser it builds and the loop it runs."""

    seed: int
    epochs: int
    max_steps: int | None
    batch_size: int
    d_steps: int
    sample_every: int
    checkpoint_every: int
    collapse_patience: int
    channels_last: bool
    compile: bool
    amp: Any  # "auto" | True | False
    lr_schedule: dict[str, Any]
    model: dict[str, Any]
    optim: dict[str, Any]
    loss: str
    stabilize: dict[str, Any]
    noise_prior: str
    z_dim: int
    image_size: int
    log_every: int
    run_name: str
    reuse_fakes: bool = False
    fake_labels: str = "uniform"  # "uniform" | "real": the labels the fakes are drawn for
    d_update: str = "joint"  # "joint" | "separate": one D optimizer step on both batches, or real then fake
    # The whole resolved config, stored with checkpoints so a run can be rebuilt and re-scored; never read here.
    config: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_config(cls, cfg: DictConfig, run_name: str) -> "TrainSettings":
        t = cfg.train
        return cls(
            seed=int(cfg.seed),
            epochs=int(t.epochs),
            max_steps=int(t.max_steps) if t.max_steps is not None else None,
            batch_size=int(t.batch_size),
            d_steps=int(t.d_steps),
            sample_every=int(t.sample_every),
            checkpoint_every=int(t.checkpoint_every),
            collapse_patience=int(t.collapse_patience),
            channels_last=bool(t.channels_last),
            compile=bool(t.compile),
            amp=t.amp,
            lr_schedule=_plain(t.lr_schedule),
            model=_plain(cfg.model),
            optim=_plain(cfg.optim),
            loss=str(cfg.loss.name),
            stabilize=_plain(cfg.stabilize),
            noise_prior=str(cfg.noise.name),
            z_dim=int(cfg.noise.dim),
            image_size=int(cfg.dataset.image_size),
            log_every=int(cfg.tracking.log_every),
            run_name=run_name,
            reuse_fakes=bool(t.get("reuse_fakes", False)),
            fake_labels=str(t.get("fake_labels", "uniform")),
            d_update=str(t.get("d_update", "joint")),
            config=_plain(cfg),
        )

    def steps_per_epoch(self, n_images: int) -> int:
        """Generator steps in one epoch: each takes ``d_steps`` full batches (the last incomplete one is dropped)."""
        return (n_images // self.batch_size) // self.d_steps

    def total_steps(self, n_images: int) -> int:
        """Generator steps the run will take."""
        steps = self.steps_per_epoch(n_images) * self.epochs
        return min(steps, self.max_steps) if self.max_steps else steps
