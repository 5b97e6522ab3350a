"""A heartbeat for MLflow runs, and the reaper of runs whose process is gone.

MLflow keeps a run RUNNING until someone ends it; a process killed with SIGKILL, by the OOM killer or by
a power cut never does. So every ganbench run carries a lease: the host and pid of its process and a
time until which it is known to live, refreshed by a background thread. Any ganbench command that meets
a RUNNING run whose lease has expired, or whose process is gone from this host, marks it KILLED with the
reason (``reap_dead_runs``); one whose lease is current is busy, and is not continued by a second process
(``refuse_if_busy``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import RunTag

from ganbench.errors import UserError
from ganbench.files import pid_alive
from ganbench.tracking import layout
from ganbench.tracking.store import search_all

HOST = socket.gethostname()
log = logging.getLogger(__name__)


class BusyError(UserError):
    """The run (or sweep) asked for is running now in another live process: continuing it would log every step twice."""


def lease_seconds() -> float:
    """How long a run counts as alive after its last heartbeat ($GANBENCH_LEASE_SECONDS, default 120)."""
    return float(os.environ.get("GANBENCH_LEASE_SECONDS", "120"))


def lease_tags(until: float, now: float | None = None) -> dict[str, str]:
    """The tags of a lease held by this process until ``until`` (epoch seconds), refreshed at ``now``."""
    now = time.time() if now is None else now
    # Tenths of a second: a whole-second stamp could round a short lease down into the past.
    return {layout.LEASE_HOST_TAG: HOST, layout.LEASE_PID_TAG: str(os.getpid()), layout.LEASE_UNTIL_TAG: f"{until:.1f}",
            layout.LEASE_BEAT_TAG: f"{now:.1f}"}


def new_lease() -> dict[str, str]:
    """A lease from now for ``lease_seconds()``: given to a run as it is created or reopened, before its first beat,
    so that a run whose process dies (or whose store fills up) before that beat is still reaped."""
    now = time.time()
    return lease_tags(now + lease_seconds(), now)


def process_running(pid: int) -> bool:
    """Whether ``pid`` runs on this host: a zombie (killed, not yet reaped by its parent) holds nothing any more."""
    if not pid_alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS), or the process just went: trust the signal check
        return True


class Heartbeat:
    """While the ``with`` block runs, refresh ``run_id``'s lease every third of its length from a daemon thread."""

    def __init__(self, client: Any, run_id: str, seconds: float | None = None) -> None:
        self.client, self.run_id = client, run_id
        self.seconds = seconds if seconds is not None else lease_seconds()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        now = time.time()
        tags = lease_tags(now + self.seconds, now)
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.beat()
            except Exception:  # a store hiccup: the next beat tries again; the lease is long enough for a few misses
                continue

    def __enter__(self) -> "Heartbeat":
        self.beat()
        self._thread = threading.Thread(target=self._run, name=f"ganbench-heartbeat-{self.run_id[:8]}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def dead_reason(tags: Mapping[str, str], now: float) -> str | None:
    """Why a RUNNING run with these tags is not running any more, or None while it may be (or has no lease)."""
    until, host, pid = tags.get(layout.LEASE_UNTIL_TAG), tags.get(layout.LEASE_HOST_TAG), tags.get(layout.LEASE_PID_TAG)
    if until is None:
        return None  # not a ganbench run with a heartbeat: nothing is known about it
    if host == HOST and pid and pid.isdigit() and not process_running(int(pid)):
        return f"its process (pid {pid} on {host}) is gone"
    if float(until) < now:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(until)))
        return f"no heartbeat from pid {pid} on {host} since its lease ran out at {stamp}"
    return None


def busy_reason(run: Any, now: float | None = None) -> str | None:
    """'pid X on HOST, last heartbeat N s ago' while ``run`` is RUNNING under a live lease of another process, else None."""
    now = time.time() if now is None else now
    tags = run.data.tags
    if run.info.status != "RUNNING" or layout.LEASE_UNTIL_TAG not in tags or dead_reason(tags, now) is not None:
        return None
    pid, host = tags.get(layout.LEASE_PID_TAG), tags.get(layout.LEASE_HOST_TAG)
    if host == HOST and pid == str(os.getpid()):
        return None  # this process's own run (in-process callers): not another writer
    beat = tags.get(layout.LEASE_BEAT_TAG)
    when = (f"last heartbeat {max(0.0, now - float(beat)):.0f} s ago" if beat
            else f"its lease runs {float(tags[layout.LEASE_UNTIL_TAG]) - now:.0f} s more")
    return f"pid {pid} on {host}, {when}"


def refuse_if_busy(run: Any, what: str = "run") -> None:
    """Raise ``BusyError`` when ``run`` (a ``what``: run or sweep) is RUNNING under a live lease: two processes
    continuing one run would each log its steps, every metric twice."""
    reason = busy_reason(run)
    if reason is not None:
        raise BusyError(
            f"this {what} is running now (run {run.info.run_id}: {reason}); wait for it, or stop it, "
            f"or pass fresh=true for a separate {what}"
        )


def reap_dead_runs(client: Any, experiment_ids: Iterable[str], now: float | None = None) -> list[str]:
    """Mark every RUNNING run of the experiments whose process is gone KILLED, with the reason as tag ``killed``."""
    now = time.time() if now is None else now
    ids = [i for i in experiment_ids if i]
    if not ids:
        return []
    reaped = []
    for run in search_all(client, ids, "attributes.status = 'RUNNING'"):
        reason = dead_reason(run.data.tags, now)
        if reason is None:
            continue
        try:
            client.set_tag(run.info.run_id, layout.KILLED_TAG, f"found RUNNING but {reason}")
            client.set_terminated(run.info.run_id, "KILLED")
        except Exception as exc:  # a read-only store: reading it must still work
            log.warning("could not mark run %s KILLED (%s): %s", run.info.run_id, reason, exc)
            continue
        reaped.append(run.info.run_id)
    return reaped
