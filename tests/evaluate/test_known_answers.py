"""Known answers through the whole evaluator: real digits as a 'generator', shifted labels, a one-class generator,
and every new metric, tag and artifact of an evaluation (memorisation, density/coverage, MiFID, bn_mode)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from ganbench.evaluate import EvalSettings, evaluate_generator
from ganbench.evaluate.evaluator import get_evaluator
from ganbench.models import build_models
from ganbench.tracking import make_client, mlflow_run

NEW_METRICS = {"density_clf", "coverage_clf", "memorization_clf", "mifid_clf"}


class RealDigits(nn.Module):
    """A 'generator' that returns held-out real digits of the requested label (+ ``shift``), or always of class ``only``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, shift: int = 0, only: int | None = None):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))  # a device to sample on
        self.by_class = {int(c): images[labels == c] for c in torch.unique(labels)}
        self.shift, self.only, self.seen = shift, only, {c: 0 for c in self.by_class}

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = []
        for label in labels.tolist():
            c = self.only if self.only is not None else (label + self.shift) % len(self.by_class)
            bank = self.by_class[c]
            out.append(bank[self.seen[c] % bank.size(0)])
            self.seen[c] += 1
        return torch.stack(out)


@pytest.fixture(scope="module")
def evaluator_cfg(quick_classifier, quick_eval_overrides, compose_cfg):
    cfg = compose_cfg("model=dcgan", *quick_eval_overrides, "eval.cas.enabled=false", "eval.inception=off", "eval.fid_inf=true",
                      "eval.fid_inf_min_samples=100", "eval.fid_inf_points=5")
    return cfg, get_evaluator(EvalSettings.from_config(cfg), torch.device("cpu"))


def real_digits(evaluator, **kw) -> RealDigits:
    held = evaluator.heldout
    return RealDigits(held.images, held.labels, **kw)


@pytest.mark.slow
def test_real_digits_of_the_requested_label_score_about_the_classifiers_accuracy(evaluator_cfg):
    cfg, evaluator = evaluator_cfg
    scores = evaluator.score_generator(real_digits(evaluator), True, cfg.noise.dim, "normal")
    accuracy = evaluator.classifier.test_accuracy
    assert scores.metrics["gen_accuracy"] == pytest.approx(accuracy, abs=0.05)
    assert scores.metrics["label_kl"] < 0.05  # predicted classes follow the requested ones
    # Held-out real digits are as far from the training set as held-out real digits: about the quantile, not copies.
    assert scores.metrics["memorization_clf"] == pytest.approx(evaluator.settings.metrics.memorization_quantile, abs=0.06)
    assert scores.metrics["density_clf"] > 0.7 and scores.metrics["coverage_clf"] > 0.7
    assert scores.metrics["fid_inf_clf"] < scores.metrics["fid_clf"]
    shifted = evaluator.score_generator(real_digits(evaluator, shift=1), True, cfg.noise.dim, "normal")
    assert shifted.metrics["gen_accuracy"] < 0.05
    assert shifted.metrics["coverage_clf"] == pytest.approx(scores.metrics["coverage_clf"], abs=0.1)  # same images, other labels


@pytest.mark.slow
def test_a_one_class_generator_covers_one_mode_with_the_hand_worked_kl(evaluator_cfg):
    cfg, evaluator = evaluator_cfg
    scores = evaluator.score_generator(real_digits(evaluator, only=3), False, cfg.noise.dim, "normal")
    counts = np.asarray(scores.histogram, dtype=np.float64)
    real = np.asarray(scores.real_histogram, dtype=np.float64)
    assert counts.argmax() == 3 and counts[3] / counts.sum() > 0.8
    assert scores.metrics["modes_covered"] <= 3  # the class itself, and at most a couple of classifier confusions
    # Were every sample predicted 3: KL(delta_3 || q) = -log q_3; the classifier's errors move it a little.
    assert scores.metrics["mode_kl"] == pytest.approx(-math.log(real[3] / real.sum()), abs=0.4)
    assert scores.metrics["coverage_clf"] < 0.3  # one digit covers few of the real k-NN balls


