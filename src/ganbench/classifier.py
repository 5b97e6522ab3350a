"""The classifier's first address (issue #4: ``python -m ganbench.classifier dataset=hoda``), kept for scripts and
notes written against it. The code lives in :mod:`ganbench.evaluate.classifier` since the evaluation stage became a
package; this module only re-exports its public names and runs its command."""

from ganbench.evaluate.classifier import (
    LoadedClassifier,
    carve_heldout,
    classifier_key,
    classifier_path,
    find_or_train,
    get_classifier,
    load_classifier,
    load_splits,
    main,
    save_classifier,
    train_and_save,
)

__all__ = [
    "LoadedClassifier",
    "carve_heldout",
    "classifier_key",
    "classifier_path",
    "find_or_train",
    "get_classifier",
    "load_classifier",
    "load_splits",
    "main",
    "save_classifier",
    "train_and_save",
]

if __name__ == "__main__":
    main()
