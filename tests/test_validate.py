"""Bad input is refused before anything trains or is logged: one clear line, a non-zero exit, no run left behind."""

import os
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

import ganbench.conf
from ganbench.validate import ConfigError, check, config_advice, config_problems, unknown_key_problems

EXPERIMENTS = Path(ganbench.conf.__file__).parent / "experiment"
PRESETS = sorted(f.relative_to(EXPERIMENTS).with_suffix("").as_posix() for f in EXPERIMENTS.rglob("*.yaml"))


def compose_cfg(*overrides: str):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.batch_size=0", "train.batch_size=0 is invalid: it must be an integer >= 1"),
        ("optim.lr=-0.1", "optim.lr=-0.1 is invalid: a learning rate must be a number > 0"),
        ("stabilize=noisy stabilize.noisy.flip_prob=1.5", "stabilize.noisy.flip_prob=1.5 is invalid: it must be a number in [0, 1]"),
        ("train.epochs=abc", "train.epochs='abc' is invalid: it must be an integer >= 1"),
        ("device=tpu", "device='tpu' is invalid: choose auto, cpu or cuda"),
        ("noise.dim=0", "noise.dim=0 is invalid"),
        ("stabilize=[smooth,smooth_range]", "conflicts: both set the real target"),
        ("model=wgan loss=bce", "loss=bce does not fit model=wgan"),
        ("train.resume=maybe", "train.resume='maybe' is invalid"),
        ("train.deterministic=sometimes", "train.deterministic='sometimes' is invalid: choose true or false"),
        ("train.amp=bf16", "train.amp='bf16' is invalid: choose auto, native, true or false"),
        ("train.keep_freed_memory=maybe", "train.keep_freed_memory='maybe' is invalid: choose true or false"),
        ("optim.momentum_final=0.7", "optim.momentum_final=0.7 needs optim.name=sgd (it is adam)"),
        ("optim.name=sgd optim.momentum_final=1.5", "optim.momentum_final=1.5 is invalid: it must be a number in [0, 1)"),
        ("train.lr_schedule.name=exponential train.lr_schedule.gamma=2", "train.lr_schedule.gamma=2 is invalid"),
        ("train.lr_schedule.name=cosine train.lr_schedule.min_factor=1", "train.lr_schedule.min_factor=1 is invalid"),
        ("optim.betas=[0.5,1.5]", "optim.betas=[0.5, 1.5] is invalid"),
        ("experiment=fast_hoda model.generator.bn_momentum=0", "model.generator.bn_momentum=0 is invalid: it must be a number in (0, 1]"),
        ("model.init=pylearn2", "model.init=pylearn2 needs model.init_range.generator: a weight range > 0"),
        ("model=seed_s4_gan model.init_range.discriminator=0", "model.init=pylearn2 needs model.init_range.discriminator"),
        ("stabilize=mode_seeking train.fake_labels=real", "stabilize=mode_seeking does not fit train.fake_labels=real"),
        ("optim.lr=nan", "optim.lr=nan is invalid: a learning rate must be a number > 0"),
        ("optim.eps=-1", "optim.eps=-1 is invalid: it must be a number in [0, 1]"),
        ("optim.name=rmsprop optim.alpha=-1", "optim.alpha=-1 is invalid"),
        ("optim.name=sgd optim.momentum=-1", "optim.momentum=-1 is invalid"),
        ("+model.conditioning=projection", "model.conditioning=projection does nothing for model=dcgan"),
        ("model=cgan +model.conditioning=cbn", "model.conditioning=cbn does nothing for model=cgan"),
        ("model=wgan model.weight_clip=-1", "model.weight_clip=-1 is invalid: give the critic's weight limit (> 0"),
        ("model=wgan model.weight_clip=0", "model.weight_clip=0 is invalid"),
        ("model=wgan_gp model.gradient_penalty=-3", "model.gradient_penalty=-3 is invalid: it must be a number >= 0"),
        ("model=acgan model.class_loss_weight=-1", "model.class_loss_weight=-1 is invalid"),
        ("model.generator.channels=[0]", "model=dcgan cannot be built or run with these settings (IndexError"),
        ("model.discriminator.kernel_size=0", "model=dcgan cannot be built or run with these settings"),
        ("model=gan model.discriminator.pieces=0", "model=gan cannot be built or run with these settings"),
        ("stabilize=noisy stabilize.noisy.flip_prob=0.05 train.batch_size=16",
         "stabilize.noisy.flip_prob=0.05 flips int(0.05 x 16) = 0 targets of a batch of train.batch_size=16: raise it to at least 0.0625"),
    ],
)
def test_invalid_values_are_named_with_what_to_do(override, message):
    cfg = compose_cfg(*override.split())
    problems = config_problems(cfg)
    assert any(message in p for p in problems), problems
    with pytest.raises(ConfigError):
        check(cfg)


