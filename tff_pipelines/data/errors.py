"""The one exception the data package raises for bad data or bad data options."""

from __future__ import annotations

from tff_pipelines.errors import InputError


class DataError(InputError, ValueError):
    """A dataset or a data option cannot be used; the message says which and what exists.

    A `ValueError` subclass, so callers that validate arguments generically still catch it.
    """
