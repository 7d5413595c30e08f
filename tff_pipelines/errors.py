"""The input is wrong: errors the CLI reports in a few lines with exit code 2, no traceback.

Spec, data, model-factory and run-directory errors all derive from `InputError`, so the CLI can
catch them without importing the (TensorFlow-heavy) modules that raise them.
"""


class InputError(Exception):
    """Something the user gave (spec, data, model factory, run directory) cannot be used."""


class ModelFactoryError(InputError, ValueError):
    """A user's model factory could not be imported or returned something unusable."""


class RunError(InputError):
    """A run cannot start or continue as asked (bad directory, spec changed on resume, ...)."""
