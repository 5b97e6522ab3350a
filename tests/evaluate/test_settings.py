"""EvalSettings: the eval config read, typed and checked once."""

from __future__ import annotations

import dataclasses

import pytest

from ganbench.errors import ConfigError
from ganbench.evaluate import EvalSettings
from ganbench.evaluate.settings import ClassifierSettings, InceptionSettings, MetricSettings


def test_eval_config_is_validated(compose_cfg):
    EvalSettings.from_config(compose_cfg())
    with pytest.raises(ConfigError) as info:
        EvalSettings.from_config(compose_cfg("eval.num_samples=1", "eval.inception=maybe", "eval.reference_split=val", "eval.modes_min_share=0", "eval.cas.enabled=false"))
    lines = str(info.value).splitlines()
    assert len(lines) == 4 and any("eval.inception" in line for line in lines)
    with pytest.raises(ConfigError, match="eval.cas.batch_size"):
        EvalSettings.from_config(compose_cfg("eval.num_samples=100"))


def test_eval_due_follows_eval_every(compose_cfg):
    default = EvalSettings.from_config(compose_cfg())
    assert default.enabled is True and default.every is None and not default.due(3)
    settings = EvalSettings.from_config(compose_cfg("eval.every=2"))
    assert settings.every == 2 and [settings.due(e) for e in (1, 2, 3, 4)] == [False, True, False, True]
    assert not EvalSettings.from_config(compose_cfg("eval.every=2", "eval.enabled=false")).due(2)


def test_settings_are_typed_and_frozen(compose_cfg, tmp_path):
    cfg = compose_cfg("dataset=sign_digits", "noise=uniform", "eval.inception=off", "eval.classifier.epochs=3", f"data.root={tmp_path}", "tracking.experiment=exp")
    settings = EvalSettings.from_config(cfg)
    assert settings.dataset["name"] == "sign_digits" and settings.dataset["image_size"] == 32 and isinstance(settings.dataset, dict)
    assert settings.data_root == str(tmp_path) and settings.experiment == "exp"
    assert settings.noise_name == "uniform" and settings.noise_dim == cfg.noise.dim
    assert settings.inception == InceptionSettings(mode="off", weights=None, extractor="inception-v3-compat", num_samples=None)
    assert isinstance(settings.metrics, MetricSettings) and settings.metrics.kid_subsets == 100
    assert isinstance(settings.classifier, ClassifierSettings) and settings.classifier.epochs == 3 and settings.classifier_path is None
    # CAS: its own section's keys over the defaults, seeded by eval.seed.
    assert settings.cas_enabled and settings.cas.width == 16 and settings.cas.rotation_deg == 0.0 and settings.cas.seed == settings.seed
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.num_samples = 1  # type: ignore[misc]


def test_yaml_booleans_for_inception_read_as_on_and_off(compose_cfg):
    assert EvalSettings.from_config(compose_cfg("eval.inception=true")).inception.mode == "on"
    assert EvalSettings.from_config(compose_cfg("eval.inception=false")).inception.mode == "off"


def test_the_classifier_command_config_has_no_noise_and_still_reads(compose_cfg):
    settings = EvalSettings.from_config(compose_cfg("dataset=mnist", config="classifier"))
    assert settings.dataset["name"] == "mnist" and settings.noise_name is None and settings.noise_dim is None


def test_rescoring_settings_take_the_runs_dataset_and_noise_explicitly(compose_cfg):
    command = EvalSettings.from_config(compose_cfg("eval.num_samples=500", "eval.cas.enabled=false"))
    run = command.with_run({"name": "mnist", "image_size": 32, "download": False}, "uniform", 64, "other")
    assert (run.dataset["name"], run.dataset["image_size"], run.noise_name, run.noise_dim, run.experiment) == ("mnist", 32, "uniform", 64, "other")
    assert run.scoring() == command.scoring()  # the command's eval settings, untouched
    assert command.dataset["name"] == "hoda"  # the command's own settings are not edited


def test_the_new_metric_settings_are_read_and_each_problem_is_one_line(compose_cfg):
    settings = EvalSettings.from_config(compose_cfg())
    assert settings.bn_mode == "eval" and settings.standing_steps == 10 and settings.memorization_train_limit is None
    m = settings.metrics
    assert (m.density_neighborhood, m.memorization_quantile, m.mifid_cosine_eps, m.fid_inf) == (5, 0.1, 0.1, False)
    bad = ("eval.bn_mode=train", "eval.memorization_quantile=1", "eval.density_neighborhood=0", "eval.mifid_cosine_eps=0",
           "eval.fid_inf=true", "eval.fid_inf_min_samples=20000", "eval.memorization_train_limit=1", "eval.standing_steps=0",
           "eval.classifier.arch=resnet")
    with pytest.raises(ConfigError) as info:
        EvalSettings.from_config(compose_cfg(*bad))
    lines = str(info.value).splitlines()
    assert len(lines) == 8, lines  # fid_inf=true itself is fine: its min_samples line is the problem
    for key in ("bn_mode", "memorization_quantile", "density_neighborhood", "mifid_cosine_eps", "fid_inf_min_samples", "memorization_train_limit", "standing_steps", "classifier.arch"):
        assert sum(f"eval.{key}=" in line for line in lines) == 1, key
    assert EvalSettings.from_config(compose_cfg("eval.bn_mode=standing", "eval.fid_inf=true")).metrics.fid_inf is True


