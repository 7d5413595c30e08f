"""Composing pure ε-DP releases (e.g. sparse vector uploads) honestly.

Every ε-DP mechanism is, on any pair of neighbours, a post-processing of binary randomized
response with parameter ε (Kairouz, Oh & Viswanath 2015): the pair of output laws
(e^ε, 1)/(1 + e^ε) and (1, e^ε)/(1 + e^ε). Divergences only shrink under post-processing, so
randomized response is the worst case for every accountant at once:
- its RDP curve bounds that of any ε-DP mechanism, so pure-DP releases join the RDP ledger
  (`pure_dp_rdp_curve`);
- its privacy loss is ±ε, so k compositions have a loss of ε·(k − 2·Binomial(k, 1/(1 + e^ε))),
  whose exact (ε, δ) curve is the optimal composition theorem (Kairouz et al., Thm 3.3);
  dp_accounting's PLD computes it (`optimal_composition_epsilon`);
- basic composition, k·ε at δ = 0, holds regardless (`basic_composition`).
`composed_epsilon` reports the smallest of the three and says which one it is.
"""

import math
from collections.abc import Sequence

import numpy as np
from dp_accounting.pld import common as pld_common
from dp_accounting.pld import privacy_loss_distribution as pld_lib

from mechanisms.accounting.rdp import RDP_ORDERS, RdpCurve, epsilon_and_order

BASIC = "basic"
"""count·ε: basic composition, the only bound at δ = 0."""
OPTIMAL = "optimal"
"""Optimal composition of ε-DP (Kairouz et al. 2015), computed by dp_accounting's PLD."""
RDP = "rdp"
"""The RDP of randomized response composed and converted to (ε, δ)."""


def randomized_response_rdp(orders: Sequence[float], epsilon: float) -> np.ndarray:
    """RDP at `orders` of binary randomized response with parameter ε: a bound on the RDP of
    every ε-DP mechanism, never above ε nor above Bun & Steinke's α·ε²/2.

    D_α = log(1 + x)/(α − 1) with x = (e^{αε} − 1)(1 − e^{−(α−1)ε})/(1 + e^ε), evaluated through
    log x so that neither large ε·α overflows nor small ε cancels.
    """
    _check_epsilon(epsilon)
    alphas = np.asarray(orders, dtype=np.float64)
    if alphas.ndim != 1 or np.any(~(alphas > 1)) or np.any(~np.isfinite(alphas)):
        raise ValueError(f"RDP orders must be finite and greater than 1, got {orders}")
    log_x = (
        alphas * epsilon
        + _log_one_minus_exp_minus(alphas * epsilon)
        + _log_one_minus_exp_minus((alphas - 1) * epsilon)
        - np.logaddexp(0.0, epsilon)
    )
    rdp = np.logaddexp(0.0, log_x) / (alphas - 1)
    # ε-DP bounds every Rényi divergence by ε (D_α ≤ D_∞ = ε): trim the last ulp of rounding.
    return np.minimum(rdp, epsilon)


def pure_dp_rdp_curve(epsilon: float, orders: Sequence[float] = RDP_ORDERS) -> RdpCurve:
    """One ε-DP release as an `RdpCurve` for the ledger (the unit of privacy is the ε-DP one's).

    This is the unsampled release: it does not claim amplification by sampling, which makes it a
    valid, conservative bound for a participant who takes part in only some rounds.
    """
    return RdpCurve(orders=tuple(orders), rdp=tuple(randomized_response_rdp(orders, epsilon)))


def basic_composition(epsilon: float, count: int) -> float:
    """count·ε: `count` ε-DP releases are (count·ε)-DP, at δ = 0."""
    _check_epsilon(epsilon)
    _check_count(count)
    return count * epsilon


def optimal_composition_epsilon(epsilon: float, count: int, delta: float) -> float:
    """The smallest ε' such that any `count` adaptively composed ε-DP releases are (ε', δ)-DP.

    dp_accounting's PLD of randomized response, self-composed. The discretisation interval is ε
    itself: the losses ±ε then sit on the grid exactly, so the only approximation is the
    pessimistic truncation of tails below 1e-15 (and floating point). inf when ε is too large to
    build the PLD in floating point (basic composition is then within a hair of optimal).
    """
    _check_epsilon(epsilon)
    _check_count(count)
    _check_delta(delta)
    if count == 0:
        return 0.0
    try:
        pld = pld_lib.from_privacy_parameters(
            pld_common.DifferentialPrivacyParameters(epsilon, 0.0),
            value_discretization_interval=epsilon,
        )
        if count > 1:
            pld = pld.self_compose(count)
        return float(pld.get_epsilon_for_delta(delta))
    except OverflowError:
        return math.inf


def rdp_composition_epsilon(
    epsilon: float, count: int, delta: float, orders: Sequence[float] = RDP_ORDERS
) -> float:
    """ε at δ of `count` ε-DP releases through the RDP of randomized response, composed by
    adding, converted by dp_accounting (what the RDP ledger reports for them)."""
    _check_epsilon(epsilon)
    _check_count(count)
    _check_delta(delta)
    if count == 0:
        return 0.0
    rdp = count * randomized_response_rdp(orders, epsilon)
    return epsilon_and_order(orders, rdp, delta)[0]


def composed_epsilon(epsilon: float, count: int, delta: float) -> tuple[float, str]:
    """The best valid total ε of `count` adaptively composed ε-DP releases at `delta`, and
    which bound gave it: `BASIC`, `OPTIMAL` or `RDP` (ties go to the simpler bound).

    All three are valid; the optimal composition is the smallest up to discretisation, the
    others are there as checks and as the figure a reader can recompute by hand.
    """
    _check_epsilon(epsilon)
    _check_count(count)
    if not 0 <= delta < 1:
        raise ValueError(f"delta must be in [0, 1), got {delta}")
    basic = basic_composition(epsilon, count)
    if delta == 0 or count == 0:
        return basic, BASIC
    candidates = [
        (basic, BASIC),
        (optimal_composition_epsilon(epsilon, count, delta), OPTIMAL),
        (rdp_composition_epsilon(epsilon, count, delta), RDP),
    ]
    best = min(value for value, _ in candidates)
    return next((value, name) for value, name in candidates if value == best)


def _log_one_minus_exp_minus(y: np.ndarray) -> np.ndarray:
    """log(1 − e^{−y}) for y > 0, accurate for small y (log(−expm1(−y)))."""
    return np.log(-np.expm1(-y))


def _check_epsilon(epsilon: float) -> None:
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be positive and finite, got {epsilon}")


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")


def _check_delta(delta: float) -> None:
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
