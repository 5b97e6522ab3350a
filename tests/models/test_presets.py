"""The seed presets (conf/experiment/seed_*.yaml): each composes and validates, builds the nets its report
describes (parameter counts of the reports' layer tables), and trains for real into a FINISHED MLflow run.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.errors import InstantiationException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from torch import nn

import ganbench.conf
from ganbench import app, validate
from ganbench.models import build_models, keras_param_count
from ganbench.stabilize import TrickSet

PRESETS = (
    "seed_s0a_dcgan_sign",
    "seed_s0b_dcgan_sign_stable",
    "seed_s0c_acgan_sign",
    "seed_s0d_wgan_sign",
    "seed_s1_cgan_mnist",
    "seed_s2_dcgan_mnist_normal",
    "seed_s2_dcgan_mnist_uniform",
    "seed_s3_cgan_hoda",
    "seed_s4_gan_mnist",
)
CONDITIONAL_G = {"seed_s0c_acgan_sign", "seed_s1_cgan_mnist", "seed_s3_cgan_hoda"}
NUM_CLASSES = 10


def compose_preset(name: str, overrides: tuple[str, ...] = (), hydra_node: bool = False) -> DictConfig:
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=[f"experiment={name}", *overrides], return_hydra_config=hydra_node)


def build_preset(cfg: DictConfig) -> tuple[nn.Module, nn.Module]:
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    generator, discriminator = build_models(model_cfg, cfg.noise.dim, cfg.dataset.image_size, NUM_CLASSES)
    return generator, TrickSet(OmegaConf.to_container(cfg.stabilize, resolve=True)).discriminator(discriminator)


def keras_rows(module: nn.Module) -> list[int]:
    """The Param # column of a Keras summary: one entry per weighted layer, in order (BatchNorm with its statistics)."""
    rows = []
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            rows.append(sum(p.numel() for p in m.parameters()))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            rows.append(keras_param_count(m))
    return rows


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- composition and shapes ------------------------------------------------------------------------


def test_every_seed_preset_is_covered() -> None:
    experiments = Path(ganbench.conf.__file__).parent / "experiment"
    assert {path.stem for path in experiments.glob("seed_*.yaml")} == set(PRESETS)


def test_fast_hoda_is_the_benchmarked_projection_gan_on_hoda() -> None:
    # What benchmarks/time_to_quality.py measured (benchmarks/RESULTS.md): projection D, Hoda 28x28, batch 32, fakes reused,
    # mode seeking at weight 0.25, G and D half the default widths, Adam at 8e-4 for G and D on a cosine over the
    # 15 epochs, G's BatchNorm statistics averaged with momentum 0.01, an EMA of G at decay 0.995, bf16 where the
    # hardware has it.
    cfg = compose_preset("fast_hoda", hydra_node=True)
    validate.check(cfg)
    assert (cfg.model.name, cfg.dataset.name, cfg.dataset.image_size, cfg.train.batch_size) == ("cgan_projection", "hoda", 28, 32)
    assert cfg.model.conditioning == "projection" and cfg.train.reuse_fakes is True
    assert cfg.preset == "fast_hoda" and TrickSet(cfg.stabilize).names == ["mode_seeking", "ema"] and cfg.train.amp == "native"
    assert OmegaConf.to_container(cfg.stabilize) == {"mode_seeking": {"weight": 0.25, "eps": 1e-5}, "ema": {"decay": 0.995, "start": 0}}
    assert (cfg.optim.name, cfg.optim.g_lr, cfg.optim.d_lr) == ("adam", 8e-4, 8e-4)
    assert (cfg.train.lr_schedule.name, cfg.train.lr_schedule.min_factor, cfg.train.epochs) == ("cosine", 0.0, 15)
    assert (list(cfg.model.generator.channels), list(cfg.model.discriminator.channels)) == ([64, 32], [32, 64])
    generator, _ = build_preset(cfg)
    assert generator(torch.randn(4, cfg.noise.dim), torch.arange(4)).shape == (4, 1, 28, 28)
    assert {m.momentum for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)} == {0.01}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_composes_validates_and_builds(name: str) -> None:
    cfg = compose_preset(name, hydra_node=True)
    validate.check(cfg)
    # model.name is what MLflow tags the run with; it must say which model file was used.
    assert cfg.model.name == cfg.hydra.runtime.choices.model

    generator, discriminator = build_preset(cfg)
    n, size = 4, cfg.dataset.image_size
    labels = torch.arange(n) % NUM_CLASSES
    generator.eval()
    discriminator.eval()
    with torch.no_grad():
        images = generator(torch.randn(n, cfg.noise.dim), labels)
        logits, class_logits = discriminator(images, labels)
    assert images.shape == (n, 1, size, size)
    assert images.abs().max() <= 1.0  # tanh, the range of ganbench's data
    assert logits.shape == (n,)
    if "class_loss_weight" in cfg.model:  # ACGAN: D also names the class
        assert class_logits is not None and class_logits.shape == (n, NUM_CLASSES)
    else:
        assert class_logits is None
    assert bool(getattr(generator, "conditional", False)) == (name in CONDITIONAL_G)


