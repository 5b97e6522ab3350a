"""Config validation: every value and combination is checked before anything trains or is logged.

Each problem becomes one line saying what is wrong and what to do; ``check``
raises ConfigError with all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from ganbench.checks import int_at_least, is_number, number_in
from ganbench.data import DATASETS, DEFAULT_PREPROCESS, preprocess_problem
from ganbench.errors import ConfigError, first_line
from ganbench.evaluate.settings import eval_config_problems
from ganbench.losses import LOSSES
from ganbench.models import INITS, build_models
from ganbench.models.conditioning import CONDITIONINGS
from ganbench.noise import PRIORS
from ganbench.stabilize import TrickSet
from ganbench.train.step import D_UPDATES

__all__ = ["ConfigError", "check", "config_problems", "override_problems"]


# config.yaml's own keys and its groups' packages: nothing else at the top is read by any part of ganbench.
TOP_LEVEL_KEYS = frozenset({"seed", "device", "preset", "fresh", "data", "train", "optim", "tracking",
                            "dataset", "noise", "loss", "model", "stabilize", "eval", "hydra"})


def unknown_key_problems(cfg: DictConfig) -> list[str]:
    """Top-level keys nothing reads, one line each: a preset's setting written outside its group (``ema.decay``
    for ``stabilize.ema.decay`` in an ``@package _global_`` file) would otherwise be dropped without a word."""
    p = []
    for key in sorted(set(cfg.keys()) - TOP_LEVEL_KEYS):
        owners = [group for group in sorted(TOP_LEVEL_KEYS) if isinstance(cfg.get(group), DictConfig) and key in cfg[group]]
        hint = f"did you mean {owners[0]}.{key}? " if owners else ""
        p.append(f"{key}: is not a ganbench setting, so it would change nothing; {hint}move it under its group "
                 f"(e.g. stabilize.<trick>, train., optim.) or drop it")
    return p


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The run's config as plain containers (Hydra's own section left out), for checks that live outside validate."""
    return {key: OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value
            for key, value in cfg.items() if key != "hydra"}


