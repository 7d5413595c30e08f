"""Privacy of the Skellam Mixture Mechanism (Bao et al., PVLDB 2022), as its authors account for it.

One round's RDP depends on the mixture-norm clip c and the total Poisson mean mu_total only through
c / mu_total, and holds when every scaled coordinate stays within L(alpha); the clients clip to
L at the optimal order of the whole run, which also covers every smaller order the subsampling
bound uses (L decreases in alpha).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mechanisms.accounting.bisection import least_passing
from mechanisms.accounting.rdp import epsilons_from_rdp
from mechanisms.accounting.subsampled import Bound, poisson_subsampled_rdp

SMM_ORDERS: tuple[int, ...] = tuple(range(2, 257))

_RELATIVE_TOLERANCE = 1e-6  # of mu_total, for calibration
_SEARCH_RANGE = 1e12  # calibration looks for mu_total within c * [1/range, range]


def smm_rdp(orders: Sequence[int] | np.ndarray, *, c: float, mu_total: float) -> np.ndarray:
    """Unsampled RDP of one SMM round: (1.2 alpha + 1) c / (4 mu_total)."""
    _check_positive(c=c, mu_total=mu_total)
    alphas = np.asarray(orders, dtype=np.float64)
    return (1.2 * alphas + 1) * c / (4 * mu_total)


def smm_linf(orders: Sequence[int] | np.ndarray, *, mu_total: float) -> np.ndarray:
    """Largest per-coordinate magnitude (scaled units) for which `smm_rdp` holds at each order."""
    _check_positive(mu_total=mu_total)
    alphas = np.asarray(orders, dtype=np.float64)
    with np.errstate(divide="ignore"):
        mixture_limit = np.sqrt(4 * mu_total / (10.9 * alphas**2 - 1.8 * alphas - 9.1))
    return np.minimum(2 * mu_total / alphas, mixture_limit)


def smm_round_rdp(
    *,
    c: float,
    mu_total: float,
    rate: float,
    bound: Bound = "general",
    orders: Sequence[int] = SMM_ORDERS,
) -> np.ndarray:
    """RDP of one Poisson-subsampled SMM round at `orders`."""
    return poisson_subsampled_rdp(
        lambda js: smm_rdp(js, c=c, mu_total=mu_total), rate=rate, orders=orders, bound=bound
    )


@dataclass(frozen=True)
class SmmPrivacy:
    """(epsilon at the caller's delta) of a run, its optimal order, and the L-inf clip it needs."""

    epsilon: float
    order: int
    linf: float


def smm_epsilon(
    *,
    c: float,
    mu_total: float,
    rate: float,
    rounds: int,
    delta: float,
    bound: Bound = "general",
    orders: Sequence[int] = SMM_ORDERS,
) -> SmmPrivacy:
    """Epsilon after `rounds` SMM rounds; clients must clip coordinates to the returned `linf`."""
    _check_rounds(rounds)
    total = rounds * smm_round_rdp(c=c, mu_total=mu_total, rate=rate, bound=bound, orders=orders)
    epsilon, order = epsilons_from_rdp(orders, total, delta)
    best = int(order)
    return SmmPrivacy(
        epsilon=float(epsilon), order=best, linf=float(smm_linf([best], mu_total=mu_total)[0])
    )


def smm_calibrate_mu_total(
    target_epsilon: float,
    *,
    c: float,
    rate: float,
    rounds: int,
    delta: float,
    bound: Bound = "general",
    orders: Sequence[int] = SMM_ORDERS,
    rdp_to_epsilon: Callable[[Sequence[int], np.ndarray], float] | None = None,
) -> float:
    """Smallest total Poisson mean (within 1e-6 relative, rounded towards more noise) for which
    `rounds` rounds cost at most `target_epsilon`.

    `rdp_to_epsilon(orders, total_rdp)` converts a run's RDP to epsilon; by default the package's
    conversion at `delta`. Epsilon depends on c / mu_total only and decreases in mu_total, so a
    geometric bisection on mu_total, bracketed in units of c, finds it in ~25 curve evaluations.
    """
    _check_positive(c=c)
    _check_rounds(rounds)
    if not target_epsilon > 0:
        raise ValueError(f"target_epsilon must be positive, got {target_epsilon}")
    if rdp_to_epsilon is None:

        def rdp_to_epsilon(orders: Sequence[int], rdp: np.ndarray) -> float:
            return float(epsilons_from_rdp(orders, rdp, delta)[0])

    def meets_target(mu_total: float) -> bool:
        rdp = rounds * smm_round_rdp(c=c, mu_total=mu_total, rate=rate, bound=bound, orders=orders)
        return rdp_to_epsilon(orders, rdp) <= target_epsilon

    low, high = _bracket(meets_target, c, target_epsilon, rounds, delta)
    return least_passing(meets_target, low, high, relative_tolerance=_RELATIVE_TOLERANCE)


def _bracket(
    meets_target: Callable[[float], bool],
    c: float,
    target_epsilon: float,
    rounds: int,
    delta: float,
) -> tuple[float, float]:
    """(too little noise, enough noise) for mu_total, stepping by factors of 2 from c."""
    mu_total = c
    if meets_target(mu_total):
        while True:
            high, mu_total = mu_total, mu_total / 2
            if mu_total < c / _SEARCH_RANGE:
                raise ValueError(
                    f"epsilon {target_epsilon:g} at delta {delta:g} over {rounds} rounds is met "
                    f"even with mu_total = c / {_SEARCH_RANGE:g}; this target does not "
                    "constrain the noise"
                )
            if not meets_target(mu_total):
                return mu_total, high
    while True:
        low, mu_total = mu_total, mu_total * 2
        if mu_total > c * _SEARCH_RANGE:
            raise ValueError(
                f"no mu_total up to {_SEARCH_RANGE:g} * c reaches epsilon {target_epsilon:g} at "
                f"delta {delta:g} over {rounds} rounds"
            )
        if meets_target(mu_total):
            return low, mu_total


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be positive and finite, got {value}")


def _check_rounds(rounds: int) -> None:
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
