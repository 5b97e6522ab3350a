"""eval.image_size: samples of another size mapped to the dataset's, and a 32 px generator scored with the 28 px classifier."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from ganbench.errors import ConfigError
from ganbench.evaluate import EvalSettings, evaluate_generator
from ganbench.evaluate.resize import ResizedGenerator, match_size, resize_note
from ganbench.models import build_models
from ganbench.tracking import make_client, mlflow_run


def test_a_digit_padded_to_32_px_comes_back_as_the_28_px_digit():
    # Hoda and MNIST keep a 20 px digit box at 28 and 32 px: 32 px is 28 px with a 2 px wider margin.
    digit = torch.rand(3, 1, 28, 28) * 2 - 1
    padded = F.pad(digit, (2, 2, 2, 2), value=-1.0)
    assert torch.equal(match_size(padded, "mnist", 28), digit) and torch.equal(match_size(padded, "hoda", 28), digit)
    assert torch.equal(match_size(digit, "hoda", 32), padded)
    assert resize_note("hoda", 32, 28) == "32 -> 28 px (digit box 20 -> 20 px): centre crop to 28 px"
    larger = match_size(torch.rand(2, 1, 64, 64) * 2 - 1, "hoda", 28)  # box 46 -> 20 px: scaled to 28, nothing to crop
    assert larger.shape == (2, 1, 28, 28) and larger.min() >= -1 and larger.max() <= 1


def test_photos_are_resized_with_antialiasing():
    photo = torch.rand(2, 1, 32, 32) * 2 - 1
    expected = F.interpolate(photo, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    torch.testing.assert_close(match_size(photo, "sign_digits", 28), expected)
    torch.testing.assert_close(match_size(photo, "hoda", 28, preprocess="hoda_reader"), expected)
    assert resize_note("sign_digits", 32, 28) == "32 -> 28 px (frame): anti-aliased bilinear resize to 28 px"


def test_the_resized_generator_says_what_it_resized_from():
    class Constant(torch.nn.Module):
        def forward(self, z, labels):
            return torch.zeros(z.size(0), 1, 32, 32)

    resized = ResizedGenerator(Constant(), "sign_digits", 28)
    assert resized.measured() == {"resized_from": "none", "resize": "none"}  # nothing drawn yet
    assert resized(torch.zeros(4, 8), torch.zeros(4)).shape == (4, 1, 28, 28)
    assert resized.measured()["resized_from"] == "32"
    assert ResizedGenerator(Constant(), "sign_digits", 32)(torch.zeros(1, 8), torch.zeros(1)).shape == (1, 1, 32, 32)


def test_eval_image_size_and_the_other_new_keys_are_read_and_checked(compose_cfg):
    default = EvalSettings.from_config(compose_cfg("dataset=sign_digits"))
    assert default.image_size is None and default.eval_dataset["image_size"] == 32  # null: the dataset's own size
    assert default.parzen is False and len(default.parzen_sigmas) == 10 and default.stroke_limit is None
    at_28 = EvalSettings.from_config(compose_cfg("dataset=sign_digits", "eval.image_size=28"))
    assert at_28.eval_dataset == {**at_28.dataset, "image_size": 28} and at_28.dataset["image_size"] == 32
    bad = ("eval.image_size=4", "eval.parzen=maybe", "eval.parzen_sigmas=[0.1,0]", "eval.parzen_validation=0", "eval.stroke_limit=0")
    with pytest.raises(ConfigError) as info:
        EvalSettings.from_config(compose_cfg(*bad))
    lines = str(info.value).splitlines()
    assert len(lines) == 5 and all(any(f"eval.{key.split('=')[0][5:]}=" in line for line in lines) for key in bad)


def test_a_32_px_generator_scored_at_28_px_uses_the_28_px_classifier(quick_classifier, quick_eval_overrides, compose_cfg, mlflow_uri):
    # The stage as the app calls it at the end of a 32 px run, without the training (and the 32 px Hoda decode) before it.
    cfg = compose_cfg("model=dcgan", "dataset.image_size=32", "eval.image_size=28", *quick_eval_overrides, "eval.reference_run=false",
                      "eval.inception=off", f"tracking.uri={mlflow_uri}")
    torch.manual_seed(0)
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, 32, 10)
    settings = EvalSettings.from_config(cfg)
    assert settings.dataset["image_size"] == 32 and settings.eval_dataset["image_size"] == 28
    client = make_client(mlflow_uri)
    with mlflow_run(client, "ganbench", "dcgan-32px", {}) as logger:
        metrics = evaluate_generator(settings, generator, False, 10, torch.device("cpu"), logger, step=1)
    assert math.isfinite(metrics["fid_clf"]) and metrics["stroke_width"] > 0
    tags = {k.removeprefix("measured."): v for k, v in client.get_run(logger.run_id).data.tags.items() if k.startswith("measured.")}
    assert (tags["image_size"], tags["resized_from"]) == ("28", "32") and "centre crop" in tags["resize"]
    # quick_classifier is the 28 px Hoda classifier a 28 px run with these settings is scored with: one cache key, one file.
    assert tags["classifier_sha256"] == quick_classifier.sha256