def config_problems(cfg: DictConfig) -> list[str]:
    """Every problem in ``cfg``, one line each ([] when the config is valid)."""
    p: list[str] = unknown_key_problems(cfg)
    int_at_least(p, "seed", cfg.seed, 0)
    if cfg.device not in ("auto", "cpu", "cuda"):
        p.append(f"device={cfg.device!r} is invalid: choose auto, cpu or cuda")

    if not isinstance(cfg.get("fresh", False), bool):
        p.append(f"fresh={cfg.fresh!r} is invalid: choose true or false")
    elif cfg.get("fresh") and cfg.train.resume is True:
        p.append("fresh=true and train.resume=true contradict each other: a fresh run never resumes; drop one")
    t = cfg.train
    int_at_least(p, "train.epochs", t.epochs, 1)
    if t.max_steps is not None:
        int_at_least(p, "train.max_steps", t.max_steps, 1, " or null")
    int_at_least(p, "train.batch_size", t.batch_size, 1)
    int_at_least(p, "train.d_steps", t.d_steps, 1)
    int_at_least(p, "train.sample_every", t.sample_every, 1)
    int_at_least(p, "train.checkpoint_every", t.checkpoint_every, 0)
    int_at_least(p, "train.keep_checkpoints", t.keep_checkpoints, 1)
    int_at_least(p, "train.collapse_patience", t.collapse_patience, 0)
    for key in ("compile", "channels_last", "deterministic", "reuse_fakes", "keep_freed_memory"):
        if not isinstance(t[key], bool):
            p.append(f"train.{key}={t[key]!r} is invalid: choose true or false")
    if t.fake_labels not in ("uniform", "real"):
        p.append(f"train.fake_labels={t.fake_labels!r} is invalid: choose uniform or real")
    if t.d_update not in tuple(D_UPDATES):
        p.append(f"train.d_update={t.d_update!r} is invalid: choose {' or '.join(D_UPDATES)}")
    if t.amp not in ("auto", "native", True, False):
        p.append(f"train.amp={t.amp!r} is invalid: choose auto, native, true or false")
    if not isinstance(cfg.optim.fused, bool):
        p.append(f"optim.fused={cfg.optim.fused!r} is invalid: choose true or false")
    if t.resume not in ("auto", True, False):
        p.append(f"train.resume={t.resume!r} is invalid: choose auto, true or false")
    if t.num_threads is not None:
        int_at_least(p, "train.num_threads", t.num_threads, 1, " or null")
    sched = t.lr_schedule
    if sched.name not in ("constant", "step", "cosine", "exponential"):
        p.append(f"train.lr_schedule.name={sched.name!r} is invalid: choose constant, step, cosine or exponential")
    elif sched.name == "step":
        int_at_least(p, "train.lr_schedule.step_epochs", sched.step_epochs, 1)
        number_in(p, "train.lr_schedule.gamma", sched.gamma, 0, 1, low_open=True)
    elif sched.name == "exponential":
        number_in(p, "train.lr_schedule.gamma", sched.gamma, 0, 1, low_open=True)
    elif sched.name == "cosine":
        number_in(p, "train.lr_schedule.min_factor", sched.min_factor, 0, 1, high_open=True)

    o = cfg.optim
    if o.name not in ("adam", "rmsprop", "sgd"):
        p.append(f"optim.name={o.name!r} is invalid: choose adam, rmsprop or sgd")
    for key in ("lr", "g_lr", "d_lr"):
        value = o[key]
        if not is_number(value) or value <= 0:
            p.append(f"optim.{key}={value!r} is invalid: a learning rate must be a number > 0")
    if o.name == "adam":
        betas = list(o.betas) if o.betas is not None else []
        if len(betas) != 2 or not all(is_number(b) and 0 <= b < 1 for b in betas):
            p.append(f"optim.betas={betas!r} is invalid: give two numbers in [0, 1), e.g. [0.5,0.999]")
    if o.momentum_final is not None:
        if o.name != "sgd":
            p.append(f"optim.momentum_final={o.momentum_final} needs optim.name=sgd (it is {o.name}); drop it or use SGD")
        number_in(p, "optim.momentum_final", o.momentum_final, 0, 1, high_open=True)
        int_at_least(p, "optim.momentum_ramp_epochs", o.momentum_ramp_epochs, 1)
    if not is_number(o.weight_decay) or o.weight_decay < 0:
        p.append(f"optim.weight_decay={o.weight_decay!r} is invalid: it must be a number >= 0")
    # What torch's optimisers would refuse only once the nets are built, after the run is logged.
    if o.name in ("adam", "rmsprop"):
        number_in(p, "optim.eps", o.eps, 0, 1)
    if o.name == "rmsprop":
        number_in(p, "optim.alpha", o.alpha, 0, 1, high_open=True)
    if o.name == "sgd":
        number_in(p, "optim.momentum", o.momentum, 0, 1, high_open=True)

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
    int_at_least(p, "noise.dim", cfg.noise.dim, 1)

    if cfg.dataset.name not in DATASETS:
        p.append(f"dataset={cfg.dataset.name!r} is invalid: choose one of {', '.join(DATASETS)}")
    int_at_least(p, "dataset.image_size", cfg.dataset.image_size, 8)
    problem = preprocess_problem(cfg.dataset.name, cfg.dataset.get("preprocess", DEFAULT_PREPROCESS))
    if problem is not None:
        p.append(problem)
    if not isinstance(cfg.dataset.get("train_with_test", False), bool):
        p.append(f"dataset.train_with_test={cfg.dataset.train_with_test!r} is invalid: choose true or false")
    if cfg.data.limit is not None:
        int_at_least(p, "data.limit", cfg.data.limit, 1, " or null")

    tricks = TrickSet(OmegaConf.to_container(cfg.stabilize, resolve=True))  # type: ignore[arg-type]
    trick_problems = tricks.problems()
    p += trick_problems
    conditioning = cfg.model.get("conditioning")
    if conditioning is not None and conditioning not in CONDITIONINGS:
        p.append(f"model.conditioning={conditioning!r} is invalid: choose {', '.join(CONDITIONINGS)}")
    elif conditioning is not None and not any("conditioning" in (cfg.model.get(net) or {}) for net in ("generator", "discriminator")):
        # Hydra suggests `+model.conditioning=...` for a model without the key; its nets would ignore it.
        p.append(f"model.conditioning={conditioning} does nothing for model={cfg.model.name}, whose nets take no "
                 f"conditioning choice; use model=cgan_conv, acgan, cgan_projection or sngan, or drop it")
    if not trick_problems:
        p += tricks.fit_problems(plain(cfg))
    init = cfg.model.get("init")
    if init is not None and init not in INITS:
        p.append(f"model.init={init!r} is invalid: choose null (PyTorch's defaults), {' or '.join(INITS)}")
    if init == "pylearn2":
        ranges = cfg.model.get("init_range") or {}
        for net in ("generator", "discriminator"):
            if not isinstance(ranges.get(net), (int, float)) or ranges.get(net) <= 0:
                p.append(f"model.init=pylearn2 needs model.init_range.{net}: a weight range > 0, e.g. 0.05")
    for net in ("generator", "discriminator"):
        if cfg.model[net].get("bn_momentum") is not None:  # BatchNorm's running-statistics weight of each batch
            number_in(p, f"model.{net}.bn_momentum", cfg.model[net].bn_momentum, 0, 1, low_open=True)
    p += model_number_problems(cfg.model)
    if t.d_update == "separate" and not trick_problems and cfg.loss.name in LOSSES:  # the tricks' terms can be built
        p += separate_update_problems(cfg, tricks)
    if not p:
        p += model_problems(cfg)

    for key in ("uri", "experiment"):
        if not isinstance(cfg.tracking[key], str) or not cfg.tracking[key].strip():
            p.append(f"tracking.{key}={cfg.tracking[key]!r} is invalid: give a non-empty string")
    int_at_least(p, "tracking.log_every", cfg.tracking.log_every, 1)
    int_at_least(p, "tracking.flush_every", cfg.tracking.flush_every, 1)
    if not isinstance(cfg.tracking.get("log_model", True), bool):
        p.append(f"tracking.log_model={cfg.tracking.log_model!r} is invalid: choose true or false")
    every = cfg.tracking.get("system_metrics")
    if every is not None and (not is_number(every) or every < 0):
        p.append(f"tracking.system_metrics={every!r} is invalid: give seconds between samples (> 0), or 0 / null for off")
    # With the rest, so one command lists every problem, and no advice (config_advice reads eval.*) comes before them.
    p += eval_config_problems(OmegaConf.to_container(cfg.eval, resolve=True))  # type: ignore[arg-type]
    return p