def test_an_image_size_a_model_cannot_produce_is_refused_before_training(tmp_path):
    from ganbench.app import run

    cfg = compose_cfg("dataset.image_size=30", f"tracking.uri=sqlite:///{tmp_path}/m.db")
    with pytest.raises(ConfigError, match="model=dcgan cannot make 30x30 images"):
        run(cfg)
    assert not (tmp_path / "m.db").exists()


@pytest.mark.parametrize("override", ["eval.inception=on", "eval.inception_weights=/nonexistent/w.pth"])
def test_missing_inception_weights_asked_for_are_refused_before_training(tmp_path, monkeypatch, override):
    from ganbench.app import run
    from ganbench.evaluate.errors import EvalError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache, whatever this machine holds
    cfg = compose_cfg(override, f"tracking.uri=sqlite:///{tmp_path}/m.db")
    with pytest.raises(EvalError, match="Inception weights not found|no such file"):
        run(cfg)
    assert not (tmp_path / "m.db").exists()  # no run, let alone a FAILED one after a whole training


def test_the_default_config_is_valid():
    assert config_problems(compose_cfg()) == []
    assert config_advice(compose_cfg()) == []


def test_a_setting_outside_its_group_is_refused_naming_where_it_belongs():
    # HODA.md's EMA row once set a top-level `ema.decay` (its preset is @package _global_): nothing read it, and the row
    # trained at the default decay while its label said otherwise.
    [line] = config_problems(compose_cfg("stabilize=ema", "+ema.decay=0.9"))
    assert line.startswith("ema: is not a ganbench setting") and "did you mean stabilize.ema?" in line
    [line] = config_problems(compose_cfg("+colour=blue"))
    assert line.startswith("colour: ") and "did you mean" not in line


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_sets_only_settings_ganbench_reads(preset):
    assert unknown_key_problems(compose_cfg(f"experiment={preset}")) == []


def test_ema_scored_with_copied_batchnorm_statistics_is_valid_but_warned_about():
    # HODA.md: the EMA generator with G's copied statistics scored 32.0 fid_clf, re-estimated ones 11.7.
    [line] = config_advice(compose_cfg("stabilize=ema"))
    assert "eval.bn_mode=standing" in line and "\n" not in line
    assert config_problems(compose_cfg("stabilize=ema")) == []
    assert config_advice(compose_cfg("stabilize=ema", "eval.bn_mode=standing")) == []
    assert config_advice(compose_cfg("stabilize=[ema,diffaug]", "eval.enabled=false")) == []  # nothing scored


def test_ema_with_long_averaged_batchnorm_statistics_is_not_warned_about():
    # fast_hoda: G's statistics at momentum 0.01 average about as many batches as the 0.995 EMA averages updates, and
    # scored as re-estimated ones did (RESULTS.md); at the default momentum 0.1 the same EMA is still warned about.
    assert config_advice(compose_cfg("experiment=fast_hoda")) == []
    assert config_advice(compose_cfg("stabilize=ema", "stabilize.ema.decay=0.995", "+model.generator.bn_momentum=0.01")) == []
    [line] = config_advice(compose_cfg("stabilize=ema", "stabilize.ema.decay=0.995"))
    assert "model.generator.bn_momentum" in line
    assert config_advice(compose_cfg("experiment=fast_hoda", "stabilize.ema.decay=0.999"))  # 0.01 > 2 * 0.001


@pytest.fixture
def cli(run_cli, tmp_path):
    """``python -m ganbench ARGS`` in this process, its outputs under tmp_path."""

    def run(tmp_path: Path, *args: str, env_extra: dict | None = None, timeout: float = 300):
        saved = {k: os.environ.get(k) for k in (env_extra or {})}
        os.environ.update(env_extra or {})
        started = time.time()
        try:
            return run_cli("ganbench", *args, f"hydra.run.dir={tmp_path}/out"), time.time() - started
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    return run


