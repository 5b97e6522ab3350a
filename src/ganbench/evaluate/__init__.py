"""The evaluation stage: score a generator against real data and log the numbers to its MLflow run.

The app uses ``EvalSettings.from_config(cfg)`` (checked once, ``ConfigError`` listing every problem) and
``evaluate_generator(settings, generator, conditional, num_classes, device, logger, step, artifact_dir)``.
``python -m ganbench.evaluate run_id=<id> | experiment=<name>`` re-scores logged runs (``rescore``);
``python -m ganbench.evaluate.classifier dataset=hoda`` trains or finds the auxiliary classifier.

Rooms: ``settings`` (the typed config), ``classifier`` / ``classifier_net`` (the digit classifier, its
files, cache and MLflow run), ``features`` (feature extractors and spaces), ``metrics`` (the maths),
``strokes`` and ``parzen`` (pixel-space maths: stroke statistics, the Parzen-window log-likelihood), ``pixels``
(those two against their real images), ``resize`` (``eval.image_size``), ``figures``, ``evaluator`` (the
per-process evaluator), ``reference`` (the real-data reference run), ``record`` (what lands in MLflow),
``stage`` (``evaluate_generator``), ``rescore``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganbench.evaluate.errors import ClassifierError, EvalError
from ganbench.evaluate.settings import EvalSettings

if TYPE_CHECKING:
    from ganbench.evaluate.stage import evaluate_generator

__all__ = ["ClassifierError", "EvalError", "EvalSettings", "evaluate_generator"]


def __getattr__(name: str) -> Any:
    # evaluate_generator is imported on first use, not with the package: `python -m ganbench.evaluate.classifier`
    # imports this package first, and an eager import would load that module before runpy runs it as __main__
    # (a RuntimeWarning and two copies of its state).
    if name == "evaluate_generator":
        from ganbench.evaluate.stage import evaluate_generator

        return evaluate_generator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
