"""Fixtures of the evaluation stage's tests: composed configs, a torch hub cache without Inception's weights, a dead server."""

from __future__ import annotations

import socket

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


@pytest.fixture
def dead_server_uri() -> str:
    """An http:// tracking URI on a local port nothing listens on (bound, then closed): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