@pytest.mark.slow
def test_a_one_class_conditional_generator_has_label_kl_of_log_10(evaluator_cfg):
    cfg, evaluator = evaluator_cfg
    scores = evaluator.score_generator(real_digits(evaluator, only=3), True, cfg.noise.dim, "normal")
    # KL(predicted || requested) = KL(delta_3 || uniform over 10) = log 10; the classifier's errors move it a little.
    # The other direction, KL(uniform || delta_3), would be ~0.9 log(0.1 / 1e-10) ~ 18.6.
    assert scores.metrics["label_kl"] == pytest.approx(math.log(10), abs=0.4)


@pytest.mark.slow
def test_a_copying_generator_is_flagged_as_memorised(evaluator_cfg):
    cfg, evaluator = evaluator_cfg
    train = evaluator.splits["train"]
    assert evaluator.memo_train.size(0) == len(train)  # eval.memorization_train_limit=null: every training image
    copies = RealDigits(train.images, train.labels)  # training digits themselves
    scores = evaluator.score_generator(copies, True, cfg.noise.dim, "normal")
    # Every copy sits at distance 0 from the training set, nearer than any held-out quantile.
    assert scores.metrics["memorization_clf"] == pytest.approx(1.0)
    assert scores.pairs is not None and scores.pairs.distances[0] == pytest.approx(0.0, abs=1e-4)
    # MiFID: the mean min cosine distance of the samples to the training set is 0, so MiFID = FID / ~1e-14.
    assert scores.metrics["mifid_clf"] > 1e6 * scores.metrics["fid_clf"]
    real = evaluator.score_real()  # held-out real digits are not copies: their MiFID is FID over a small distance
    assert scores.metrics["mifid_clf"] > 1e6 * real.metrics["mifid_clf"]
    assert real.metrics["memorization_clf"] == pytest.approx(evaluator.settings.metrics.memorization_quantile, abs=0.06)


@pytest.mark.slow
def test_an_evaluation_logs_the_new_metrics_tags_and_pair_grid(quick_classifier, quick_eval_overrides, compose_cfg, mlflow_uri, no_hub_weights):
    cfg = compose_cfg("model=dcgan", *quick_eval_overrides, "eval.cas.enabled=false", "eval.bn_mode=standing", "eval.standing_steps=3")
    cfg = OmegaConf.merge(cfg, {"tracking": {"uri": mlflow_uri}})
    torch.manual_seed(0)
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), cfg.noise.dim, 28, 10)
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    client = make_client(cfg.tracking.uri)
    with mlflow_run(client, "ganbench", "dcgan", {}) as logger:
        metrics = evaluate_generator(EvalSettings.from_config(cfg), generator, False, 10, torch.device("cpu"), logger, step=3)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())  # standing stats on a copy
    assert NEW_METRICS <= set(metrics) and "fid_inf_clf" not in metrics  # fid_inf is off by default
    tags = client.get_run(logger.run_id).data.tags
    assert tags["measured.bn_mode"] == "standing (3 steps)" and tags["measured.memorization_train_images"] == "22352"  # all of Hoda's
    assert tags["measured.prc_neighborhood"] == "3" and tags["measured.mifid_cosine_eps"] == "0.1"
    assert tags["measured.density_neighborhood"] == "5" and float(tags["measured.memorization_threshold"]) > 0
    files = {a.path for a in client.list_artifacts(logger.run_id, "eval/step_0000003")}
    assert "eval/step_0000003/nearest_pairs.png" in files
    # The real-data reference row: memorisation of held-out images against train, independent of the BatchNorm mode.
    ref = client.get_run(tags["measured.reference_run_id"]).data
    assert NEW_METRICS <= set(ref.metrics) and ref.tags["measured.bn_mode"] == "none (real images)"
    assert ref.metrics["memorization_clf"] == pytest.approx(0.1, abs=0.06)
