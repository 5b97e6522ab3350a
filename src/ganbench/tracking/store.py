"""MLflow stores: clients, experiments, the store lock, reachability, and paging through runs."""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ganbench.errors import UserError, first_line
from ganbench.locks import file_lock
from ganbench.tracking import layout

log = logging.getLogger("ganbench.tracking")

PAGE_SIZE = 1000  # runs per search request; MLflow's own cap for SQL stores is 50,000
# A unique-key violation, as SQLite, PostgreSQL and MySQL word it (MLflow passes the database's message on).
_DUPLICATE_KEY = re.compile(r"unique constraint|duplicate (key|entry)", re.IGNORECASE)


class TrackingError(UserError):
    """The tracking store cannot be reached or used."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working folder, as SQLite reads it), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser().resolve()


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock beside a local SQLite store (``<file>-ganbench.lock``); nothing for other stores.

    MLflow creates and migrates the tables of a new SQLite file when a client first opens it, and
    creates experiments by name; two processes doing either at once collide (the migrations fail with
    "duplicate column name"; an experiment is created twice). Ordinary writes need no lock: MLflow's
    SQLite sessions wait up to 20 s for one another (``PRAGMA busy_timeout``) and each of ganbench's
    writes is one short batch.
    """
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    lock = db.with_name(db.name + "-ganbench.lock")
    with ExitStack() as held:
        try:
            held.enter_context(file_lock(lock))
        except OSError as exc:
            raise TrackingError(
                f"the MLflow store {uri} cannot be written: its folder {db.parent} refused {lock.name} ({exc.strerror}); "
                "make it writable or use another tracking.uri"
            ) from None
        yield


SUPPORTED_URIS = "sqlite:///PATH, http(s)://HOST:PORT (an `mlflow server`), file:PATH, or a database URI (postgresql://, mysql://)"


def make_client(uri: str, *, reader: bool = False) -> MlflowClient:
    """A client for ``uri``; a local SQLite file (and its folder) is created on demand, one process at a time.

    ``reader=True`` (commands that only read: report, sample) goes on without the lock where the store's folder
    refuses it (read-only): the lock only guards creating a store's tables, and an existing store needs none.
    """
    try:
        with ExitStack() as held:
            try:
                held.enter_context(store_lock(uri))
            except TrackingError:
                db = sqlite_path(uri)
                if not (reader and db is not None and db.is_file() and db.stat().st_size > 0):
                    raise
            # Building the client builds the store, which creates the tables of a new file.
            client = MlflowClient(tracking_uri=uri)
    except Exception as exc:  # MLflow's own errors, and SQLAlchemy's while it creates a new store's tables
        known = ("readonly database", "disk is full", "unable to open", "file is not a database", "database disk image is malformed")
        if not isinstance(exc, MlflowException) and not any(m in str(exc) for m in known):
            raise
        scheme = urlparse(uri).scheme
        reason = f"MLflow has no store for the scheme {scheme!r}" if "unsupported URI" in str(exc) else first_line(exc)
        raise TrackingError(f"tracking.uri={uri} cannot be used ({reason}); use {SUPPORTED_URIS}") from None
    mlflow.set_tracking_uri(uri)
    return client


def artifact_location(uri: str, experiment: str) -> str | None:
    """Where a new experiment's artifacts go: beside a local SQLite store, else the server's default.

    MLflow's own default is ``./mlruns`` under whatever folder the process runs in,
    which scatters artifacts; keeping them next to the database keeps a store whole.
    """
    db = sqlite_path(uri)
    if db is None:
        return None
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in experiment)
    return (db.parent / "mlartifacts" / slug).as_uri()


def experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created when missing (safe when several processes race to create it)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        with store_lock(client.tracking_uri):
            exp = client.get_experiment_by_name(name)  # another process may have created it while we waited
            if exp is None:
                try:
                    return client.create_experiment(name, artifact_location=artifact_location(client.tracking_uri, name),
                                                    tags={layout.EXPERIMENT_KIND_TAG: layout.EXPERIMENT_KIND})
                except MlflowException:
                    # A tracking server has no file lock: another client created it between our two calls.
                    exp = client.get_experiment_by_name(name)
                    if exp is None:
                        raise
    if exp.lifecycle_stage == "deleted":
        raise TrackingError(
            f"experiment {name!r} is deleted in {client.tracking_uri}; restore it "
            f"(`mlflow experiments restore --experiment-id {exp.experiment_id}`) or choose another tracking.experiment"
        )
    if layout.EXPERIMENT_KIND_TAG not in exp.tags:  # an experiment made before ganbench set its kind, or by hand
        try:
            client.set_experiment_tag(exp.experiment_id, layout.EXPERIMENT_KIND_TAG, layout.EXPERIMENT_KIND)
        except MlflowException as exc:
            # MLflow looks the tag up, then inserts it: jobs starting together race, and the slower insert breaks
            # the unique key. The other job wrote the same value.
            if not is_duplicate_key(exc):
                raise
    return exp.experiment_id


def is_duplicate_key(exc: MlflowException) -> bool:
    """Whether the store refused a write because the row is there already (another process wrote it first)."""
    return bool(_DUPLICATE_KEY.search(str(exc)))


def live_runs(client: MlflowClient, exp_id: str, filter_string: str) -> list[str]:
    """The ids of the runs matching ``filter_string`` that hold or are writing their record, earliest first."""
    runs = search_all(client, exp_id, filter_string)
    live = [r for r in runs if r.info.status in ("FINISHED", "RUNNING")]
    return [r.info.run_id for r in sorted(live, key=lambda r: (r.info.start_time or 0, r.info.run_id))]


def keep_earliest(client: MlflowClient, exp_id: str, filter_string: str, ours: str, what: str) -> str:
    """The one run of its kind every job uses (a reference row, a classifier's run): the earliest that matches;
    ours is deleted when another came first.

    A file lock keeps the jobs of one machine from logging such a run twice; jobs on machines without a shared
    lock (SLURM nodes with their own caches) each may, and each then keeps the earliest, so the store keeps one.
    """
    first = next(iter(live_runs(client, exp_id, filter_string)), ours)
    if first != ours:
        log.info("another job logged this %s first (%s); deleting the duplicate %s", what, first, ours)
        client.delete_run(ours)
    return first


def search_all(client: MlflowClient, experiment_ids: list[str] | str, filter_string: str = "", order_by: list[str] | None = None) -> list[Any]:
    """Every run matching ``filter_string`` in the experiment(s), all pages."""
    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(ids, filter_string=filter_string, max_results=PAGE_SIZE, order_by=order_by, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def child_runs(client: MlflowClient, parent_run_id: str) -> list[Any]:
    """Every run whose parent is ``parent_run_id`` (all pages)."""
    parent = client.get_run(parent_run_id)
    return search_all(client, parent.info.experiment_id, f"tags.mlflow.parentRunId = '{parent_run_id}'")


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast, with the URI in the message, when an HTTP tracking server does not answer.

    MLflow's client would otherwise retry with back-off for minutes before giving up.
    """
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise TrackingError(
            f"cannot reach the MLflow tracking server at {uri} ({exc.strerror or exc}); start it "
            f"(e.g. `mlflow server --host {parsed.hostname} --port {port}`) or set tracking.uri"
        ) from None
    # Later requests should not retry for minutes either.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
