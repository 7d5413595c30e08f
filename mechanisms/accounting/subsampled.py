"""RDP of a mechanism run on a Poisson-subsampled cohort, from its unsampled RDP at integer orders.

dp_accounting covers subsampling only for its own events. SMM, DDG and Skellam state their privacy
as an RDP curve, so they are amplified here with the integer-order bounds their papers use: the
general bound of Zhu & Wang 2019 (valid for any mechanism) or the "tight" form coded by the SMM
authors (the same sum without the factor 3; exact for the Gaussian, unproven in general).
"""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from scipy.special import gammaln, logsumexp

Bound = Literal["general", "tight"]

# Zhu & Wang 2019 (Theorem 9) pays a factor 3 on every term with j >= 3 for an arbitrary mechanism.
_TERM_FACTOR: dict[str, float] = {"general": 3.0, "tight": 1.0}


def poisson_subsampled_rdp(
    rdp_at: Callable[[np.ndarray], np.ndarray],
    *,
    rate: float,
    orders: Sequence[int],
    bound: Bound = "general",
) -> np.ndarray:
    """RDP at each integer order alpha of the mechanism `rdp_at` applied to a cohort sampled with
    probability `rate`: min(eps_q(alpha), eps(alpha)), where eps(j) = rdp_at(j) is unsampled.

    With w_j = C(alpha, j) q^j (1-q)^(alpha-j), the bound is

        eps_q(alpha) = log[(1-q)^(alpha-1)(alpha q - q + 1) + sum_{j>=2} f_j w_j e^{(j-1)eps(j)}]
                       / (alpha - 1),  f_2 = 1, f_{j>=3} = 3 (general) or 1 (tight).

    The first term is w_0 + w_1 and all the w_j sum to 1, so the bracket equals
    1 + sum_{j>=2} w_j (f_j e^{(j-1)eps(j)} - 1), a sum of non-negative terms. Evaluating that form
    in log space keeps full relative precision both when eps_q is tiny (no cancellation against
    the 1) and when the exponentials overflow.
    """
    if bound not in _TERM_FACTOR:
        raise ValueError(f"bound must be 'general' or 'tight', got {bound!r}")
    if not 0 < rate <= 1:
        raise ValueError(f"the sampling rate must be in (0, 1], got {rate}")
    alphas = integer_orders(orders)
    js = np.arange(2, int(alphas.max()) + 1)
    unsampled = np.asarray(rdp_at(js), dtype=np.float64)
    if unsampled.shape != js.shape:
        raise ValueError(f"rdp_at returned shape {unsampled.shape} for {js.size} orders")
    if np.isnan(unsampled).any() or (unsampled < 0).any():
        raise ValueError("rdp_at must return non-negative RDP values (inf is allowed)")
    at_orders = unsampled[alphas - 2]
    if rate == 1:
        return at_orders

    log_weights = _log_weights(float(rate), tuple(alphas.tolist()))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        exponent = (js - 1) * unsampled  # (j - 1) eps(j), inf stays inf
        factor = np.where(js >= 3, _TERM_FACTOR[bound], 1.0)
        # log(f e^x - 1) = x + log((f - 1) - expm1(-x)): exact for x = 0 (-inf when f = 1) and
        # for x = inf (inf), and free of cancellation in between.
        log_excess = exponent + np.log((factor - 1) - np.expm1(-exponent))
        terms = np.where(np.isneginf(log_weights), -np.inf, log_weights + log_excess[None, :])
        log_sum = logsumexp(terms, axis=1)
    subsampled = np.logaddexp(0.0, log_sum) / (alphas - 1)
    return np.minimum(subsampled, at_orders)


@functools.lru_cache(maxsize=16)
def _log_weights(rate: float, orders: tuple[int, ...]) -> np.ndarray:
    """log C(alpha, j) q^j (1-q)^(alpha-j) for j = 2..max(orders) (columns), -inf for j > alpha.

    Cached: calibration evaluates many curves at one sampling rate.
    """
    alpha = np.asarray(orders, dtype=np.float64)[:, None]
    j = np.arange(2, max(orders) + 1, dtype=np.float64)[None, :]
    with np.errstate(invalid="ignore"):
        weights = (
            gammaln(alpha + 1)
            - gammaln(j + 1)
            - gammaln(alpha - j + 1)
            + j * math.log(rate)
            + (alpha - j) * math.log1p(-rate)
        )
    weights = np.where(j <= alpha, weights, -np.inf)
    weights.setflags(write=False)
    return weights


def integer_orders(orders: Sequence[int]) -> np.ndarray:
    """`orders` as int64, refused unless they are integers >= 2 (the binomial expansions of
    these bounds exist only there)."""
    values = np.asarray(orders, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("at least one order is needed")
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)) or values.min() < 2:
        raise ValueError(f"these RDP bounds need integer orders >= 2, got {list(orders)}")
    return values.astype(np.int64)
