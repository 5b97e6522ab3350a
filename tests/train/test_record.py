"""What a run records besides its metrics: the training data as its MLflow dataset input, also when the
parallel jobs of a sweep log the same new dataset at the same moment. Real processes, a real SQLite store."""

import multiprocessing

from ganbench.data import load_dataset
from ganbench.tracking import RunLogger, experiment_id, make_client
from ganbench.train.record import dataset_input, record_dataset

ROUNDS = 12  # the race hit about three rounds in four of a bare log_inputs (15 of 20 in a /tmp script)


def log_the_same_new_dataset(uri, data, barrier, errors):
    """One of two racing jobs: each round a run in a new experiment, then the dataset, at the same moment as the other."""
    try:
        client = make_client(uri)
        for k in range(ROUNDS):
            run = client.create_run(experiment_id(client, f"race-{k}"))
            barrier.wait(timeout=30)
            record_dataset(RunLogger(client, run.info.run_id), data)
    except BaseException as exc:
        errors.put(f"{type(exc).__name__}: {exc}"[:1000])
        raise


def test_two_jobs_logging_one_new_dataset_at_once_both_link_it(tmp_path, new_store, data_root):
    # MLflow's store looks a dataset up and inserts it when missing: the second job's insert broke the store's unique
    # key (experiment, name, digest) and failed its run, as a 2-job sweep against a server once did in CI.
    uri = new_store(tmp_path / "mlflow.db")
    data = load_dataset("hoda", "train", image_size=28, root=data_root, limit=64)
    ctx = multiprocessing.get_context("fork")  # no re-import: the two really log together
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=log_the_same_new_dataset, args=(uri, data, barrier, errors)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
    messages = [errors.get() for _ in range(errors.qsize())]
    assert [proc.exitcode for proc in procs] == [0, 0], messages

    client = make_client(uri)
    expected = dataset_input(data).dataset
    for k in range(ROUNDS):
        runs = client.search_runs([client.get_experiment_by_name(f"race-{k}").experiment_id])
        assert len(runs) == 2
        for run in runs:
            (logged,) = [d.dataset for d in run.inputs.dataset_inputs]  # one input a run, the same dataset row
            assert (logged.name, logged.digest) == (expected.name, expected.digest)
