"""Fixtures shared by the test modules: the real data folder and a private cache folder."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs two workers), share the cores out: each worker, and every process it
    starts, gets cores / workers torch threads, so the workers do not oversubscribe the CPU."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = str(max(1, (os.cpu_count() or 1) // int(workers)))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads  # read by subprocesses' torch
        import torch

        torch.set_num_threads(int(threads))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real data (hoda/, mnist/, sign_digits/): $GANBENCH_DATA, else ../shared/data next to the project."""
    explicit = os.environ.get("GANBENCH_DATA")
    root = Path(explicit).expanduser() if explicit else PROJECT_ROOT.parent / "shared" / "data"
    if not root.is_absolute():
        root = PROJECT_ROOT / root  # the Makefile's GANBENCH_DATA is relative to the project root
    return root.resolve()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder for this test, via GANBENCH_CACHE, so nothing touches ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("GANBENCH_CACHE", str(path))
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test (and every subprocess it starts) reads the real data and caches outside ~/.cache.

    The cache is shared by the session so the real Hoda files are decoded once; tests
    that check caching itself use the per-test ``cache_dir`` fixture instead.
    """
    os.environ["GANBENCH_DATA"] = str(data_root)
    os.environ.setdefault("GANBENCH_CACHE", str(tmp_path_factory.mktemp("ganbench-cache")))
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


# --- MLflow stores and in-process CLIs ---------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty SQLite MLflow store, created and migrated once per session (a migration takes seconds)."""
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "empty.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # builds the store: creates and migrates the tables
    return db


def copy_store(template: Path, db: Path) -> str:
    """An already migrated SQLite store at ``db`` (a copy of ``template``, the session's empty one); its URI.

    A new SQLite store costs MLflow 3-5 s of table migrations in the process that opens it first; tests whose
    subject is not that first opening start from a copy (``test_demo`` and the first-sweep tests keep a new one).
    """
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, db)
    return f"sqlite:///{db}"


@pytest.fixture(scope="session")
def new_store(migrated_store: Path) -> Callable[[Path], str]:
    """``new_store(path)``: an already migrated SQLite store at ``path``; returns its URI."""
    return lambda db: copy_store(migrated_store, db)


@pytest.fixture
def mlflow_uri(tmp_path: Path, migrated_store: Path) -> str:
    """A fresh, already migrated SQLite store for this test (a copy of the session's empty one)."""
    return copy_store(migrated_store, tmp_path / "mlflow.db")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run a ganbench command in this process: ``run_cli("ganbench", *args)`` for the Hydra app, or
    ``run_cli(main_function, *args)`` for a ``main(argv)`` CLI; returns its exit code and output.

    Subprocesses stay for what needs a process of its own (signals, launchers).
    """

    def run(command: str | Callable[..., int | None], *args: str) -> CliResult:
        capsys.readouterr()
        code: int | None = 0
        try:
            if command == "ganbench":
                from ganbench.app import cli

                monkeypatch.setattr(sys, "argv", ["ganbench", *args])
                cli()
            else:
                code = command(list(args))  # type: ignore[operator]
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return CliResult(int(code or 0), out.out, out.err)

    return run


def _reporting(target: Callable[..., None], args: tuple, errors: multiprocessing.Queue) -> None:
    """A forked process's body: ``target(*args)``, with whatever it raises put on ``errors`` for the test to show."""
    try:
        if "torch" in sys.modules:
            # GNU OpenMP is not fork-safe: a child entering the thread pool its parent started can wait for ever (a
            # reference row's pair grid did). One thread keeps torch's kernels off that pool.
            sys.modules["torch"].set_num_threads(1)
        target(*args)
    except BaseException as exc:
        errors.put(f"{type(exc).__name__}: {exc}"[:1000])
        raise


@pytest.fixture
def run_together() -> Callable[..., None]:
    """``run_together(target, [args, ...])``: one forked process per args tuple, each running ``target(*args, barrier)``
    with one barrier they share, so that racing writes really meet (forked: no re-import staggers them); fails with
    what any of them raised."""

    def run(target: Callable[..., None], args_per_process: list[tuple], timeout: float = 300) -> None:
        ctx = multiprocessing.get_context("fork")
        barrier, errors = ctx.Barrier(len(args_per_process)), ctx.Queue()
        procs = [ctx.Process(target=_reporting, args=(target, (*args, barrier), errors)) for args in args_per_process]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=timeout)
        messages = [errors.get() for _ in range(errors.qsize())]
        assert [proc.exitcode for proc in procs] == [0] * len(procs), messages

    return run


# --- The evaluation stage (tests/test_classifier.py, test_metrics.py, test_evaluate.py) -----------------

# Small enough for the default suite: a narrow classifier trained 1 epoch on 4,000 Hoda images (~90%),
# 500 scored samples, 2,000 reference and 1,000 held-out images.
QUICK_EVAL_OVERRIDES = (
    "eval.num_samples=500",
    "eval.batch_size=250",
    "eval.classifier.epochs=1",
    "eval.classifier.min_steps=0",
    "eval.classifier.width=16",
    "eval.classifier.feature_dim=64",
    "eval.classifier.train_limit=4000",
    "eval.reference_limit=2000",
    "eval.heldout_limit=1000",
    "eval.kid_subsets=20",
    "eval.cas.epochs=1",
    "eval.cas.min_steps=0",
)


@pytest.fixture(scope="session")
def quick_eval_overrides() -> list[str]:
    """Config overrides that make the evaluation stage test-sized (the classifier is the session's quick one)."""
    return list(QUICK_EVAL_OVERRIDES)


@pytest.fixture(scope="session")
def quick_classifier(isolated_environment: None, quick_eval_overrides: list[str]):
    """The session's quick Hoda classifier, trained once into the session cache (a LoadedClassifier)."""
    from hydra import compose, initialize_config_module
    from ganbench.evaluate import EvalSettings
    from ganbench.evaluate.classifier import get_classifier, load_splits

    with initialize_config_module("ganbench.conf", version_base="1.3"):
        cfg = compose("config", overrides=quick_eval_overrides)
    settings = EvalSettings.from_config(cfg)
    train, test = load_splits(settings.dataset, None, "test")
    return get_classifier(train, test, settings.classifier)
