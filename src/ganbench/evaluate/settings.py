"""What evaluation needs from the config, read and checked once: ``EvalSettings.from_config(cfg)``.

Every problem in the ``eval`` section is reported together in one ``ConfigError``; past this point
nothing takes the whole config.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ganbench import checks
from ganbench.errors import ConfigError

SPLITS = ("train", "test")
INCEPTION_MODES = ("auto", "on", "off")
BN_MODES = ("eval", "batch", "standing")  # BatchNorm statistics used while sampling (ganbench.evaluate.batchnorm)


def inception_mode(value: Any) -> Any:
    """``eval.inception`` as auto/on/off (YAML reads a bare on/off as a boolean)."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


# The integer settings of a classifier section (eval.classifier, eval.cas) and the least value of each.
CLASSIFIER_INTS = {"epochs": 1, "min_steps": 0, "batch_size": 1, "width": 1, "feature_dim": 1, "seed": 0}
# Fractions in [0, 1): at 1, dropout zeroes every feature, label smoothing makes every target uniform
# and the augmentation's scale can shrink an image to a point.
CLASSIFIER_FRACTIONS = ("dropout", "label_smoothing", "scale")


def unknown_setting(section: str, key: str, known: Collection[str]) -> str:
    """The line for a key ``eval.<section>`` does not read (a ``+eval.classifier.epoch=3`` typo), with the nearest name."""
    if section == "cas" and key == "seed":
        return "eval.cas.seed is not read: CAS's classifier is seeded by eval.seed; set that instead, or drop it"
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"did you mean eval.{section}.{close[0]}? " if close else ""
    return f"eval.{section}.{key} is not a setting of eval.{section}, so it would change nothing; {hint}fix the name or drop it"


def classifier_problems(section: str, values: Mapping[str, Any], known: Collection[str]) -> list[str]:
    """Every problem in ``eval.<section>``, a classifier's settings, one line each; keys it leaves out keep their defaults.

    These reach torch only when the classifier trains, after the GAN has trained and its run is logged.
    """
    prefix = f"eval.{section}"
    p = [unknown_setting(section, key, known) for key in values if key not in known]
    for key, low in CLASSIFIER_INTS.items():
        if key in values:
            checks.int_at_least(p, f"{prefix}.{key}", values[key], low)
    if values.get("train_limit") is not None:
        checks.int_at_least(p, f"{prefix}.train_limit", values["train_limit"], 1, " or null")
    if "lr" in values and (not checks.is_number(values["lr"]) or values["lr"] <= 0):
        p.append(f"{prefix}.lr={values['lr']!r} is invalid: a learning rate must be a number > 0")
    for key in ("weight_decay", "shift_px"):
        if key in values and (not checks.is_number(values[key]) or values[key] < 0):
            p.append(f"{prefix}.{key}={values[key]!r} is invalid: it must be a number >= 0")
    for key in CLASSIFIER_FRACTIONS:
        if key in values:
            checks.number_in(p, f"{prefix}.{key}", values[key], 0, 1, high_open=True)
    if "rotation_deg" in values:
        checks.number_in(p, f"{prefix}.rotation_deg", values["rotation_deg"], 0, 180)
    if values.get("arch", "digit") not in ("digit", "lenet"):  # classifier_net.ARCHS (which imports this module)
        p.append(f"{prefix}.arch={values['arch']!r} is invalid: choose digit or lenet")
    return p


