"""MLflow stores: paging through every run, children of a parent, experiments created once, also by racing jobs."""

import pytest
from mlflow.tracking import MlflowClient

from ganbench.tracking import TrackingError, child_runs, experiment_id, layout, make_client, search_all, store

ROUNDS = 12


def test_search_all_returns_every_page(mlflow_uri, monkeypatch):
    client = MlflowClient(mlflow_uri)
    exp = experiment_id(client, "paging")
    ids = {client.create_run(exp).info.run_id for _ in range(5)}
    monkeypatch.setattr(store, "PAGE_SIZE", 2)  # three pages
    assert {r.info.run_id for r in search_all(client, exp)} == ids
    assert {r.info.run_id for r in search_all(client, [exp], f"attributes.run_id = '{sorted(ids)[0]}'")} == {sorted(ids)[0]}


def test_child_runs_are_the_runs_tagged_with_the_parent(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    exp = experiment_id(client, "sweep")
    parent = client.create_run(exp).info.run_id
    children = {client.create_run(exp, tags={"mlflow.parentRunId": parent}).info.run_id for _ in range(3)}
    client.create_run(exp)  # not a child
    assert {r.info.run_id for r in child_runs(client, parent)} == children


def test_an_experiment_is_created_once_beside_its_sqlite_store(mlflow_uri, tmp_path):
    client = MlflowClient(mlflow_uri)
    first = experiment_id(client, "a b")
    assert experiment_id(client, "a b") == first
    assert client.get_experiment(first).artifact_location == (tmp_path / "mlartifacts" / "a_b").as_uri()


def _open_experiments(uri, barrier):
    """One of two jobs starting together: each round, the id of an experiment somebody made without ganbench."""
    client = make_client(uri)
    for k in range(ROUNDS):
        barrier.wait(timeout=30)
        experiment_id(client, f"by-hand-{k}")


def test_jobs_starting_together_in_an_experiment_made_by_hand_both_run(mlflow_uri, run_together):
    # An experiment made in the MLflow UI (or by `mlflow experiments create`) has no ganbench kind tag; each job sets
    # it. MLflow looks the tag up, then inserts it, so two jobs at once broke its unique key and one failed.
    client = MlflowClient(mlflow_uri)
    for k in range(ROUNDS):
        client.create_experiment(f"by-hand-{k}")
    run_together(_open_experiments, [(mlflow_uri,), (mlflow_uri,)])
    for k in range(ROUNDS):
        assert client.get_experiment_by_name(f"by-hand-{k}").tags[layout.EXPERIMENT_KIND_TAG] == layout.EXPERIMENT_KIND


def test_an_unknown_store_scheme_is_one_line_naming_the_uri_and_what_works():
    import pytest

    from ganbench.tracking import TrackingError, make_client

    with pytest.raises(TrackingError) as err:
        make_client("garbage://x")
    message = str(err.value)
    assert "\n" not in message and "tracking.uri=garbage://x" in message and "'garbage'" in message and "sqlite:///" in message


@pytest.mark.parametrize("reader", [False, True])
def test_a_file_that_is_not_a_database_is_one_line_naming_it(tmp_path, reader):
    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes, not an MLflow store\n" * 100)
    with pytest.raises(TrackingError) as err:
        make_client(f"sqlite:///{junk}", reader=reader)
    message = str(err.value)
    assert "\n" not in message and f"tracking.uri=sqlite:///{junk} cannot be used" in message and "not a database" in message
    assert junk.read_text().startswith("these are my notes")  # left as it was


def test_the_app_refuses_an_unknown_store_with_exit_2(run_cli, tmp_path):
    proc = run_cli("ganbench", "tracking.uri=garbage://x", "data.limit=256", "train.batch_size=64", f"hydra.run.dir={tmp_path}/out")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("ganbench: error: tracking.uri=garbage://x cannot be used")


def test_a_reader_opens_a_store_whose_folder_refuses_the_lock_and_a_writer_is_told_why(mlflow_uri, tmp_path):
    # The tests run as root, whom chmod does not stop: a folder in the lock file's place refuses it to anyone.
    exp = experiment_id(make_client(mlflow_uri), "kept")
    lock = tmp_path / "mlflow.db-ganbench.lock"
    lock.unlink()
    lock.mkdir()
    assert make_client(mlflow_uri, reader=True).get_experiment(exp).name == "kept"
    with pytest.raises(TrackingError, match="cannot be written"):
        make_client(mlflow_uri)
    new = tmp_path / "new"
    (new / "mlflow.db-ganbench.lock").mkdir(parents=True)
    with pytest.raises(TrackingError, match="cannot be written"):  # a new store needs its tables created: the lock
        make_client(f"sqlite:///{new}/mlflow.db", reader=True)
    assert not (new / "mlflow.db").exists()