def test_too_few_images_for_the_nearest_neighbour_metrics_are_refused_before_scoring(compose_cfg):
    # torch-fidelity's precision/recall and density/coverage need more points than their k: 5 samples would crash late.
    for key, value in (("num_samples", 5), ("inception_num_samples", 3), ("reference_limit", 4)):
        with pytest.raises(ConfigError, match=rf"eval.{key}={value} is too small for the k-nearest-neighbour metrics \(k=5"):
            EvalSettings.from_config(compose_cfg(f"eval.{key}={value}", "eval.cas.enabled=false"))
    with pytest.raises(ConfigError, match=r"k=8"):
        EvalSettings.from_config(compose_cfg("eval.num_samples=8", "eval.prc_neighborhood=8", "eval.cas.enabled=false"))
    EvalSettings.from_config(compose_cfg("eval.num_samples=6", "eval.cas.enabled=false"))  # k + 1 is enough


@pytest.mark.parametrize("mode", ["batch", "standing"])
def test_batch_statistics_need_batches_of_two(compose_cfg, mode):
    with pytest.raises(ConfigError, match=rf"eval.batch_size=1 is too small for eval.bn_mode={mode}"):
        EvalSettings.from_config(compose_cfg(f"eval.bn_mode={mode}", "eval.batch_size=1"))
    assert EvalSettings.from_config(compose_cfg("eval.bn_mode=eval", "eval.batch_size=1")).batch_size == 1


def test_cas_min_steps_must_be_a_count(compose_cfg):
    with pytest.raises(ConfigError, match=r"eval.cas.min_steps=-1 is invalid: it must be an integer >= 0"):
        EvalSettings.from_config(compose_cfg("eval.cas.min_steps=-1"))
    assert EvalSettings.from_config(compose_cfg("eval.cas.min_steps=0")).cas.min_steps == 0


@pytest.mark.parametrize(
    "override,message",
    [
        ("eval.classifier.lr=-1", "eval.classifier.lr=-1 is invalid: a learning rate must be a number > 0"),
        ("eval.cas.lr=0", "eval.cas.lr=0 is invalid: a learning rate must be a number > 0"),
        ("eval.classifier.lr=inf", "eval.classifier.lr=inf is invalid: a learning rate must be a number > 0"),
        ("eval.classifier.weight_decay=-0.1", "eval.classifier.weight_decay=-0.1 is invalid: it must be a number >= 0"),
        ("eval.classifier.dropout=1", "eval.classifier.dropout=1 is invalid: it must be a number in [0, 1)"),
        ("eval.cas.label_smoothing=1.5", "eval.cas.label_smoothing=1.5 is invalid: it must be a number in [0, 1)"),
        ("eval.classifier.label_smoothing=nan", "eval.classifier.label_smoothing=nan is invalid: it must be a number in [0, 1)"),
        ("eval.classifier.scale=1", "eval.classifier.scale=1 is invalid: it must be a number in [0, 1)"),
        ("eval.cas.rotation_deg=-5", "eval.cas.rotation_deg=-5 is invalid: it must be a number in [0, 180]"),
        ("eval.cas.shift_px=-1", "eval.cas.shift_px=-1 is invalid: it must be a number >= 0"),
        ("eval.classifier.width=0", "eval.classifier.width=0 is invalid: it must be an integer >= 1"),
        ("eval.cas.feature_dim=0.5", "eval.cas.feature_dim=0.5 is invalid: it must be an integer >= 1"),
        ("eval.classifier.min_steps=-1", "eval.classifier.min_steps=-1 is invalid: it must be an integer >= 0"),
        ("eval.classifier.epochs=0", "eval.classifier.epochs=0 is invalid: it must be an integer >= 1"),
        ("eval.classifier.batch_size=many", "eval.classifier.batch_size='many' is invalid: it must be an integer >= 1"),
        ("eval.classifier.seed=-1", "eval.classifier.seed=-1 is invalid: it must be an integer >= 0"),
        ("eval.classifier.train_limit=0", "eval.classifier.train_limit=0 is invalid: it must be an integer >= 1 or null"),
        ("eval.classifier.path=''", "eval.classifier.path='' is invalid: give a classifier file, or null"),
        # CAS off: its settings are still checked (a later eval.cas.enabled=true would meet them), not its batch count.
        ("eval.cas.enabled=false eval.cas.epochs=0", "eval.cas.epochs=0 is invalid: it must be an integer >= 1"),
        # bool() would have read these as true.
        ("eval.enabled=off", "eval.enabled='off' is invalid: it must be true or false"),
        ("eval.cas.enabled=no", "eval.cas.enabled='no' is invalid: it must be true or false"),
        ("eval.reference_run=yes", "eval.reference_run='yes' is invalid: it must be true or false"),
        ("eval.parzen_sigmas=[0.1,inf]", "eval.parzen_sigmas=[0.1, inf] is invalid"),
        # Hydra's hint for a misspelt key is a `+`: the added key would otherwise be ignored.
        ("+eval.classifier.epoch=3", "eval.classifier.epoch is not a setting of eval.classifier, so it would change nothing; did you mean eval.classifier.epochs?"),
        ("+eval.cas.seed=1", "eval.cas.seed is not read: CAS's classifier is seeded by eval.seed"),
    ],
)
def test_each_bad_classifier_setting_or_flag_is_one_line(compose_cfg, override, message):
    with pytest.raises(ConfigError) as info:
        EvalSettings.from_config(compose_cfg(*override.split()))
    [line] = str(info.value).splitlines()
    assert line.startswith(message), line


def test_the_classifier_settings_a_test_or_benchmark_uses_are_valid(compose_cfg, quick_eval_overrides):
    settings = EvalSettings.from_config(compose_cfg(*quick_eval_overrides, "eval.classifier.dropout=0", "eval.cas.rotation_deg=180"))
    assert settings.classifier.dropout == 0 and settings.cas.rotation_deg == 180 and settings.classifier.train_limit == 4000
