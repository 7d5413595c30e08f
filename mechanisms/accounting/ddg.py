"""Privacy of the distributed discrete Gaussian (Kairouz, Liu, Steinke, ICML 2021) and Skellam
(Agarwal, Kairouz, Liu, NeurIPS 2021) mechanisms, per round and Poisson-subsampled.

Everything is in the unscaled domain: `sigma` is one client's noise std before scaling by `scale`,
and `l2`, `l1` bound the change of one client's rounded vector divided by `scale` (see
`mechanisms.scaling.sensitivity_bounds`). A sum of discrete Gaussians is not a discrete Gaussian;
DDG's tau term pays for the difference, and Skellam's extra term for its non-Gaussian tails.
"""

import math
from collections.abc import Sequence

import numpy as np

from mechanisms.accounting.subsampled import poisson_subsampled_rdp

# The orders of the reference implementation (google-research/federated distributed_dp).
DISTRIBUTED_ORDERS: tuple[int, ...] = (*range(2, 129), 256)


def ddg_tau(*, sigma: float, scale: float, clients: int) -> float:
    """How far the sum of `clients` discrete Gaussians (std sigma*scale each) is from one discrete
    Gaussian: 10 * sum_{k=1}^{n-1} exp(-2 pi^2 (sigma s)^2 k / (k+1))."""
    _check_positive(sigma=sigma, scale=scale)
    _check_count(clients=clients)
    k = np.arange(1, clients, dtype=np.float64)
    return float(10 * np.exp(-2 * math.pi**2 * (sigma * scale) ** 2 * k / (k + 1)).sum())


def ddg_rdp(
    orders: Sequence[int] | np.ndarray,
    *,
    l2: float,
    l1: float,
    sigma: float,
    clients: int,
    scale: float,
    dim: int,
) -> np.ndarray:
    """Unsampled RDP of one DDG round (the least of the paper's three bounds) at `orders`."""
    _check_positive(l2=l2, l1=l1)
    _check_count(dim=dim)
    tau = ddg_tau(sigma=sigma, scale=scale, clients=clients)
    alphas = np.asarray(orders, dtype=np.float64)
    sum_std = math.sqrt(clients) * sigma
    gaussian_like = alphas * l2**2 / (2 * sum_std**2) + tau * dim
    with_l1 = alphas / 2 * (l2**2 / sum_std**2 + 2 * l1 * tau / sum_std + tau**2 * dim)
    shifted = alphas / 2 * (l2 / sum_std + tau * math.sqrt(dim)) ** 2
    return np.minimum(np.minimum(gaussian_like, with_l1), shifted)


def skellam_rdp(
    orders: Sequence[int] | np.ndarray,
    *,
    l2: float,
    l1: float,
    sigma: float,
    clients: int,
    scale: float,
) -> np.ndarray:
    """Unsampled RDP of one Skellam round at `orders`; the sum has variance mu = n sigma^2."""
    _check_positive(l2=l2, l1=l1, sigma=sigma, scale=scale)
    _check_count(clients=clients)
    alphas = np.asarray(orders, dtype=np.float64)
    mu = clients * sigma**2
    tail = np.minimum(
        ((2 * alphas - 1) * scale * l2**2 + 6 * l1) / (4 * scale**3 * mu**2),
        3 * l1 / (2 * scale * mu),
    )
    return alphas * l2**2 / (2 * mu) + tail


def ddg_round_rdp(
    *,
    l2: float,
    l1: float,
    sigma: float,
    clients: int,
    scale: float,
    dim: int,
    rate: float,
    orders: Sequence[int] = DISTRIBUTED_ORDERS,
) -> np.ndarray:
    """RDP of one DDG round on a Poisson-sampled cohort (Zhu & Wang's general bound)."""
    return poisson_subsampled_rdp(
        lambda js: ddg_rdp(js, l2=l2, l1=l1, sigma=sigma, clients=clients, scale=scale, dim=dim),
        rate=rate,
        orders=orders,
        bound="general",
    )


def skellam_round_rdp(
    *,
    l2: float,
    l1: float,
    sigma: float,
    clients: int,
    scale: float,
    rate: float,
    orders: Sequence[int] = DISTRIBUTED_ORDERS,
) -> np.ndarray:
    """RDP of one Skellam round on a Poisson-sampled cohort (Zhu & Wang's general bound)."""
    return poisson_subsampled_rdp(
        lambda js: skellam_rdp(js, l2=l2, l1=l1, sigma=sigma, clients=clients, scale=scale),
        rate=rate,
        orders=orders,
        bound="general",
    )


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be positive and finite, got {value}")


def _check_count(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
