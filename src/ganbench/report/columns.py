"""The metric columns of a report: which metrics, which way each is better, and what each was measured on."""

from __future__ import annotations

from collections.abc import Sequence

from ganbench.report.records import RunRecord, natural_key
from ganbench.tracking.layout import BN_MODE_MEASURED, MEASURED_PREFIX, RESCORED_TAG

# Columns, in this order when present. Anything else is shown only when asked for (metrics=...).
EVAL_METRICS = (
    "fid_clf", "kid_clf", "is_clf", "precision_clf", "recall_clf", "gen_accuracy", "intra_fid_clf", "cas",
    "modes_covered", "mode_kl", "label_kl", "density_clf", "coverage_clf", "memorization_clf", "mifid_clf", "fid_inf_clf",
    "fid_inception", "kid_inception", "is_inception",
)
LOSS_METRICS = ("d_loss", "g_loss")  # shown when no run has evaluation metrics
HIGHER_IS_BETTER = ("is_", "precision", "recall", "gen_accuracy", "gen_macro", "cas", "modes_covered", "accuracy", "density", "coverage")
# memorization: ~eval.memorization_quantile for a generator as far from its training set as fresh real images; lower is
# less copying (a generator far from the data also scores low: read it beside fid/precision).
LOWER_IS_BETTER = ("fid", "kid", "intra_fid", "mode_kl", "label_kl", "memorization", "mifid")


def higher_is_better(metric: str) -> bool | None:
    """True / False for metrics ganbench knows; None when it has to assume (lower)."""
    if metric == "parzen_ll":  # log-likelihood of held-out digits (parzen_ll_se and parzen_sigma are not scores)
        return True
    if metric.startswith(LOWER_IS_BETTER):
        return False
    if metric.startswith(HIGHER_IS_BETTER):
        return True
    return None


def recorded(runs: Sequence[RunRecord], tag: str, param: str | None = None) -> list[str]:
    """The distinct values of ``measured.<tag>`` (else param ``param``) over ``runs``, sorted."""
    found = set()
    for r in runs:
        value = r.tags.get(f"{MEASURED_PREFIX}{tag}")
        if value is None and param is not None:
            value = r.params.get(param)
        if value is not None:
            found.add(value)
    return sorted(found, key=natural_key)


def _one(values: Sequence[str]) -> str:
    """A setting's value, or all of them in braces when runs differ; '?' when none recorded it."""
    shown = [f"{int(v):,}" if v.isdigit() else v for v in values]
    if not shown:
        return "?"
    return shown[0] if len(shown) == 1 else "{" + ", ".join(shown) + "}"


def eval_settings(runs: Sequence[RunRecord], warnings: list[str]) -> dict[str, str]:
    """The ``eval.*`` params (the evaluation config) the scored runs share; a warning names those that differ.

    A run scored again by ``ganbench.evaluate`` (tag ``rescored``) is left out: its params are its training's
    settings, not those its numbers were scored with, which its ``measured.*`` tags hold.
    """
    runs = [r for r in runs if RESCORED_TAG not in r.tags]
    keys = sorted({k for r in runs for k in r.params if k.startswith("eval.") and k != "eval.enabled"})
    shared, differing = {}, []
    for key in keys:
        values = sorted({r.params.get(key, "(unset)") for r in runs}, key=natural_key)
        if len(values) == 1:
            shared[key] = values[0]
        else:
            differing.append(f"{key} in {{{', '.join(values)}}}")
    if differing:
        warnings.append("the ranked runs were evaluated with different settings: " + "; ".join(differing))
    return shared


