"""Fitting a private sum into b-bit integers: the scale, what rounding does to the sensitivity, and
how often the modular sum wraps.

Distributed DP (DDG, Skellam) scales each client vector by s before rounding it to integers for
secure aggregation modulo 2^b. A larger s rounds more finely but makes the sum more likely to
wrap around the modulus; TFF picks s so that, under a Gaussian model of the aggregate, one
coordinate wraps with a chosen small probability.
"""

import math
import warnings

from scipy.special import erfc, erfcinv

MAX_SCALE = 1e6  # TFF's cap: beyond it float32 rounding, not the modulus, limits precision


class BitsTooFewError(ValueError):
    """The modulus cannot hold the cohort's sum at the target wrap probability."""


def min_bits(*, clients: int, wrap_probability: float, at_least_log2_clients: bool) -> int:
    """Fewest bits whose modulus leaves room for the rounding noise of `clients` vectors alone
    (TFF's feasibility test 2^(2b) > n·k²), and, if asked, b ≥ log2(n) as DDG and Skellam need."""
    k = wrap_k(wrap_probability)
    bits = 1
    while 4.0**bits <= clients * k * k or (at_least_log2_clients and 2**bits < clients):
        bits += 1
    return bits


def wrap_k(probability: float) -> float:
    """Standard deviations k at which a centred normal leaves (-k sd, k sd) with `probability`."""
    if not 0 < probability < 1:
        raise ValueError(f"the wrap probability must be in (0, 1), got {probability}")
    return math.sqrt(2) * float(erfcinv(probability))


def tff_scale(
    *,
    bits: int,
    clip: float,
    noise_multiplier: float,
    clients: int,
    dim: int,
    wrap_probability: float,
) -> float:
    """TFF's scale heuristic: the s at which the scaled, rounded and noised sum of `clients` vectors
    (L2 norm `clip`, padded dimension `dim`, local noise std z*clip/sqrt(clients)) leaves the
    b-bit range with probability `wrap_probability` per coordinate (see `sum_wrap_probability`),
    capped at 1e6.
    """
    _check_counts(bits=bits, clients=clients, dim=dim)
    _check_positive(clip=clip)
    if not noise_multiplier >= 0:
        raise ValueError(f"noise_multiplier must be non-negative, got {noise_multiplier}")
    k = wrap_k(wrap_probability)
    if bits < math.log2(clients):
        raise BitsTooFewError(
            f"bits ({bits}) is too small for {clients} clients: secure aggregation needs at "
            f"least log2(clients) = {math.log2(clients):.2f} bits"
        )
    headroom = 2.0 ** (2 * bits) - clients * k**2
    if headroom <= 0:
        raise BitsTooFewError(
            f"bits ({bits}) is too small for {clients} clients: the rounding noise of the sum "
            f"alone would wrap with probability above {wrap_probability:g}"
        )
    local_std = noise_multiplier * clip / math.sqrt(clients)
    spread = math.sqrt(clip**2 * clients**2 / dim + clients * local_std**2)
    scale = min(MAX_SCALE, math.sqrt(headroom) / (2 * k * spread))
    if scale <= 1:
        warnings.warn(
            f"the scale for {bits} bits is {scale:.3g} <= 1: rounding to integers will destroy "
            "most of the signal; use more bits or fewer clients per round",
            stacklevel=2,
        )
    return scale


def sensitivity_bounds(*, clip: float, scale: float, dim: int, beta: float) -> tuple[float, float]:
    """(L2, L1) sensitivity, in unscaled units, of one client's vector after scaling by `scale` and
    stochastic rounding, for a vector of L2 norm `clip` in padded dimension `dim`.

    beta = 0: rounding is unconditional, and each coordinate moves by < 1/scale. beta > 0: rounding
    is retried until the norm is within the concentration bound that holds with probability
    1 - beta (the accountant then also pays that bound).
    """
    _check_positive(clip=clip, scale=scale)
    _check_counts(dim=dim)
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    gamma = 1 / scale
    root_dim = math.sqrt(dim)
    l2 = clip + gamma * root_dim
    if beta > 0:
        concentrated = math.sqrt(
            clip**2
            + gamma**2 * dim / 4
            + math.sqrt(2 * math.log(1 / beta)) * gamma * (clip + gamma * root_dim / 2)
        )
        l2 = min(l2, concentrated)
    # An integer vector (scaled units) has L1 norm <= min(sqrt(d) L2, L2^2).
    l1 = l2 * min(root_dim, l2 * scale)
    return l2, l1


def sum_wrap_probability(
    *,
    bits: int,
    signal_l2: float,
    clients: int,
    dim: int,
    noise_variance: float,
) -> float:
    """Predicted probability that one coordinate of the integer sum leaves (-2^b/2, 2^b/2].

    Model (the one behind `tff_scale`): the `clients` rotated vectors of L2 norm `signal_l2`
    (scaled units) are all aligned, so a coordinate's signal has spread clients*signal_l2/sqrt(dim);
    stochastic rounding adds variance <= 1/4 per client; the integer noise adds `noise_variance`
    in total; the sum is treated as normal.
    """
    _check_counts(bits=bits, clients=clients, dim=dim)
    if not signal_l2 >= 0 or not noise_variance >= 0:
        raise ValueError("signal_l2 and noise_variance must be non-negative")
    variance = (clients * signal_l2) ** 2 / dim + clients / 4 + noise_variance
    half_range = 2.0 ** (bits - 1)
    return float(erfc(half_range / math.sqrt(2 * variance)))


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be positive and finite, got {value}")


def _check_counts(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
