"""``python -m ganbench.reproduce``: the sweep's systems compose, and the table is written from a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from mlflow.tracking import MlflowClient

from ganbench.reproduce import claims as c
from ganbench.reproduce.__main__ import main
from ganbench.reproduce.systems import SYSTEMS
from ganbench.sweep.grids import register_sweeps
from ganbench.tracking.layout import PARENT_TAG, ROLE_SWEEP, ROLE_TAG, SEED_TAG


def composed(*overrides: str, hydra: bool = False):
    register_sweeps()
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.key)
def test_each_system_runs_its_preset_at_a_budget_below_the_reports(system):
    cfg = composed(f"experiment=reproduce/{system.key}", "sweep=reproduce")
    full = composed(f"experiment={system.preset}")
    assert cfg.preset == system.preset  # the claims find the runs by this tag
    assert cfg.model == full.model and cfg.dataset == full.dataset and cfg.loss == full.loss
    assert cfg.train.max_steps < (system.report_updates or full.train.max_steps)
    assert cfg.tracking.experiment == "reproduce"


def test_the_sweep_lists_every_system_with_two_seeds():
    params = composed("sweep=reproduce", hydra=True).hydra.sweeper.params
    listed = {e.strip().removeprefix("reproduce/") for e in params.experiment.split(",")}
    assert listed == {s.key for s in SYSTEMS}
    assert len(str(params.seed).split(",")) >= 2  # every comparison gets at least 2 seeds a side


def test_the_s0_systems_are_scored_in_one_feature_space():
    sizes = {composed(f"experiment={p}").eval.image_size for p in (c.S0A, c.S0B, c.S0C, c.S0D)}
    assert sizes == {28}


def fake_sweep(uri: str) -> None:
    """A finished reproduction sweep as the app leaves it: a parent run, S2's two systems and S0a and S0d x 2 seeds."""
    client = MlflowClient(uri)
    exp = client.create_experiment("reproduce")
    parent = client.create_run(exp, tags={ROLE_TAG: ROLE_SWEEP}, run_name="sweep-reproduce")
    systems = ((c.S2N, (10.0, 11.0), 2000), (c.S2U, (30.0, 33.0), 2000), (c.S0A, (20.0, 21.0), 1000), (c.S0D, (50.0, 52.0), 400))
    for preset, fid, steps in systems:
        for seed, value in enumerate(fid):
            run = client.create_run(exp, tags={PARENT_TAG: parent.info.run_id, "preset": preset, SEED_TAG: str(seed),
                                              "dataset": "mnist", c.CLASSIFIER_SHA: "same"})
            client.log_param(run.info.run_id, "train.total_steps", str(steps))
            client.log_metric(run.info.run_id, "fid_clf", value, step=2000)
            client.set_terminated(run.info.run_id, "FINISHED")
    client.set_terminated(parent.info.run_id, "FINISHED")


def test_report_only_writes_the_table_with_verdicts(mlflow_uri: str, tmp_path: Path, capsys):
    fake_sweep(mlflow_uri)
    assert main(["--report-only", f"tracking.uri={mlflow_uri}", f"out={tmp_path}"]) == 0
    md = (tmp_path / "REPRODUCTION.md").read_text()
    row = next(line for line in md.splitlines() if "normal prior works better" in line)
    assert "**reproduced**" in row and "10.5" in row and "31.5" in row
    assert "| 2,000 updates, 4.3% of the report's |" in row  # every verdict stands beside the budget behind it
    assert "2,000 generator updates, 4.3% of the report's 46,875" in md
    # A comparison of systems trained for different budgets shows both.
    row = next(line for line in md.splitlines() if "the WGAN looked worse" in line)
    assert "| S0a: 1,000 updates, 20% of the report's; S0d: 400 updates |" in row
    assert "not run yet" in md  # the systems without runs say so
    html = (tmp_path / "reproduction.html").read_text()
    assert "S2 DCGAN, normal prior" in html and 'class="status reproduced"' in html


def test_bad_arguments_are_one_line_with_exit_2(mlflow_uri: str, tmp_path: Path, capsys):
    assert main(["--report-only", "sweep=nope", f"tracking.uri={mlflow_uri}"]) == 2
    assert main(["--report-only", f"tracking.uri=sqlite:///{tmp_path}/missing.db"]) == 2
    assert main(["--bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "sweep='nope'" in err[0] and "no MLflow store" in err[1] and "--bogus" in err[2]


def test_the_whole_command_trains_the_sweep_then_writes_its_table(mlflow_uri: str, tmp_path: Path, quick_eval_overrides, capfd):
    # One system, one seed, a few steps: the path a user takes, from the sweep to the table, with real runs.
    args = ["hydra.sweeper.params.experiment=reproduce/s1", "hydra.sweeper.params.seed=0", "train.max_steps=3",
            *quick_eval_overrides, "eval.cas.enabled=false", f"hydra.sweep.dir={tmp_path / 'multirun'}",
            f"tracking.uri={mlflow_uri}", f"out={tmp_path / 'out'}"]
    assert main(args) == 0
    md = (tmp_path / "out" / "REPRODUCTION.md").read_text()
    assert "python -m ganbench.reproduce hydra.sweeper.params.experiment=reproduce/s1" in md  # the command behind it
    s1 = [line for line in md.splitlines() if line.startswith("| S1")]
    assert s1 and all("not run yet" not in line for line in s1)  # S1 trained and was checked ...
    assert "not run yet" in md  # ... the other systems say they were not
    client = MlflowClient(mlflow_uri)
    (run,) = [r for r in client.search_runs([client.get_experiment_by_name("reproduce").experiment_id])
              if r.data.tags.get(ROLE_TAG) != ROLE_SWEEP and PARENT_TAG in r.data.tags]
    assert run.info.status == "FINISHED" and run.data.tags[SEED_TAG] == "0" and "gen_accuracy" in run.data.metrics
    assert "reproduction table:" in capfd.readouterr().out