def separate_update_problems(cfg: DictConfig, tricks: TrickSet) -> list[str]:
    """What ``train.d_update=separate`` (a real-only, then a fake-only D step) cannot do: terms that need both batches."""
    p, fix = [], "use train.d_update=joint"
    if cfg.model.get("gradient_penalty"):
        p.append(f"train.d_update=separate does not fit model={cfg.model.name}: its gradient penalty interpolates "
                 f"real and fake images, which separate real and fake D steps never hold together; {fix}")
    for trick in tricks.tricks:
        if trick.regularizer() is not None and not trick.real_only_regularizer:
            p.append(f"train.d_update=separate does not fit stabilize={trick.name}: its term needs the real and the "
                     f"fake batch together; {fix} or drop the trick")
    if LOSSES[cfg.loss.name].d_term is None:
        p.append(f"train.d_update=separate does not fit loss={cfg.loss.name}: its D loss does not split into a real "
                 f"and a fake term; {fix}")
    return p


def model_number_problems(model: DictConfig) -> list[str]:
    """The model's own loss settings: WGAN's clip, WGAN-GP's penalty weight, ACGAN's class-loss weight."""
    p: list[str] = []
    clip = model.get("weight_clip")
    if clip is not None and (not is_number(clip) or clip <= 0):  # a clip of -1 would set every weight to -1
        p.append(f"model.weight_clip={clip!r} is invalid: give the critic's weight limit (> 0, e.g. 0.01), or null for none")
    for key, example in (("gradient_penalty", "10"), ("class_loss_weight", "1")):
        value = model.get(key)
        if value is not None and (not is_number(value) or value < 0):  # a negative weight rewards what it should punish
            p.append(f"model.{key}={value!r} is invalid: it must be a number >= 0 (e.g. {example})")
    return p


def build_and_run(model: dict, z_dim: int, size: int) -> None:
    """Build G and D and pass two samples through both: a width, kernel or piece count they cannot use fails here.

    In eval mode and with a generator of its own, so validation draws nothing from the run's random stream
    (dropout in train mode would).
    """
    generator, discriminator = build_models(model, z_dim, size, 10)
    z = torch.randn(2, z_dim, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1])
    with torch.no_grad():
        images = generator.eval()(z, labels)
        if tuple(images.shape) != (2, 1, size, size):
            raise ValueError(f"G draws images of shape {tuple(images.shape)[1:]}, not (1, {size}, {size})")
        discriminator.eval()(images, labels)


