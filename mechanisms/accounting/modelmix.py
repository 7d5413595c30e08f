"""RDP of ModelMix (Xiao, Wan & Devadas 2022, arXiv 2210.03843, Theorem 4.1), evaluated numerically.

One ModelMix step releases, per coordinate, a point drawn uniformly between the last two states
(pushed at least tau apart) minus eta * (clipped sum + Gaussian noise) / B. Dividing by eta / B (a
fixed invertible map, which preserves every divergence) leaves the pair of per-coordinate laws

    P0 = N(0, sigma^2) * Uniform[-w/2, w/2],   P1 = P0 shifted by s,
    sigma = noise_multiplier * clip,  s = clip / sqrt(p),  w = (tau / eta) * B,

with B the fixed divisor of the noisy sum (the expected batch size, or in federated learning the
expected cohort size; the mapping of the two states to the server's last two global models is this
project's, not the paper's). Only sigma / s and w / s matter, so the authors' units (everything
divided by B) give the same numbers. Each of the p clamped coordinates moves by at most s, so the
unsampled RDP of a step is p * D_k(P1 || P0); P0 is symmetric, and the reflection z -> s - z swaps
P0 and P1, so D_k(P0 || P1) = D_k(P1 || P0) and one direction covers both. Poisson subsampling is
then `poisson_subsampled_rdp`: bound="tight" is the theorem's own sum (exactly the divergence of
the sampled mixture from P0, proven to dominate the reverse direction only for the Gaussian),
bound="general" adds Zhu & Wang's factor 3 and holds for any mechanism.
"""

import math
import numbers
from collections.abc import Sequence

import numpy as np
from scipy.special import log_ndtr, logsumexp

from mechanisms.accounting.subsampled import Bound, integer_orders, poisson_subsampled_rdp

DEFAULT_ORDERS: tuple[int, ...] = tuple(range(2, 257))

# Grid step and tail margin in units of sigma. Every feature of the densities is at least sigma wide
# (the uniform's edges are smoothed by the Gaussian), so a Riemann sum at step sigma/25 is accurate
# to rounding; the margin leaves the integrand below e^-70 of its peak at both ends of the grid.
_STEPS_PER_SIGMA = 25
_TAIL_SIGMAS = 12.0
# Below this width / sigma, P0 is the Gaussian to relative O((w/sigma)^2) < 1e-8, and the difference
# of normal CDFs would lose digits; using the Gaussian there is conservative (the uniform is
# independent noise, so dropping it can only increase the divergence).
_NEGLIGIBLE_WIDTH = 1e-4
# Bounds the grid-by-orders matrix evaluated at once (float64 entries).
_CHUNK_ENTRIES = 4_000_000


