"""Training: the GAN step (``step``), the loop (``loop``), optimisers and schedules (``optim``), what a run
trains with (``build``, from ``settings``), checkpoints (``checkpoint``, ``resume``) and one run (``run``)."""

from ganbench.train.interrupt import Interrupted, StopRequest
from ganbench.train.loop import DivergedError
from ganbench.train.run import check_data_fits, train_run
from ganbench.train.settings import TrainSettings

__all__ = ["DivergedError", "Interrupted", "StopRequest", "TrainSettings", "check_data_fits", "train_run"]