def test_preset_refuses_an_image_size_its_architecture_cannot_make() -> None:
    # Hydra wraps the model's ValueError; the message still names the size that works.
    cfg = compose_preset("seed_s0d_wgan_sign", ("dataset.image_size=32",))
    with pytest.raises(InstantiationException, match="dataset.image_size=28"):
        build_preset(cfg)
    cfg = compose_preset("seed_s2_dcgan_mnist_normal", ("dataset.image_size=28",))
    with pytest.raises(InstantiationException, match="dataset.image_size=32"):
        build_preset(cfg)


# --- parameter counts of the reports' layer tables (000_28c49e0633e2e0e7.txt) -------------------------


def test_s0a_dcgan_matches_the_report_tables() -> None:
    generator, discriminator = build_preset(compose_preset("seed_s0a_dcgan_sign"))
    assert keras_rows(generator) == [1_638_400, 65_536, 819_200, 512, 204_800, 256, 1_600]
    assert keras_param_count(generator) == 2_730_304
    assert trainable(generator) == 2_697_152  # "Trainable params"; the other 33,152 are BN statistics
    assert keras_rows(discriminator) == [1_664, 204_928, 8_193]
    assert keras_param_count(discriminator) == 214_785


def test_s0b_uses_s0a_nets() -> None:
    generator, discriminator = build_preset(compose_preset("seed_s0b_dcgan_sign_stable"))
    assert (keras_param_count(generator), keras_param_count(discriminator)) == (2_730_304, 214_785)


def test_s0c_acgan_matches_the_report_tables() -> None:
    generator, discriminator = build_preset(compose_preset("seed_s0c_acgan_sign"))
    assert keras_rows(generator) == [1_056_768, 262_272, 512, 262_272, 512, 6_273]
    assert keras_param_count(generator) == 1_588_609
    assert trainable(generator) == 1_588_097
    # The table lists the trunk and the real/fake score; its first row's count is blank, and 388,097 minus
    # the other rows leaves 320, a 3x3 conv from 1 channel. The ACGAN class head, Dense(256 -> 10), is not in it.
    trunk = keras_param_count(discriminator, exclude=("class_head",))
    assert keras_rows(discriminator)[:-1] == [320, 18_496, 73_856, 295_168, 257]
    assert trunk == 388_097
    assert keras_param_count(discriminator) - trunk == 2_570


def test_s0d_wgan_matches_the_report_tables() -> None:
    generator, critic = build_preset(compose_preset("seed_s0d_wgan_sign"))
    table_g = [316_736, 409_856, 1_024, 819_328, 512, 131_136, 256, 257]  # the table gives no total
    assert keras_rows(generator) == table_g
    assert keras_param_count(generator) == sum(table_g) == 1_679_105
    # The critic's table ends at Flatten (4096); the Dense(1) after it has 4,097 parameters.
    table_c = [160, 4_640, 128, 18_496, 256, 73_856, 512, 131_328, 1_024]
    assert keras_rows(critic.features) == table_c
    assert keras_param_count(critic) == sum(table_c) + 4_097


# --- a couple of real training steps per preset ------------------------------------------------------


@pytest.fixture(scope="session")
def tracking_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MLflow store and one data cache (``cache/``) for every preset's run (creating either is the slow part)."""
    return tmp_path_factory.mktemp("presets")


@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_on_real_data(
    name: str, tracking_dir: Path, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # whatever a run writes relative to the working directory stays in tmp
    # Per test, not for the session: a session-long variable outlived this module and sent later modules' tests
    # (those run after it under pytest-xdist) to this cache instead of the session's, where their classifier was.
    monkeypatch.setenv("GANBENCH_CACHE", str(tracking_dir / "cache"))
    uri = f"sqlite:///{tracking_dir / 'mlflow.db'}"
    # Small batches: S0d's generator alone costs ~0.3 GFLOP per image. S0b's noisy labels flip int(0.05 x batch)
    # targets: its batch is the smallest that flips one (a batch that flips none is refused as a no-op trick).
    flip_prob = (compose_preset(name, ()).get("stabilize") or {}).get("noisy", {}).get("flip_prob")
    batch = max(8, math.ceil(1 / flip_prob)) if flip_prob else 8
    cfg = compose_preset(
        name,
        (
            f"data.root={data_root}",
            "data.limit=256",
            "train.max_steps=2",
            f"train.batch_size={batch}",
            "train.epochs=1",
            "eval.enabled=false",
            f"tracking.uri={uri}",
            "tracking.experiment=test_presets",
        ),
    )
    result = app.run(cfg)

    run = MlflowClient(tracking_uri=uri).get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["model"] == cfg.model.name
    assert result["steps"] == 2
    for key in ("d_loss", "g_loss"):
        assert math.isfinite(run.data.metrics[key])
