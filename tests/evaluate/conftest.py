"""Fixtures of the evaluation stage's tests: composed configs and a torch hub cache without Inception's weights."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module


def _compose(*overrides: str, config: str = "config"):
    with initialize_config_module("ganbench.conf", version_base="1.3"):
        return compose(config, overrides=list(overrides))


@pytest.fixture(scope="session")
def compose_cfg():
    """``compose_cfg(*overrides, config="config")``: the app's (or the classifier command's) composed config."""
    return _compose


@pytest.fixture
def no_hub_weights(tmp_path, monkeypatch):
    """A torch hub cache without the Inception weights (what every machine here has)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
