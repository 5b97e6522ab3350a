"""Run leases: a live run keeps RUNNING, a run whose process is gone or whose lease ran out is marked KILLED."""

import os
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from ganbench.tracking import Heartbeat, experiment_id, layout, reap_dead_runs
from ganbench.tracking.lease import HOST, BusyError, busy_reason, dead_reason, refuse_if_busy


def dead_pid() -> str:
    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()


def wait_for(condition, seconds: float) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_dead_reason_for_a_gone_process_an_expired_lease_and_a_live_run():
    now = time.time()
    assert "is gone" in dead_reason({layout.LEASE_HOST_TAG: HOST, layout.LEASE_PID_TAG: dead_pid(), layout.LEASE_UNTIL_TAG: f"{now + 100:.0f}"}, now)
    other = {layout.LEASE_HOST_TAG: "elsewhere", layout.LEASE_PID_TAG: "1", layout.LEASE_UNTIL_TAG: f"{now - 5:.0f}"}
    assert "lease ran out" in dead_reason(other, now)
    assert dead_reason({**other, layout.LEASE_UNTIL_TAG: f"{now + 60:.0f}"}, now) is None  # another host, lease still valid
    assert dead_reason({layout.LEASE_HOST_TAG: HOST, layout.LEASE_PID_TAG: str(os.getpid()), layout.LEASE_UNTIL_TAG: f"{now + 60:.0f}"}, now) is None
    assert dead_reason({}, now) is None  # a run without a lease: nothing is known about it


def test_the_reaper_kills_only_runs_whose_process_is_gone_and_a_heartbeat_extends_the_lease(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    exp = experiment_id(client, "leases")
    gone = client.create_run(exp, tags={layout.LEASE_HOST_TAG: HOST, layout.LEASE_PID_TAG: dead_pid(),
                                        layout.LEASE_UNTIL_TAG: f"{time.time() + 600:.0f}"}).info.run_id
    alive = client.create_run(exp).info.run_id
    unknown = client.create_run(exp).info.run_id  # no lease tags
    # A 3 s lease beats every second: long enough that a loaded CI machine cannot let it lapse mid-test.
    with Heartbeat(client, alive, seconds=3.0):
        first = float(client.get_run(alive).data.tags[layout.LEASE_UNTIL_TAG])
        assert wait_for(lambda: float(client.get_run(alive).data.tags[layout.LEASE_UNTIL_TAG]) > first, 10)  # refreshed
        assert reap_dead_runs(client, [exp]) == [gone]
    killed = client.get_run(gone)
    assert killed.info.status == "KILLED" and "is gone" in killed.data.tags["killed"]
    assert client.get_run(alive).info.status == "RUNNING" and client.get_run(unknown).info.status == "RUNNING"
    # The heartbeat stopped: once the lease runs out the run counts as dead, even with its pid alive (pids are reused).
    assert set(reap_dead_runs(client, [exp], now=time.time() + 10)) == {alive}
    assert "lease ran out" in client.get_run(alive).data.tags["killed"]


def test_a_run_leased_by_another_live_process_is_busy_and_refused_in_one_line(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    exp = experiment_id(client, "busy")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the process training the run
    now = time.time()
    run_id = client.create_run(exp, tags={layout.LEASE_HOST_TAG: HOST, layout.LEASE_PID_TAG: str(holder.pid),
                                          layout.LEASE_UNTIL_TAG: f"{now + 60:.1f}", layout.LEASE_BEAT_TAG: f"{now - 5:.1f}"}).info.run_id
    try:
        run = client.get_run(run_id)
        assert busy_reason(run, now) == f"pid {holder.pid} on {HOST}, last heartbeat 5 s ago"
        with pytest.raises(BusyError) as refused:
            refuse_if_busy(run, "sweep")
        message = str(refused.value)
        assert message.startswith(f"this sweep is running now (run {run_id}: pid {holder.pid} on {HOST}, last heartbeat ")
        assert message.endswith("wait for it, or stop it, or pass fresh=true for a separate sweep") and "\n" not in message
        holder.kill()
        time.sleep(0.5)  # killed, not yet reaped by its parent: a zombie holds nothing
        assert busy_reason(run) is None
    finally:
        holder.kill()
        holder.wait()
    client.set_terminated(run_id, "KILLED")
    assert busy_reason(client.get_run(run_id)) is None  # ended: nothing to wait for
