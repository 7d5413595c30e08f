"""The one search every calibration here does: the least noise that meets a target."""

import math
from collections.abc import Callable


def least_passing(
    passes: Callable[[float], bool], low: float, high: float, *, relative_tolerance: float
) -> float:
    """Geometric bisection for the boundary of a monotone predicate: given `passes(low)` false
    and `passes(high)` true, returns a passing value within `relative_tolerance` of the least
    one (noise parameters span orders of magnitude, hence geometric midpoints). Never returns a
    failing value, so a calibrated epsilon is never above its target."""
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got {low} and {high}")
    while high / low > 1 + relative_tolerance:
        middle = math.sqrt(low * high)
        if passes(middle):
            high = middle
        else:
            low = middle
    return high


def least_passing_in(
    passes: Callable[[float], bool], low: float, high: float, *, relative_tolerance: float
) -> float | None:
    """The least passing value in [low, high] (within `relative_tolerance`, never a failing one):
    `low` if it passes already, None if not even `high` passes; calibrations report that case in
    their own words."""
    if not passes(high):
        return None
    if passes(low):
        return low
    return least_passing(passes, low, high, relative_tolerance=relative_tolerance)
