"""``python -m ganbench.sample``: digits from a trained run, as a PNG grid, separate PNGs or raw ``.npz``.

    python -m ganbench.sample run_id=<id> n=100 label=3 out=digits.png
    python -m ganbench.sample run_id=best parent=<sweep run id | latest> metric=gen_accuracy out=best.png
    python -m ganbench.sample model=models:/m-<id> n=64 seed=1 out=samples.npz
    python -m ganbench.sample model=models:/<registered name>/<version>   # or /latest, or models:/<name>@<alias>
    python -m ganbench.sample run_id=<id> grid=false out=digits/      # one PNG per sample

The generator is rebuilt from the run's ``checkpoints/final.pt``, read as tensors only (a ``models:/`` URI names the
run; the logged MLflow model itself is a pickle, never loaded here). Its noise prior and size come from the run's
params. Samples are drawn in eval mode (BatchNorm running statistics), with a seeded noise stream.
``run_id=best`` ranks the sweep as its logged leaderboard did (the metric ``ganbench.report`` tagged its parent
run with), else by fid_clf; ``metric=`` overrides either.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mlflow.exceptions import MlflowException
from torch import nn

from ganbench.data.preprocess import to_uint8
from ganbench.device import resolve_device
from ganbench.errors import EXIT_USAGE, ConfigError, UserError, first_line, print_error
from ganbench.files import atomic_write
from ganbench.models import build_generator, is_conditional
from ganbench.models.sampling import generate
from ganbench.noise import sample_noise
from ganbench.images import sample_grid
from ganbench.report import ReportSettings, build
from ganbench.report.records import ranked_by, read_runs
from ganbench.tracking import check_reachable, layout, make_client
from ganbench.train.checkpoint import CheckpointError, load_checkpoint

PROG = "ganbench.sample"
KEYS = {"run_id", "model", "n", "label", "seed", "out", "grid", "parent", "metric", "direction", "tracking.uri", "uri",
        "tracking.experiment", "experiment", "device"}
DEFAULT_METRIC = "fid_clf"  # run_id=best's ranking where the sweep has no logged leaderboard to follow


@dataclass(frozen=True)
class SampleSettings:
    """What to draw, from which run, and where to write it."""

    run_id: str | None = None
    model_uri: str | None = None
    n: int = 100
    label: int | None = None  # None: every class in turn (a row per class in a grid)
    seed: int = 0
    out: Path = Path("digits.png")
    grid: bool = True
    parent: str = "latest"  # with run_id=best: the sweep whose best configuration is drawn
    metric: str | None = None  # None: as the sweep's logged leaderboard ranks, else DEFAULT_METRIC
    direction: str = "auto"
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment: str = "ganbench"
    device: str = "cpu"

    @classmethod
    def from_args(cls, argv: Sequence[str]) -> "SampleSettings":
        values: dict[str, str] = {}
        for arg in argv:
            key, sep, value = arg.partition("=")
            if not sep or key not in KEYS:
                raise ConfigError(f"argument {arg!r} is not key=value with a key of {', '.join(sorted(KEYS))}")
            values[{"uri": "tracking.uri", "experiment": "tracking.experiment"}.get(key, key)] = value
        if ("run_id" in values) == ("model" in values):
            raise ConfigError("give exactly one of run_id=<id> (or run_id=best parent=<sweep>) or model=models:/<id>")
        n, seed = _int(values, "n", 100, 1), _int(values, "seed", 0, 0)
        label = _int(values, "label", None, 0)
        grid = values.get("grid", "true")
        if grid not in ("true", "false"):
            raise ConfigError(f"grid={grid!r} is invalid: choose true or false")
        return cls(
            run_id=values.get("run_id"), model_uri=values.get("model"), n=n, label=label, seed=seed,
            out=Path(values.get("out", "digits.png")), grid=grid == "true", parent=values.get("parent", "latest"),
            metric=values.get("metric"), direction=values.get("direction", "auto"),
            tracking_uri=values.get("tracking.uri", "sqlite:///mlflow.db"),
            experiment=values.get("tracking.experiment", "ganbench"), device=values.get("device", "cpu"),
        )


def _int(values: dict[str, str], key: str, default: int | None, low: int) -> int | None:
    if key not in values:
        return default
    try:
        number = int(values[key])
    except ValueError:
        number = low - 1
    if number < low:
        raise ConfigError(f"{key}={values[key]!r} is invalid: it must be an integer >= {low}")
    return number


def best_run_id(client: Any, settings: SampleSettings) -> str:
    """The best seed's run of the leaderboard's top configuration, ranked as the sweep's logged leaderboard was."""
    report = ReportSettings(experiment=settings.experiment, tracking_uri=settings.tracking_uri, parent=settings.parent,
                            direction=settings.direction, log=False)
    found = read_runs(client, report)
    metric, direction = settings.metric or DEFAULT_METRIC, settings.direction
    logged = ranked_by(found.parent)
    if settings.metric is None and logged is not None:
        metric = logged[0]
        direction = logged[1] if direction == "auto" else direction
    board = build(found.runs, metric, direction=direction, references=found.references, parent=found.parent)
    if not board.ranked or board.ranked[0].best_run is None:
        raise ConfigError(f"no configuration of that sweep has {metric}; pick metric= or a run_id")
    return board.ranked[0].best_run.run_id