def eval_config_problems(ev: Mapping[str, Any]) -> list[str]:
    """Every problem in the ``eval`` config section, one line each."""
    p: list[str] = []

    def int_at_least(key: str, low: int, allow_null: bool = False) -> None:
        value = ev.get(key)
        if allow_null and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            p.append(f"eval.{key}={value!r} is invalid: it must be an integer >= {low}{' or null' if allow_null else ''}")

    cas = ev.get("cas") or {}
    # bool() would read any string, `eval.enabled=off` too, as true.
    for key, value in (("enabled", ev.get("enabled", True)), ("reference_run", ev.get("reference_run", True)),
                       ("cas.enabled", cas.get("enabled", False))):
        if not isinstance(value, bool):
            p.append(f"eval.{key}={value!r} is invalid: it must be true or false")
    int_at_least("num_samples", 2)
    int_at_least("batch_size", 1)
    int_at_least("every", 1, allow_null=True)
    int_at_least("seed", 0)
    int_at_least("reference_limit", 2, allow_null=True)
    int_at_least("heldout_limit", 1, allow_null=True)
    int_at_least("kid_subsets", 1)
    int_at_least("kid_subset_size", 2)
    int_at_least("prc_neighborhood", 1)
    int_at_least("isc_splits", 1)
    int_at_least("inception_num_samples", 2, allow_null=True)
    int_at_least("density_neighborhood", 1)
    int_at_least("memorization_train_limit", 2, allow_null=True)
    int_at_least("memorization_heldout_limit", 2, allow_null=True)
    int_at_least("memorization_pairs", 0)
    int_at_least("standing_steps", 1)
    int_at_least("fid_inf_points", 2)
    int_at_least("fid_inf_min_samples", 2)
    ks = [ev.get(k) for k in ("prc_neighborhood", "density_neighborhood")]
    if all(isinstance(k, int) and not isinstance(k, bool) for k in ks):
        k = max(ks)  # precision/recall and density/coverage find each point's k-th neighbour among the others
        for key in ("num_samples", "inception_num_samples", "reference_limit"):
            value = ev.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 2 <= value <= k:
                p.append(f"eval.{key}={value} is too small for the k-nearest-neighbour metrics (k={k}, "
                         f"eval.prc_neighborhood / eval.density_neighborhood): give more than {k} images")
    if ev.get("bn_mode") not in BN_MODES:
        p.append(f"eval.bn_mode={ev.get('bn_mode')!r} is invalid: choose eval, batch or standing")
    elif ev["bn_mode"] != "eval" and ev.get("batch_size") == 1:
        p.append(f"eval.batch_size=1 is too small for eval.bn_mode={ev['bn_mode']}: BatchNorm statistics need at least 2 samples a batch")
    quantile = ev.get("memorization_quantile")
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0 < quantile < 1:
        p.append(f"eval.memorization_quantile={quantile!r} is invalid: it must be a number in (0, 1)")
    eps = ev.get("mifid_cosine_eps")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1:
        p.append(f"eval.mifid_cosine_eps={eps!r} is invalid: it must be a number in (0, 1]")
    if not isinstance(ev.get("fid_inf"), bool):
        p.append(f"eval.fid_inf={ev.get('fid_inf')!r} is invalid: it must be true or false")
    elif ev["fid_inf"] and isinstance(ev.get("fid_inf_min_samples"), int) and isinstance(ev.get("num_samples"), int) and ev["fid_inf_min_samples"] >= ev["num_samples"]:
        p.append(f"eval.fid_inf_min_samples={ev['fid_inf_min_samples']} must be below eval.num_samples={ev['num_samples']} to fit FID against 1/N; lower it or set eval.fid_inf=false")
    for key in ("reference_split", "heldout_split"):
        if ev.get(key) not in SPLITS:
            p.append(f"eval.{key}={ev.get(key)!r} is invalid: choose train or test")
    share = ev.get("modes_min_share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        p.append(f"eval.modes_min_share={share!r} is invalid: it must be a number in (0, 1]")
    if inception_mode(ev.get("inception")) not in INCEPTION_MODES:
        p.append(f"eval.inception={ev.get('inception')!r} is invalid: choose auto, on or off")
    names = {f.name for f in fields(ClassifierSettings)}
    classifier = ev.get("classifier") or {}
    p += classifier_problems("classifier", classifier, names | {"path"})
    path = classifier.get("path")
    if path is not None and (isinstance(path, (bool, list, dict)) or not str(path).strip()):
        p.append(f"eval.classifier.path={path!r} is invalid: give a classifier file, or null for the cached classifier")
    p += classifier_problems("cas", cas, (names - {"seed"}) | {"enabled"})
    if cas.get("enabled") is True and isinstance(cas.get("batch_size"), int) and isinstance(ev.get("num_samples"), int) \
            and cas["batch_size"] > ev["num_samples"]:
        p.append(f"eval.cas.batch_size={cas['batch_size']} exceeds eval.num_samples={ev['num_samples']}; lower it or disable eval.cas.enabled")
    int_at_least("image_size", 8, allow_null=True)
    int_at_least("stroke_limit", 1, allow_null=True)
    int_at_least("parzen_validation", 1)
    if not isinstance(ev.get("parzen", False), bool):
        p.append(f"eval.parzen={ev.get('parzen')!r} is invalid: it must be true or false")
    sigmas = ev.get("parzen_sigmas", [1.0])
    if not isinstance(sigmas, list) or not sigmas or not all(checks.is_number(v) and v > 0 for v in sigmas):
        p.append(f"eval.parzen_sigmas={sigmas!r} is invalid: it must be a non-empty list of numbers > 0 (e.g. numpy.logspace(-1, 0, 10))")
    return p


@dataclass(frozen=True)
class ClassifierSettings:
    """How a classifier is built and trained; every field is part of its cache key."""

    arch: str = "digit"  # digit (the auxiliary classifier's net) or lenet (LeNet-5 style: the second opinion)
    epochs: int = 6
    min_steps: int = 0  # train at least this many steps, adding epochs on small datasets (sign_digits: ~13 steps an epoch)
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    width: int = 32
    feature_dim: int = 128
    dropout: float = 0.3
    rotation_deg: float = 10.0  # augmentation: random rotation, scale and shift per image (0 turns each off)
    scale: float = 0.1
    shift_px: float = 2.0
    seed: int = 0
    train_limit: int | None = None  # train on the first N training images only (quick classifiers for tests)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "ClassifierSettings":
        """Settings from a config mapping (e.g. ``cfg.eval.classifier``); keys that are not settings are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})


@dataclass(frozen=True)
class MetricSettings:
    """The knobs of the fidelity metrics (from ``cfg.eval``)."""

    kid_subsets: int = 100
    kid_subset_size: int = 1000
    prc_neighborhood: int = 3
    isc_splits: int = 10
    seed: int = 0
    density_neighborhood: int = 5  # k of density/coverage's k-NN balls (Naeem et al. 2020 recommend 5)
    memorization_quantile: float = 0.1  # memorised: nearer a training image than this quantile of held-out images are
    mifid_cosine_eps: float = 0.1  # MiFID's memorisation threshold on the samples' mean min cosine distance (Kaggle's default)
    fid_inf: bool = False  # also fit FID against 1/N and log the intercept (fid_inf_clf)
    fid_inf_points: int = 15
    fid_inf_min_samples: int = 1000

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "MetricSettings":
        names = [f.name for f in fields(cls)]
        return cls(**{k: cfg[k] for k in names if k in cfg})


@dataclass(frozen=True)
class InceptionSettings:
    """The optional Inception feature space (``eval.inception*``)."""

    mode: str = "auto"  # auto | on | off
    weights: str | None = None  # torch-fidelity's weights file; None: the torch hub cache (never downloaded)
    extractor: str | None = None  # a registered torch-fidelity extractor; None: inception-v3-compat
    num_samples: int | None = None  # fewer samples for Inception (None: eval.num_samples)


@dataclass(frozen=True)
class EvalSettings:
    """Everything one evaluation reads: the ``eval`` section typed, and the dataset, data, noise and store it runs on."""

    enabled: bool = True
    every: int | None = None
    num_samples: int = 10000
    batch_size: int = 500
    seed: int = 0
    reference_split: str = "train"
    heldout_split: str = "test"
    reference_limit: int | None = None
    heldout_limit: int | None = None
    reference_run: bool = True
    modes_min_share: float = 0.01
    bn_mode: str = "eval"  # BatchNorm statistics while sampling: eval (running), batch (the sampled batch's), standing
    standing_steps: int = 10  # bn_mode=standing: forward passes of batch_size fresh samples that re-estimate the statistics
    memorization_train_limit: int | None = None  # training images memorisation and MiFID compare with (seeded subset; None: all)
    memorization_heldout_limit: int | None = 2000  # held-out images that set the memorisation threshold
    memorization_pairs: int = 16  # closest (sample, training image) pairs drawn in nearest_pairs.png
    metrics: MetricSettings = field(default_factory=MetricSettings)
    inception: InceptionSettings = field(default_factory=InceptionSettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    classifier_path: str | None = None  # score with this classifier file instead of the cached one
    image_size: int | None = None  # score at this size: real images and classifier of the dataset at it, samples mapped to it
    stroke_limit: int | None = None  # stroke statistics on the first N samples and a seeded N of the FID's reference images (None: all)
    parzen: bool = False  # the Parzen-window log-likelihood of the original GAN paper (ganbench.evaluate.parzen)
    parzen_sigmas: tuple[float, ...] = (0.1, 0.1292, 0.1668, 0.2154, 0.2783, 0.3594, 0.4642, 0.5995, 0.7743, 1.0)
    parzen_validation: int = 1000  # training images (seeded subset) the sigma is chosen on
    cas_enabled: bool = True
    cas: ClassifierSettings = field(default_factory=ClassifierSettings)  # CAS's quick classifier (seed: eval.seed)
    # What it runs on: the dataset section as a plain dict (name, image_size, download, ...), data.root,
    # the generator's noise prior, and the experiment its classifier and reference runs go to.
    dataset: Mapping[str, Any] = field(default_factory=lambda: {"name": "hoda", "image_size": 28})
    data_root: str | None = None
    noise_name: str | None = None
    noise_dim: int | None = None
    experiment: str = "ganbench"

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "EvalSettings":
        """From a composed config (the app's, the classifier command's, the re-scoring command's); ConfigError lists every problem.

        ``noise`` is optional (the classifier command has none); ``data.root`` and ``tracking.experiment`` default to null and ganbench.
        """
        ev = OmegaConf.to_container(cfg.eval, resolve=True)
        assert isinstance(ev, dict)
        problems = eval_config_problems(ev)
        dataset = OmegaConf.to_container(cfg.dataset, resolve=True) if "dataset" in cfg else None
        if not isinstance(dataset, dict) or "name" not in dataset or "image_size" not in dataset:
            problems.append("dataset: the config needs a dataset section with name and image_size (dataset=hoda, ...)")
        if problems:
            raise ConfigError("\n".join(problems))
        data = cfg.get("data") or {}
        noise = cfg.get("noise")
        tracking = cfg.get("tracking") or {}
        return cls.from_eval(
            ev,
            dataset=dataset,  # type: ignore[arg-type]
            data_root=None if data.get("root") is None else str(data.get("root")),
            noise_name=None if noise is None else str(noise.name),
            noise_dim=None if noise is None else int(noise.dim),
            experiment=str(tracking.get("experiment") or "ganbench"),
        )

    @classmethod
    def from_eval(cls, ev: Mapping[str, Any], **context: Any) -> "EvalSettings":
        """From an already checked ``eval`` section as a plain mapping, plus the context fields (dataset=, noise_name=, ...)."""
        seed = int(ev["seed"])
        classifier = dict(ev.get("classifier") or {})
        cas = dict(ev.get("cas") or {})
        return cls(
            enabled=bool(ev.get("enabled", True)),
            every=None if ev.get("every") is None else int(ev["every"]),
            num_samples=int(ev["num_samples"]),
            batch_size=int(ev["batch_size"]),
            seed=seed,
            reference_split=str(ev["reference_split"]),
            heldout_split=str(ev["heldout_split"]),
            reference_limit=ev.get("reference_limit"),
            heldout_limit=ev.get("heldout_limit"),
            reference_run=bool(ev.get("reference_run", True)),
            modes_min_share=float(ev["modes_min_share"]),
            bn_mode=str(ev.get("bn_mode", "eval")),
            standing_steps=int(ev.get("standing_steps", 10)),
            memorization_train_limit=ev.get("memorization_train_limit"),
            memorization_heldout_limit=ev.get("memorization_heldout_limit", 2000),
            memorization_pairs=int(ev.get("memorization_pairs", 16)),
            metrics=MetricSettings.from_config(ev),
            inception=InceptionSettings(
                mode=inception_mode(ev.get("inception", "auto")),
                weights=None if not ev.get("inception_weights") else str(ev["inception_weights"]),
                extractor=ev.get("inception_extractor") or None,
                num_samples=ev.get("inception_num_samples"),
            ),
            classifier=ClassifierSettings.from_config(classifier),
            classifier_path=None if classifier.get("path") is None else str(classifier["path"]),
            image_size=None if ev.get("image_size") is None else int(ev["image_size"]),
            stroke_limit=ev.get("stroke_limit"),
            parzen=bool(ev.get("parzen", False)),
            parzen_sigmas=tuple(float(v) for v in ev.get("parzen_sigmas", cls.parzen_sigmas)),
            parzen_validation=int(ev.get("parzen_validation", 1000)),
            cas_enabled=bool(cas.get("enabled", False)),
            cas=ClassifierSettings.from_config({**cas, "seed": seed}),
            **context,
        )

    def due(self, epoch: int) -> bool:
        """Whether the epoch-end hook should evaluate after ``epoch`` epochs (``eval.every``)."""
        return bool(self.enabled and self.every and epoch % self.every == 0)

    def with_run(self, dataset: Mapping[str, Any], noise_name: str, noise_dim: int, experiment: str) -> "EvalSettings":
        """These eval settings applied to another run's dataset, noise prior and experiment (re-scoring a logged run)."""
        return replace(self, dataset=dict(dataset), noise_name=str(noise_name), noise_dim=int(noise_dim), experiment=str(experiment))

    @property
    def dataset_name(self) -> str:
        return str(self.dataset["name"])

    @property
    def eval_dataset(self) -> dict[str, Any]:
        """The dataset section the real images and the classifier are loaded with: at ``eval.image_size`` when set."""
        return {**self.dataset, "image_size": int(self.image_size or self.dataset["image_size"])}

    def scoring(self) -> dict[str, Any]:
        """The eval settings every number depends on: not when or whether it runs, what it scores, nor where it is logged."""
        out = asdict(self)
        for key in ("enabled", "every", "reference_run", "dataset", "data_root", "noise_name", "noise_dim", "experiment"):
            out.pop(key)
        return out
