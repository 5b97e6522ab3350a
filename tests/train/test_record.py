"""What a run records besides its metrics: the training data as its MLflow dataset input, also when the
parallel jobs of a sweep log the same new dataset at the same moment, and the generator as a logged model in the
run's experiment. Real processes, a real SQLite store."""

import mlflow.pytorch
import torch

from ganbench.data import load_dataset
from ganbench.tracking import RunLogger, experiment_id, make_client
from ganbench.train.record import dataset_input, record_dataset, record_generator_model

ROUNDS = 12  # the race hit about three rounds in four of a bare log_inputs (15 of 20 in a /tmp script)


def log_the_same_new_dataset(uri, data, barrier):
    """One of two racing jobs: each round a run in a new experiment, then the dataset, at the same moment as the other."""
    client = make_client(uri)
    for k in range(ROUNDS):
        run = client.create_run(experiment_id(client, f"race-{k}"))
        barrier.wait(timeout=30)
        record_dataset(RunLogger(client, run.info.run_id), data)


def test_two_jobs_logging_one_new_dataset_at_once_both_link_it(tmp_path, new_store, data_root, run_together):
    # MLflow's store looks a dataset up and inserts it when missing: the second job's insert broke the store's unique
    # key (experiment, name, digest) and failed its run, as a 2-job sweep against a server once did in CI.
    uri = new_store(tmp_path / "mlflow.db")
    data = load_dataset("hoda", "train", image_size=28, root=data_root, limit=64)
    run_together(log_the_same_new_dataset, [(uri, data), (uri, data)])

    client = make_client(uri)
    expected = dataset_input(data).dataset
    for k in range(ROUNDS):
        runs = client.search_runs([client.get_experiment_by_name(f"race-{k}").experiment_id])
        assert len(runs) == 2
        for run in runs:
            (logged,) = [d.dataset for d in run.inputs.dataset_inputs]  # one input a run, the same dataset row
            assert (logged.name, logged.digest) == (expected.name, expected.digest)


def test_the_generator_model_is_filed_under_the_runs_experiment(tmp_path, new_store):
    # MLflow, given only a run id, filed it under the default experiment "0": the UI's Models column and page of the
    # run's own experiment stayed empty.
    uri = new_store(tmp_path / "mlflow.db")
    client = make_client(uri)
    exp = experiment_id(client, "models")
    run = client.create_run(exp, tags={"mlflow.runName": "g"})
    client.log_param(run.info.run_id, "seed", "3")
    generator = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh())
    model_uri = record_generator_model(RunLogger(client, run.info.run_id), generator)

    (model,) = client.search_logged_models([exp])
    assert model_uri == f"models:/{model.model_id}" and model.source_run_id == run.info.run_id
    assert model.params["seed"] == "3"  # the run's params, as MLflow would have copied them
    assert model.artifact_location.startswith(client.get_experiment(exp).artifact_location)
    assert not client.search_logged_models(["0"])
    z = torch.randn(2, 4)
    assert torch.equal(mlflow.pytorch.load_model(model_uri)(z), generator(z))
