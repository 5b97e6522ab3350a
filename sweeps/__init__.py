"""The ready grids of the ``sweep`` config group (``python -m ganbench -m sweep=<name>``).

Each ``<name>.yaml`` here is a ``# @package _global_`` config; ``ganbench.sweep.grids`` registers them
with Hydra's ConfigStore as group ``sweep`` when the configs are first read.
"""
