"""Sweeps: the ready grids (``grids``) and the Hydra callbacks that give a multirun one MLflow parent run."""
