"""The one way the protocol fails: loudly, before a partial or wrong sum can be returned."""


class SecAggAbort(RuntimeError):
    """The protocol cannot finish safely (too few survivors, a secret that cannot be rebuilt, a
    neighbourhood too small for the threshold, or a message that breaks the protocol).

    A caller may retry the round with another cohort; it must never use a partial result.
    """
