"""Float32 versions of the noise scales the accountant charged for, never smaller than them."""

import numpy as np


def float32_at_least(value: float) -> np.float32:
    """`value` as the nearest float32 not below it: TF adds noise in float32, and the noise
    applied must never be smaller than the noise accounted for."""
    rounded = np.float32(value)
    return rounded if rounded >= value else np.nextafter(rounded, np.float32(np.inf))