def run_statuses(db: Path) -> list[str]:
    if not db.exists():
        return []
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    return [r.info.status for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def test_unknown_option_is_refused_by_hydra(cli, tmp_path):
    proc, _ = cli(tmp_path, "model=stylegan", f"tracking.uri=sqlite:///{tmp_path}/m.db")
    assert proc.returncode == 2
    assert "ganbench: error: In 'config': Could not find 'model/stylegan'" in proc.stderr
    assert "Available options" in proc.stderr and "dcgan" in proc.stderr  # Hydra's list of choices, kept
    assert "HYDRA_FULL_ERROR" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.db").exists()


def test_conditional_model_with_batch_larger_than_data_is_refused(cli, tmp_path):
    proc, _ = cli(tmp_path, "model=acgan", "data.limit=50", "train.batch_size=64", f"tracking.uri=sqlite:///{tmp_path}/m.db")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("ganbench: error: train.batch_size=64 x train.d_steps=1 needs 64 images")
    assert run_statuses(tmp_path / "m.db") == []


def test_truncated_hoda_file_names_the_file_and_offset_and_caches_nothing(cli, tmp_path, data_root):
    root = tmp_path / "data" / "hoda" / "DigitDB"
    root.mkdir(parents=True)
    source = (data_root / "hoda" / "DigitDB" / "RemainingSamples.cdb").read_bytes()
    (root / "RemainingSamples.cdb").write_bytes(source[: len(source) // 3])
    cache = tmp_path / "cache"
    proc, _ = cli(tmp_path, f"tracking.uri=sqlite:///{tmp_path}/m.db",
                  env_extra={"GANBENCH_DATA": str(tmp_path / "data"), "GANBENCH_CACHE": str(cache)})
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("ganbench: error:") and "RemainingSamples.cdb" in line and "offset" in line
    assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".pt", ".npz", ".npy")]
    assert run_statuses(tmp_path / "m.db") == []


def test_missing_data_folder_says_what_is_expected_and_how_to_get_it(cli, tmp_path):
    proc, _ = cli(tmp_path, f"tracking.uri=sqlite:///{tmp_path}/m.db", env_extra={"GANBENCH_DATA": str(tmp_path / "nowhere")})
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "GANBENCH_DATA" in line and "download" in line
    assert run_statuses(tmp_path / "m.db") == []


def test_unreachable_tracking_server_fails_fast_naming_the_uri(cli, tmp_path):
    proc, seconds = cli(tmp_path, "data.limit=256", "train.batch_size=64", "tracking.uri=http://127.0.0.1:9")
    assert proc.returncode == 2
    assert "http://127.0.0.1:9" in proc.stderr.strip().splitlines()[-1]
    assert seconds < 30


def test_a_trick_listed_twice_is_refused(cli, tmp_path):
    from ganbench.validate import override_problems

    assert override_problems(["stabilize=[smooth,noisy]", "model=dcgan"]) == []
    (problem,) = override_problems(["stabilize=[smooth,smooth]"])
    assert "lists smooth more than once" in problem
    proc, _ = cli(tmp_path, "stabilize=[smooth,smooth]", f"tracking.uri=sqlite:///{tmp_path}/m.db")
    assert proc.returncode == 2 and "lists smooth more than once" in proc.stderr
    assert not (tmp_path / "m.db").exists()


def test_a_presets_trick_settings_left_behind_by_a_stabilize_choice_are_refused():
    # Hydra swaps the stabilize option but keeps a preset's own stabilize.<trick> settings, which would still train.
    from ganbench.validate import leftover_trick_problems

    overrides = ["experiment=seed_s1_cgan_mnist", "stabilize=none"]
    cfg = compose_cfg(*overrides)
    assert dict(cfg.stabilize) == {"smooth": {"real_target": 0.9}}  # what would have trained
    (problem,) = leftover_trick_problems(cfg, overrides)
    assert "stabilize.smooth is still set" in problem and "~stabilize.smooth" in problem
    with pytest.raises(ConfigError, match="stabilize.smooth is still set"):
        check(cfg, overrides)

    for fine in (["experiment=seed_s1_cgan_mnist", "stabilize=[smooth,ema]"], ["experiment=seed_s1_cgan_mnist"],
                 ["experiment=fast_hoda", "stabilize=mode_seeking", "~stabilize.ema"],
                 ["experiment=seed_s1_cgan_mnist", "stabilize=none", "~stabilize.smooth"]):
        assert leftover_trick_problems(compose_cfg(*fine), fine) == [], fine
    # fast_hoda sets its EMA's decay: dropping the average takes ~stabilize.ema too (README says so).
    (problem,) = leftover_trick_problems(compose_cfg("experiment=fast_hoda", "stabilize=mode_seeking"), ["stabilize=mode_seeking"])
    assert "~stabilize.ema" in problem
    with pytest.raises(ConfigError) as refused:  # one line: not also the left-behind decay's missing `start`
        check(compose_cfg("experiment=fast_hoda", "stabilize=mode_seeking"), ["stabilize=mode_seeking"])
    assert str(refused.value) == problem


def test_a_bad_classifier_setting_is_refused_before_the_gan_trains(cli, tmp_path):
    # eval.classifier.* reached torch only when the classifier trained: after the GAN's steps, as a traceback and a FAILED run.
    proc, _ = cli(tmp_path, "data.limit=256", "train.max_steps=5", "eval.classifier.lr=-1", "eval.cas.enabled=false",
                  f"tracking.uri=sqlite:///{tmp_path}/m.db")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["ganbench: error: eval.classifier.lr=-1 is invalid: a learning rate must be a number > 0"]
    assert not (tmp_path / "m.db").exists() and run_statuses(tmp_path / "m.db") == []


def test_eval_problems_are_listed_with_the_rest_and_before_any_advice(cli, tmp_path):
    # config_advice reads eval.enabled: `off`, a string, read as true and warned about stabilize=ema before the error.
    proc, _ = cli(tmp_path, "stabilize=ema", "eval.enabled=off", "train.batch_size=0", f"tracking.uri=sqlite:///{tmp_path}/m.db")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "ganbench: error: train.batch_size=0 is invalid: it must be an integer >= 1",
        "ganbench: error: eval.enabled='off' is invalid: it must be true or false",
    ]
    assert not (tmp_path / "m.db").exists()