def describe_metrics(metrics: Sequence[str], runs: Sequence[RunRecord], warnings: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """What each metric was measured on, from the ``measured.*`` tags (else ``eval.*`` params) of the runs that have it.

    Returns a footnote and a short column header ("sample count vs reference") per metric. A setting
    that differs between runs shows all its values and raises a warning: such numbers are not comparable.
    """
    measured: dict[str, list[str]] = {}
    headers: dict[str, str] = {}
    mixed: dict[tuple[str, str], list[str]] = {}
    for m in metrics:
        scored = [r for r in runs if m in r.metrics]
        if m in LOSS_METRICS or m in ("d_real", "d_fake"):
            headers[m] = "last training batch"
            batch = _one(recorded(scored, "-", "train.batch_size"))
            measured[m] = [f"{m}: the value logged at the run's last training step, on one batch (train.batch_size={batch}); not a quality measure"]
            continue
        if not scored:
            headers[m] = "not logged"
            measured[m] = [f"{m}: not logged by any finished run"]
            continue
        inception = m.endswith("_inception")
        samples_v = recorded(scored, "inception_num_samples" if inception else "num_samples", "eval.num_samples")
        split_v = recorded(scored, "reference_split", "eval.reference_split")
        extractor_v = recorded(scored, "inception_extractor" if inception else "feature_extractor")
        sha_v = [] if inception else sorted({v[:12] for v in recorded(scored, "classifier_sha256")})
        samples, split, images = _one(samples_v), _one(split_v), _one(recorded(scored, "reference_images"))
        held, held_split = _one(recorded(scored, "heldout_images")), _one(recorded(scored, "heldout_split", "eval.heldout_split"))
        if m == "cas":
            headers[m] = f"{samples} samples; tested on {held} {held_split}"
            updates = _one(recorded(scored, "cas_updates"))
            line = (f"cas: accuracy on {held} held-out real images ({held_split} split) of a classifier trained only on "
                    f"{samples} generated samples" + (f" ({updates} updates)" if updates != "?" else " per epoch"))
        elif m in ("memorization_clf", "mifid_clf"):
            train_n = _one(recorded(scored, "memorization_train_images"))
            headers[m] = f"{samples} samples vs train ({train_n})"
            line = f"{m}: {samples} generated samples vs {train_n} training images"
            if m == "memorization_clf":
                line += (f"; share nearer a training image than the {_one(recorded(scored, 'memorization_quantile'))} quantile of "
                         f"{_one(recorded(scored, 'memorization_heldout_images'))} held-out images' nearest-training distances")
        elif m == "gen_accuracy":
            headers[m] = f"{samples} samples"
            line = f"gen_accuracy: share of {samples} generated samples the auxiliary classifier assigns to the class asked for"
        else:
            headers[m] = f"{samples} samples vs {split} ({images})"
            line = f"{m}: {samples} generated samples vs {images} real images of the {split} split"
        settings_v: list[str] = []  # the metric's own setting (k, eps): values measured with different ones do not compare
        if m in ("precision_clf", "recall_clf"):
            settings_v = recorded(scored, "prc_neighborhood", "eval.prc_neighborhood")
            line += f"; k={_one(settings_v)}"
        if m in ("density_clf", "coverage_clf"):
            settings_v = recorded(scored, "density_neighborhood", "eval.density_neighborhood")
            line += f"; k={_one(settings_v)}"
        if m == "mifid_clf":
            settings_v = recorded(scored, "mifid_cosine_eps", "eval.mifid_cosine_eps")
            line += f"; memorisation threshold cosine eps={_one(settings_v)}"
        if m == "fid_inf_clf":
            line += f"; extrapolated to infinite samples ({_one(recorded(scored, 'fid_inf'))})"
        # Runs scored before eval.bn_mode existed sampled with running statistics: they count as eval.
        bn_v = sorted({r.tags.get(f"{MEASURED_PREFIX}{BN_MODE_MEASURED}") or r.params.get("eval.bn_mode") or "eval" for r in scored})
        line += f"; BatchNorm while sampling: {_one(bn_v)}"
        if extractor_v:
            line += f"; features: {_one(extractor_v)}"
        if sha_v:
            line += f", classifier sha256 {_one(sha_v)}"
        measured[m] = [line]
        mixes = (("sample counts", samples_v), ("reference splits", split_v), ("classifiers", sha_v), ("feature extractors", extractor_v),
                 ("BatchNorm modes (eval.bn_mode)", bn_v), ("neighbourhood sizes or thresholds", settings_v))
        for what, values in mixes:
            if len(values) > 1:
                mixed.setdefault((what, ", ".join(values)), []).append(m)
    for (what, values), names in mixed.items():
        warnings.append(f"{', '.join(names)}: measured with different {what} across runs ({values}); those values are not comparable")
    return measured, headers
