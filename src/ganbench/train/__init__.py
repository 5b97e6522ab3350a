"""Training: the GAN step (``step``), the loop (``loop``), optimisers and schedules (``optim``), what a run
trains with (``build``, from ``settings``), checkpoints (``checkpoint``, ``resume``), stopping cleanly
(``interrupt``), what a run records (``record``) and one run's training (``run``).

Import from the submodules; this package's own import loads nothing, so reading a checkpoint
(``ganbench.train.checkpoint``) does not load the trainer.
"""