BUILD_ERRORS = (ValueError, TypeError, RuntimeError, IndexError, ZeroDivisionError, InstantiationException)


def model_problems(cfg: DictConfig) -> list[str]:
    """Build the nets once on the CPU and run them on two samples: a config the architecture cannot use fails here.

    The error blames the image size only when the same model works at 28x28; otherwise its own settings.
    """
    size, model = cfg.dataset.image_size, OmegaConf.to_container(cfg.model, resolve=True)
    try:
        build_and_run(model, cfg.noise.dim, size)  # type: ignore[arg-type]
    except BUILD_ERRORS as exc:
        cause = exc.__cause__ if isinstance(exc, InstantiationException) and exc.__cause__ else exc
        reason = first_line(f"{type(cause).__name__}: {cause}", 1000)
        if size != 28 and works_at(model, cfg.noise.dim, 28):  # type: ignore[arg-type]
            return [f"model={cfg.model.name} cannot make {size}x{size} images with this config ({reason}); "
                    f"choose another dataset.image_size (28 and 32 work for every model) or change the model's widths"]
        return [f"model={cfg.model.name} cannot be built or run with these settings ({reason}); "
                "check the model.* overrides (widths, kernel sizes, pieces, norms)"]
    return []


def works_at(model: dict, z_dim: int, size: int) -> bool:
    """Whether the model builds and runs at ``size``."""
    try:
        build_and_run(model, z_dim, size)
    except BUILD_ERRORS:
        return False
    return True


def override_problems(overrides: Sequence[str]) -> list[str]:
    """Problems Hydra's composition hides: a trick listed twice (``stabilize=[smooth,smooth]``) composes to one."""
    p = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.key_or_group != "stabilize" or not isinstance(override.value(), list):
            continue
        names = [str(v) for v in override.value()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            p.append(f"stabilize=[{','.join(names)}] lists {', '.join(repeated)} more than once; a trick is applied once, name it once")
    return p


def leftover_tricks(cfg: DictConfig, overrides: Sequence[str]) -> tuple[str, list[str]]:
    """The command line's ``stabilize=`` choice and the tricks with settings it does not name: a preset's, left behind.

    Hydra replaces the ``stabilize`` group's option but merges a preset's own ``stabilize.<trick>`` settings on
    top, so ``experiment=seed_s1_cgan_mnist stabilize=none`` would still train with seed S1's ``smooth``.
    """
    chosen = None
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.key_or_group == "stabilize" and not override.is_delete():
            value = override.value()
            chosen = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if chosen is None:
        return "", []
    choice = f"[{','.join(chosen)}]" if len(chosen) != 1 else chosen[0]
    return choice, [name for name in (cfg.get("stabilize") or {}) if name not in chosen]


def leftover_trick_problems(cfg: DictConfig, overrides: Sequence[str]) -> list[str]:
    """One line for each trick whose settings the command line's ``stabilize=`` choice left behind."""
    choice, names = leftover_tricks(cfg, overrides)
    return [
        f"stabilize.{name} is still set (by a preset or an override) but stabilize={choice} does not choose it: "
        f"add {name} to the stabilize list to keep it, or drop its settings with ~stabilize.{name}"
        for name in names
    ]


def config_advice(cfg: DictConfig) -> list[str]:
    """Valid but doubtful combinations, one line each: the run goes ahead as asked, with a warning."""
    return TrickSet(OmegaConf.to_container(cfg.stabilize, resolve=True)).advice(plain(cfg))  # type: ignore[arg-type]


def check(cfg: DictConfig, overrides: Sequence[str] = ()) -> None:
    """Raise ConfigError listing every problem in ``cfg`` (and its command-line ``overrides``); quiet when valid."""
    # A left-behind trick's settings are usually incomplete (a preset sets one key): its own line says what to do,
    # and the invalid-setting lines those settings would also cause are noise.
    left = tuple(f"stabilize.{name}." for name in leftover_tricks(cfg, overrides)[1])
    problems = (override_problems(overrides) + leftover_trick_problems(cfg, overrides)
                + [p for p in config_problems(cfg) if not p.startswith(left)])
    if problems:
        raise ConfigError("; ".join(problems) if len(problems) == 1 else "\n".join(problems))
