"""Config validation: every value and combination is checked before anything trains or is logged.

Each problem becomes one line saying what is wrong and what to do; ``check``
raises ConfigError with all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig

from ganbench.losses import LOSSES
from ganbench.noise import PRIORS
from ganbench.stabilize import TRICKS

DATASET_NAMES = ("hoda", "mnist", "sign_digits")


class ConfigError(ValueError):
    """One or more invalid config values; the message has one line per problem."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int_at_least(problems: list[str], key: str, value: Any, low: int, hint: str = "") -> None:
    if not _is_int(value) or value < low:
        problems.append(f"{key}={value!r} is invalid: it must be an integer >= {low}{hint}")


def _number_in(problems: list[str], key: str, value: Any, low: float, high: float, low_open: bool = False, high_open: bool = False) -> None:
    ok = _is_number(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        problems.append(f"{key}={value!r} is invalid: it must be a number in {lo}{low}, {high}{hi}")


def config_problems(cfg: DictConfig) -> list[str]:
    """Every problem in ``cfg``, one line each ([] when the config is valid)."""
    p: list[str] = []
    _int_at_least(p, "seed", cfg.seed, 0)
    if cfg.device not in ("auto", "cpu", "cuda"):
        p.append(f"device={cfg.device!r} is invalid: choose auto, cpu or cuda")

    t = cfg.train
    _int_at_least(p, "train.epochs", t.epochs, 1)
    if t.max_steps is not None:
        _int_at_least(p, "train.max_steps", t.max_steps, 1, " or null")
    _int_at_least(p, "train.batch_size", t.batch_size, 1)
    _int_at_least(p, "train.d_steps", t.d_steps, 1)
    _int_at_least(p, "train.sample_every", t.sample_every, 1)
    _int_at_least(p, "train.checkpoint_every", t.checkpoint_every, 0)
    _int_at_least(p, "train.keep_checkpoints", t.keep_checkpoints, 1)
    _int_at_least(p, "train.collapse_patience", t.collapse_patience, 0)
    for key in ("compile", "channels_last", "deterministic"):
        if not isinstance(t[key], bool):
            p.append(f"train.{key}={t[key]!r} is invalid: choose true or false")
    if t.amp not in ("auto", True, False):
        p.append(f"train.amp={t.amp!r} is invalid: choose auto, true or false")
    if not isinstance(cfg.optim.fused, bool):
        p.append(f"optim.fused={cfg.optim.fused!r} is invalid: choose true or false")
    if t.resume not in ("auto", True, False):
        p.append(f"train.resume={t.resume!r} is invalid: choose auto, true or false")
    if t.num_threads is not None:
        _int_at_least(p, "train.num_threads", t.num_threads, 1, " or null")
    sched = t.lr_schedule
    if sched.name not in ("constant", "step", "cosine", "exponential"):
        p.append(f"train.lr_schedule.name={sched.name!r} is invalid: choose constant, step, cosine or exponential")
    elif sched.name == "step":
        _int_at_least(p, "train.lr_schedule.step_epochs", sched.step_epochs, 1)
        _number_in(p, "train.lr_schedule.gamma", sched.gamma, 0, 1, low_open=True)
    elif sched.name == "exponential":
        _number_in(p, "train.lr_schedule.gamma", sched.gamma, 0, 1, low_open=True)

    o = cfg.optim
    if o.name not in ("adam", "rmsprop", "sgd"):
        p.append(f"optim.name={o.name!r} is invalid: choose adam, rmsprop or sgd")
    for key in ("lr", "g_lr", "d_lr"):
        value = o[key]
        if not _is_number(value) or value <= 0:
            p.append(f"optim.{key}={value!r} is invalid: a learning rate must be a number > 0")
    if o.name == "adam":
        betas = list(o.betas) if o.betas is not None else []
        if len(betas) != 2 or not all(_is_number(b) and 0 <= b < 1 for b in betas):
            p.append(f"optim.betas={betas!r} is invalid: give two numbers in [0, 1), e.g. [0.5,0.999]")
    if o.momentum_final is not None:
        if o.name != "sgd":
            p.append(f"optim.momentum_final={o.momentum_final} needs optim.name=sgd (it is {o.name}); drop it or use SGD")
        _number_in(p, "optim.momentum_final", o.momentum_final, 0, 1, high_open=True)
        _int_at_least(p, "optim.momentum_ramp_epochs", o.momentum_ramp_epochs, 1)
    if not _is_number(o.weight_decay) or o.weight_decay < 0:
        p.append(f"optim.weight_decay={o.weight_decay!r} is invalid: it must be a number >= 0")

    if cfg.loss.name not in LOSSES:
        p.append(f"loss={cfg.loss.name!r} is invalid: choose one of {', '.join(LOSSES)}")
    elif "valid_losses" in cfg.model and cfg.loss.name not in cfg.model.valid_losses:
        valid = ", ".join(cfg.model.valid_losses)
        p.append(
            f"loss={cfg.loss.name} does not fit model={cfg.model.name}: its critic is trained for a "
            f"margin loss; choose loss={valid.replace(', ', ' or loss=')}, or another model"
        )
    if cfg.noise.name not in PRIORS:
        p.append(f"noise={cfg.noise.name!r} is invalid: choose one of {', '.join(PRIORS)}")
    _int_at_least(p, "noise.dim", cfg.noise.dim, 1)

    if cfg.dataset.name not in DATASET_NAMES:
        p.append(f"dataset={cfg.dataset.name!r} is invalid: choose one of {', '.join(DATASET_NAMES)}")
    _int_at_least(p, "dataset.image_size", cfg.dataset.image_size, 8)
    if cfg.data.limit is not None:
        _int_at_least(p, "data.limit", cfg.data.limit, 1, " or null")

    p += stabilize_problems(cfg.stabilize)
    if not p:
        p += model_problems(cfg)

    for key in ("uri", "experiment"):
        if not isinstance(cfg.tracking[key], str) or not cfg.tracking[key].strip():
            p.append(f"tracking.{key}={cfg.tracking[key]!r} is invalid: give a non-empty string")
    _int_at_least(p, "tracking.log_every", cfg.tracking.log_every, 1)
    _int_at_least(p, "tracking.flush_every", cfg.tracking.flush_every, 1)
    return p


def stabilize_problems(stabilize: Mapping[str, Any]) -> list[str]:
    """Problems in the ``stabilize`` section: unknown tricks, out-of-range values, conflicting pairs."""
    p: list[str] = []
    for name in stabilize:
        if name not in TRICKS:
            p.append(f"stabilize={name!r} is invalid: choose from {', '.join(TRICKS)}")
    if "smooth" in stabilize:
        _number_in(p, "stabilize.smooth.real_target", stabilize["smooth"]["real_target"], 0, 1, low_open=True)
    if "smooth_range" in stabilize:
        s = stabilize["smooth_range"]
        _number_in(p, "stabilize.smooth_range.real_low", s["real_low"], 0, 1)
        _number_in(p, "stabilize.smooth_range.fake_high", s["fake_high"], 0, 1)
        if _is_number(s["real_high"]) and _is_number(s["real_low"]) and s["real_high"] < s["real_low"]:
            p.append(f"stabilize.smooth_range.real_high={s['real_high']} is below real_low={s['real_low']}: swap them")
    if "smooth" in stabilize and "smooth_range" in stabilize:
        p.append("stabilize=[smooth,smooth_range] conflicts: both set the real target; keep one of them")
    if "noisy" in stabilize:
        _number_in(p, "stabilize.noisy.flip_prob", stabilize["noisy"]["flip_prob"], 0, 1)
    if "instance_noise" in stabilize:
        s = stabilize["instance_noise"]
        if not _is_number(s["std"]) or s["std"] < 0:
            p.append(f"stabilize.instance_noise.std={s['std']!r} is invalid: it must be a number >= 0")
        if s["anneal_steps"] is not None:
            _int_at_least(p, "stabilize.instance_noise.anneal_steps", s["anneal_steps"], 1, " or null")
    if "ttur" in stabilize:
        for key in ("d_lr", "g_lr"):
            value = stabilize["ttur"][key]
            if not _is_number(value) or value <= 0:
                p.append(f"stabilize.ttur.{key}={value!r} is invalid: a learning rate must be a number > 0")
    if "d_dropout" in stabilize:
        _number_in(p, "stabilize.d_dropout.p", stabilize["d_dropout"]["p"], 0, 1, high_open=True)
    return p


def model_problems(cfg: DictConfig) -> list[str]:
    """Build the nets once on the CPU: an image size or width the architecture cannot produce fails here."""
    from omegaconf import OmegaConf

    from ganbench.models import build_models

    from hydra.errors import InstantiationException

    size = cfg.dataset.image_size
    try:
        build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, size, 10)
    except (ValueError, TypeError, RuntimeError, InstantiationException) as exc:
        cause = exc.__cause__ if isinstance(exc, InstantiationException) and exc.__cause__ else exc
        reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        return [f"model={cfg.model.name} cannot make {size}x{size} images with this config ({reason}); "
                f"choose another dataset.image_size (28 and 32 work for every model) or change the model's widths"]
    return []


def check(cfg: DictConfig) -> None:
    """Raise ConfigError listing every problem in ``cfg``; return quietly when it is valid."""
    problems = config_problems(cfg)
    if problems:
        raise ConfigError("; ".join(problems) if len(problems) == 1 else "\n".join(problems))