def model_run_id(client: Any, uri: str) -> str:
    """The training run behind a model URI: a logged model (``models:/m-<id>``) or a registered model's version
    (``models:/<name>/<version>``, ``models:/<name>/latest``, ``models:/<name>@<alias>``)."""
    ref = uri.removeprefix("models:/")
    name, at, alias = ref.partition("@")
    registered, slash, version = ref.partition("/")
    if not (at or slash):
        return client.get_logged_model(ref).source_run_id
    if at:
        found = client.get_model_version_by_alias(name, alias)
    elif version == "latest":  # MLflow's own URIs mean the highest version number, whatever its stage
        versions = client.search_model_versions(f"name = '{registered}'")
        if not versions:
            raise ConfigError(f"model={uri}: no registered model {registered!r} with a version; check model= and tracking.uri=")
        found = max(versions, key=lambda v: int(v.version))
    else:
        found = client.get_model_version(registered, version)
    if found.run_id:
        return found.run_id
    if found.model_id:  # a version registered from a logged model MLflow did not link to its run
        return client.get_logged_model(found.model_id).source_run_id
    raise ConfigError(f"model={uri}: version {found.version} of {found.name} names no training run; use run_id=")


@dataclass
class Loaded:
    generator: nn.Module
    prior: str
    z_dim: int
    num_classes: int
    run_id: str


def load_generator(client: Any, settings: SampleSettings, device: torch.device) -> Loaded:
    """The run's generator, rebuilt from its final checkpoint, with the run's noise settings.

    Never from the logged MLflow model, which the run logged too (the same weights): that is a pickle, and unpickling a
    file from a shared store can run any code; the checkpoint is read with ``weights_only=True``.
    """
    run_id, uri = settings.run_id, settings.model_uri
    if uri is not None:
        try:
            run_id = model_run_id(client, uri)
        except MlflowException:
            raise ConfigError(f"model={uri}: no such model in {settings.tracking_uri} (models:/m-<id>, models:/<name>/<version>, "
                              "models:/<name>/latest or models:/<name>@<alias>); check model= and tracking.uri=") from None
    elif run_id == "best":
        run_id = best_run_id(client, settings)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"no run {run_id!r} in {settings.tracking_uri}; check run_id= and tracking.uri=") from None
    params = run.data.params
    if "noise.dim" not in params:
        raise ConfigError(f"run {run_id} is not a ganbench training run (no noise.dim param)")
    generator = generator_from_checkpoint(client, run_id, device)
    return Loaded(generator.to(device).eval(), params["noise.name"], int(params["noise.dim"]), int(params.get("data.num_classes", 10)), run_id)


