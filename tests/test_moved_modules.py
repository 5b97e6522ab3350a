"""The addresses issue #4 published (`ganbench.classifier`, `ganbench.metrics`) still work after the restructuring."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import ganbench.classifier
import ganbench.evaluate.classifier
import ganbench.evaluate.metrics
import ganbench.metrics

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_the_old_metrics_module_offers_every_public_function_of_the_new_one():
    assert ganbench.metrics.__all__ == ganbench.evaluate.metrics.__all__
    for name in ganbench.evaluate.metrics.__all__:
        assert getattr(ganbench.metrics, name) is getattr(ganbench.evaluate.metrics, name), name
    # issue #4's example: two unit Gaussians a unit apart in one of two dimensions are at distance 1
    assert ganbench.metrics.frechet_distance(np.zeros(2), np.eye(2), np.array([1.0, 0.0]), np.eye(2)) == 1.0


def test_the_old_classifier_module_offers_the_public_functions_of_the_new_one():
    for name in ganbench.classifier.__all__:
        assert getattr(ganbench.classifier, name) is getattr(ganbench.evaluate.classifier, name), name


def test_python_m_ganbench_classifier_runs_the_classifier_command(tmp_path):
    # A bad dataset stops it before anything trains: the old command line reaches the new command's checks.
    out = subprocess.run(
        [sys.executable, "-m", "ganbench.classifier", "dataset=nosuch", f"tracking.uri=sqlite:///{tmp_path}/m.db",
         f"hydra.run.dir={tmp_path}/out"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=dict(os.environ), timeout=120,
    )  # fmt: skip
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "Could not find 'dataset/nosuch'" in lines[0]
    assert not (tmp_path / "m.db").exists()
