"""The evaluation stage's user-fixable errors (both ``ganbench.errors.UserError``, so every CLI prints them in one line)."""

from __future__ import annotations

from ganbench.errors import UserError


class EvalError(UserError):
    """The evaluation cannot run as asked (missing Inception weights with eval.inception=on, no checkpoint, ...)."""


class ClassifierError(UserError):
    """A classifier file that is missing, damaged, not ganbench's, or made for other data."""