def generator_from_checkpoint(client: Any, run_id: str, device: torch.device) -> nn.Module:
    """Rebuild a run's generator from ``checkpoints/final.pt`` (tensors only)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, layout.CHECKPOINT_ARTIFACT, tmp)
            ckpt = load_checkpoint(local)
        except (MlflowException, OSError, CheckpointError) as exc:
            raise ConfigError(f"run {run_id} has no readable {layout.CHECKPOINT_ARTIFACT} ({first_line(exc)})") from None
    config = ckpt[layout.CKPT_CONFIG]
    generator = build_generator(config["model"], int(config["noise"]["dim"]), int(config["dataset"]["image_size"]),
                                int(ckpt[layout.CKPT_NUM_CLASSES]))
    generator.load_state_dict(ckpt[layout.CKPT_GENERATOR])
    return generator.to(device)


def draw(loaded: Loaded, n: int, label: int | None, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples (uint8, CPU) and their requested labels; the same seed draws the same digits."""
    if label is not None and label >= loaded.num_classes:
        raise ConfigError(f"label={label} is invalid: the run's data has classes 0..{loaded.num_classes - 1}")
    if label is not None and not is_conditional(loaded.generator):
        raise ConfigError(f"label={label} needs a conditional model; run {loaded.run_id}'s generator ignores labels (drop label=)")
    z = sample_noise(loaded.prior, n, loaded.z_dim, "cpu", generator=torch.Generator().manual_seed(seed)).to(device)
    labels = torch.full((n,), label) if label is not None else torch.arange(n) % loaded.num_classes
    if label is None and is_conditional(loaded.generator):
        labels = labels.sort(stable=True).values  # a row per class in the grid
    images = generate(loaded.generator, z, labels.to(device))
    return to_uint8(images).cpu(), labels


def write(images: torch.Tensor, labels: torch.Tensor, settings: SampleSettings) -> list[Path]:
    """Write the samples as asked: ``.npz`` (raw), a PNG grid, or a folder of PNGs (``grid=false``)."""
    out = settings.out
    if out.suffix == ".npz":
        def save(handle: Any) -> None:
            np.savez_compressed(handle, images=images[:, 0].numpy(), labels=labels.numpy())

        return [atomic_write(out, save)]
    unit = images.float() / 127.5 - 1.0
    if settings.grid:
        nrow = 10 if images.size(0) >= 10 else images.size(0)
        return [atomic_write(out, lambda handle: sample_grid(unit, nrow=nrow).save(handle, format="PNG"))]
    folder = out if out.suffix == "" else out.with_suffix("")
    written = []
    for i, (image, label) in enumerate(zip(unit, labels, strict=True)):
        path = folder / f"{i:04d}_label{int(label)}.png"
        written.append(atomic_write(path, lambda handle, im=image: sample_grid(im[None], nrow=1).save(handle, format="PNG")))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Draw digits from a trained run; 0 on success, 2 on bad input."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per downloaded file otherwise
    try:
        settings = SampleSettings.from_args(argv)
        check_reachable(settings.tracking_uri)
        device = resolve_device(settings.device)
        client = make_client(settings.tracking_uri, reader=True)
        loaded = load_generator(client, settings, device)
        images, labels = draw(loaded, settings.n, settings.label, settings.seed, device)
        written = write(images, labels, settings)
    except UserError as exc:
        print_error(PROG, exc)
        return EXIT_USAGE
    where = written[0] if len(written) == 1 else f"{len(written)} files in {written[0].parent}"
    print(f"{PROG}: {settings.n} samples of run {loaded.run_id}" + (f", label {settings.label}" if settings.label is not None else "")
          + f" -> {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