def shifted_uniform_gaussian_renyi(
    orders: Sequence[int], *, sigma: float, shift: float, width: float
) -> np.ndarray:
    """D_k(P1 || P0) at integer orders k >= 2, for P0 = N(0, sigma^2) * Uniform[-width/2, width/2]
    and P1 = P0 shifted by `shift`.

    The integrand P0 (P1/P0)^k peaks near width/2 + k * shift, well beyond a fixed +-8 sigma grid
    for large k, so the grid runs from -width/2 - 12 sigma to width/2 + (max k + 1) shift
    + 12 sigma. The result is clipped to [0, k shift^2 / (2 sigma^2)]: the Gaussian's divergence
    is an exact upper bound (post-processing), so rounding can never make the answer less
    conservative than that.
    """
    if not sigma > 0 or not math.isfinite(sigma):
        raise ValueError(f"sigma must be positive and finite, got {sigma}")
    if not shift >= 0 or not math.isfinite(shift):
        raise ValueError(f"the shift must be non-negative and finite, got {shift}")
    if not width >= 0 or not math.isfinite(width):
        raise ValueError(f"the uniform width must be non-negative and finite, got {width}")
    ks = integer_orders(orders).astype(np.float64)
    gaussian = ks * shift**2 / (2 * sigma**2)
    if shift == 0:
        return np.zeros_like(ks)

    # Work in units of sigma: the divergence is scale invariant.
    s, w = shift / sigma, width / sigma
    step = 1.0 / _STEPS_PER_SIGMA
    z = np.arange(-w / 2 - _TAIL_SIGMAS, w / 2 + (ks.max() + 1) * s + _TAIL_SIGMAS, step)
    log_p0 = _log_density(z, w)
    log_ratio = _log_density(z - s, w) - log_p0

    log_integrals = np.empty_like(ks)
    chunk = max(1, _CHUNK_ENTRIES // z.size)
    for start in range(0, ks.size, chunk):
        k = ks[start : start + chunk, None]
        log_integrals[start : start + chunk] = logsumexp(log_p0 + k * log_ratio, axis=1)
    divergence = (log_integrals + math.log(step)) / (ks - 1)
    return np.clip(divergence, 0.0, gaussian)


def modelmix_rdp(
    orders: Sequence[int],
    *,
    sampling_rate: float,
    noise_multiplier: float,
    clip: float,
    tau_over_lr: float,
    coordinate_clip_p: int,
    expected_batch_size: float,
    bound: Bound = "general",
) -> np.ndarray:
    """Per-step RDP of ModelMix at each integer order (T steps compose to T times this), usable as
    an `RdpCurve`. `expected_batch_size` is the fixed divisor B of the noisy sum; the default bound
    is the one valid for any mechanism, since the tight form is proven only for the Gaussian."""
    _check_mechanism(
        sampling_rate, noise_multiplier, clip, tau_over_lr, coordinate_clip_p, expected_batch_size
    )
    sigma = noise_multiplier * clip
    shift = clip / math.sqrt(coordinate_clip_p)
    width = tau_over_lr * expected_batch_size
    alphas = integer_orders(orders)
    divergences = shifted_uniform_gaussian_renyi(
        range(2, int(alphas.max()) + 1), sigma=sigma, shift=shift, width=width
    )

    def unsampled_rdp(js: np.ndarray) -> np.ndarray:
        return coordinate_clip_p * divergences[js - 2]

    return poisson_subsampled_rdp(unsampled_rdp, rate=sampling_rate, orders=alphas, bound=bound)


def modelmix_epsilon(
    *,
    steps: int,
    delta: float,
    sampling_rate: float,
    noise_multiplier: float,
    clip: float,
    tau_over_lr: float,
    coordinate_clip_p: int,
    expected_batch_size: float,
    bound: Bound = "tight",
    orders: Sequence[int] = DEFAULT_ORDERS,
) -> tuple[float, int]:
    """(epsilon, optimal order) by the theorem's conversion, min over alpha of
    T eps(alpha) + log(1/delta) / (alpha - 1). Defaults to the theorem's tight sum to reproduce the
    paper; the ledger's conversion (`epsilons_from_rdp`) on the same curve is tighter still."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    alphas = integer_orders(orders)
    rdp = modelmix_rdp(
        alphas,
        sampling_rate=sampling_rate,
        noise_multiplier=noise_multiplier,
        clip=clip,
        tau_over_lr=tau_over_lr,
        coordinate_clip_p=coordinate_clip_p,
        expected_batch_size=expected_batch_size,
        bound=bound,
    )
    epsilons = int(steps) * rdp + math.log(1 / delta) / (alphas - 1)
    best = int(np.argmin(epsilons))
    return float(epsilons[best]), int(alphas[best])


def _log_density(z: np.ndarray, width: float) -> np.ndarray:
    """log of the N(0, 1) * Uniform[-width/2, width/2] density, accurate far into the tails."""
    if width < _NEGLIGIBLE_WIDTH:
        return -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    # (Phi(z + w/2) - Phi(z - w/2)) / w, taken at -|z| (the density is even) so that both CDFs are
    # lower tails, which log_ndtr keeps to full relative precision.
    near = -np.abs(z)
    upper = log_ndtr(near + width / 2)
    lower = log_ndtr(near - width / 2)
    return upper + np.log1p(-np.exp(lower - upper)) - math.log(width)


def _check_mechanism(
    sampling_rate: float,
    noise_multiplier: float,
    clip: float,
    tau_over_lr: float,
    coordinate_clip_p: int,
    expected_batch_size: float,
) -> None:
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"the sampling rate must be in (0, 1], got {sampling_rate}")
    if not noise_multiplier > 0 or not math.isfinite(noise_multiplier):
        raise ValueError(
            f"the noise multiplier must be positive and finite, got {noise_multiplier}"
        )
    if not clip > 0 or not math.isfinite(clip):
        raise ValueError(f"the clip norm must be positive and finite, got {clip}")
    if not tau_over_lr >= 0 or not math.isfinite(tau_over_lr):
        raise ValueError(f"tau / learning rate must be non-negative and finite, got {tau_over_lr}")
    if (
        isinstance(coordinate_clip_p, bool)
        or not isinstance(coordinate_clip_p, numbers.Integral)
        or coordinate_clip_p < 1
    ):
        raise ValueError(
            f"the coordinate clip p must be an integer >= 1 (1: no clamp): {coordinate_clip_p!r}"
        )
    if not expected_batch_size > 0 or not math.isfinite(expected_batch_size):
        raise ValueError(
            f"the expected batch size must be positive and finite, got {expected_batch_size}"
        )
