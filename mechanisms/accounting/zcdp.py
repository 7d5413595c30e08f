"""Zero-concentrated DP (zCDP) as Yu et al. (IEEE S&P 2019) account for DP-SGD, beside its exact
RDP counterpart.

zCDP is what the paper's dynamic budget allocation is stated in: one number ρ per epoch, adding
across epochs, so a schedule can be fitted to a total ρ. It is an RDP curve restricted to a line,
ρ-zCDP ⇔ RDP ε(α) ≤ ρ·α at every order α > 1, so for the unsampled Gaussian the two agree
exactly; for Poisson sampling the paper's ρ ≈ q²/σ² is an approximation (see
`sampled_gaussian_rho`). Reported numbers should come from the exact RDP (`epoch_rdp`), with the
zCDP figure beside it (`sampled_gaussian_report`).

Neighbours are add/remove one example, as in the paper and in dp_accounting's Poisson event:
with replace-one neighbours a clipped sum's sensitivity doubles and every ρ here is 4x larger.

`event_rho` reads the same ρ off a dp_accounting event for the ledger's "zcdp" accountant; there
the σ of each GaussianDpEvent already includes the relation's sensitivity.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

import dp_accounting
import numpy as np

from mechanisms.accounting.rdp import RDP_ORDERS, RdpCurve, epsilon_and_order, rdp_vector

Batching = Literal["reshuffle", "poisson"]

_ADD_OR_REMOVE_ONE = dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE


def gaussian_rho(noise_multiplier: float) -> float:
    """ρ of one Gaussian release with noise stddev σ times the L2 sensitivity (Bun & Steinke 2016,
    Prop. 1.6): 1/(2σ²)."""
    _check_noise_multiplier(noise_multiplier)
    return 1.0 / (2.0 * noise_multiplier**2)


def epsilon_from_rho(rho: float, delta: float) -> float:
    """ε at `delta` of a ρ-zCDP mechanism: ρ + 2·sqrt(ρ·ln(1/δ)) (Bun & Steinke 2016, Prop. 1.3).

    This is the RDP → (ε, δ) bound ρα + ln(1/δ)/(α−1) at its best order, `zcdp_order`; the
    conversion `epsilons_from_rdp` applies to RDP curves is tighter.
    """
    _check_rho(rho)
    _check_delta(delta)
    if math.isinf(rho):
        return math.inf
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def zcdp_order(rho: float, delta: float) -> float:
    """The RDP order at which `epsilon_from_rho` is tight, 1 + sqrt(ln(1/δ)/ρ): the order at which
    an approximate ρ must hold for its ε to be trusted."""
    _check_rho(rho)
    _check_delta(delta)
    if rho == 0:
        return math.inf
    return 1.0 + math.sqrt(math.log(1.0 / delta) / rho)


def sampled_gaussian_rho(rate: float, noise_multiplier: float) -> float:
    """The authors' ρ ≈ q²/σ² for one step of the Gaussian on a Poisson sample at rate q.

    An approximation, not a bound: it reads the moments accountant's small-q expansion (Abadi et
    al. 2016, Lemma 3) as zCDP, and holds only for orders up to `sampled_gaussian_rho_valid_up_to`.
    Beyond that order the exact RDP can be orders of magnitude larger. At small q it is about
    twice the exact RDP slope (which tends to q²/(2σ²)), so within its range it is conservative.
    """
    _check_rate(rate)
    _check_noise_multiplier(noise_multiplier)
    return rate**2 / noise_multiplier**2


def sampled_gaussian_rho_valid_up_to(rate: float, noise_multiplier: float) -> float:
    """Largest RDP order for which the authors treat q²/σ² as valid: σ²·ln(1/(qσ)) + 1.

    Raises ValueError when qσ >= 1: the range then holds no order above 1, so q²/σ² means nothing.
    (Abadi et al.'s lemma also assumes σ >= 1 and q < 1/(16σ); the authors apply it more widely,
    which is one more reason to report the exact RDP.)
    """
    _check_rate(rate)
    _check_noise_multiplier(noise_multiplier)
    if rate * noise_multiplier >= 1:
        raise ValueError(
            f"the q²/σ² approximation covers no RDP order when rate × noise_multiplier >= 1 "
            f"(got {rate} × {noise_multiplier}); use the exact RDP (epoch_rdp)"
        )
    return noise_multiplier**2 * math.log(1.0 / (rate * noise_multiplier)) + 1.0


def epoch_rho(
    noise_multiplier: float,
    *,
    batching: Batching,
    rate: float | None = None,
    steps: int | None = None,
) -> float:
    """zCDP ρ of one epoch of DP-SGD at a constant noise multiplier σ.

    reshuffle: the data is split into disjoint batches, so each example enters one noisy sum per
    epoch and, by parallel composition, the epoch costs one Gaussian release, 1/(2σ²), whatever
    the number of batches (the paper's argument; it assumes adding an example changes only the
    batch it joins). Pass neither `rate` nor `steps`.
    poisson: `steps` independent Poisson samples at rate q, each ρ ≈ q²/σ² (an approximation,
    see `sampled_gaussian_rho`): steps·q²/σ².
    """
    _check_batching(batching, rate, steps)
    if batching == "reshuffle":
        return gaussian_rho(noise_multiplier)
    assert rate is not None and steps is not None  # checked above
    return steps * sampled_gaussian_rho(rate, noise_multiplier)


def epoch_rdp(
    noise_multiplier: float,
    *,
    batching: Batching,
    rate: float | None = None,
    steps: int | None = None,
) -> RdpCurve:
    """Exact RDP of the same epoch as `epoch_rho`, at `RDP_ORDERS`, computed by dp_accounting.

    reshuffle: one Gaussian release, α/(2σ²) (here zCDP and RDP coincide).
    poisson: PoissonSampledDpEvent(q, Gaussian(σ)) composed `steps` times.
    Epochs at different σ compose exactly by adding their curves.
    """
    _check_batching(batching, rate, steps)
    _check_noise_multiplier(noise_multiplier)
    gaussian = dp_accounting.GaussianDpEvent(noise_multiplier)
    if batching == "reshuffle":
        event: dp_accounting.DpEvent = gaussian
    else:
        assert rate is not None and steps is not None  # checked above
        event = dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(rate, gaussian), steps
        )
    return RdpCurve(orders=RDP_ORDERS, rdp=tuple(rdp_vector(event, _ADD_OR_REMOVE_ONE)))


def zcdp_epsilons(rhos_per_epoch: Sequence[float], delta: float) -> list[float]:
    """Cumulative ε at `delta` after each epoch: ρ adds under composition (Bun & Steinke 2016)."""
    for rho in rhos_per_epoch:
        _check_rho(rho)
    return [epsilon_from_rho(total, delta) for total in accumulate(rhos_per_epoch)]


@dataclass(frozen=True)
class SampledGaussianReport:
    """Exact RDP ε of Poisson-sampled epochs beside the authors' zCDP figure.

    `epsilon` is the number to report. `zcdp_epsilon` rests on q²/σ² holding at `zcdp_order`;
    `approximation_holds` says whether that order lies within the approximation's range for
    every epoch (`approximation_valid_up_to` is the smallest such range, None if some epoch has
    qσ >= 1 and so no range at all).
    """

    epsilon: float
    optimal_order: float
    zcdp_epsilon: float
    zcdp_order: float
    approximation_valid_up_to: float | None

    @property
    def approximation_holds(self) -> bool:
        return (
            self.approximation_valid_up_to is not None
            and self.zcdp_order <= self.approximation_valid_up_to
        )


def sampled_gaussian_report(
    noise_multipliers: Sequence[float], *, rate: float, steps: int, delta: float
) -> SampledGaussianReport:
    """Account epochs of `steps` Poisson-sampled steps at rate q, epoch t at
    σ = noise_multipliers[t], both exactly (RDP) and as the authors do (ρ ≈ q²/σ² per step)."""
    _check_delta(delta)
    if not noise_multipliers:
        raise ValueError("noise_multipliers must name at least one epoch")
    curves: dict[float, np.ndarray] = {}  # one dp_accounting call per distinct σ
    for sigma in noise_multipliers:
        if sigma not in curves:
            curve = epoch_rdp(sigma, batching="poisson", rate=rate, steps=steps)
            curves[sigma] = np.asarray(curve.rdp)
    total_rdp = sum((curves[sigma] for sigma in noise_multipliers), np.zeros(len(RDP_ORDERS)))
    epsilon, optimal_order = epsilon_and_order(RDP_ORDERS, total_rdp, delta)
    total_rho = math.fsum(
        epoch_rho(sigma, batching="poisson", rate=rate, steps=steps) for sigma in noise_multipliers
    )
    valid_up_to: float | None
    if any(rate * sigma >= 1 for sigma in curves):
        valid_up_to = None
    else:
        valid_up_to = min(sampled_gaussian_rho_valid_up_to(rate, sigma) for sigma in curves)
    return SampledGaussianReport(
        epsilon=epsilon,
        optimal_order=optimal_order,
        zcdp_epsilon=epsilon_from_rho(total_rho, delta),
        zcdp_order=zcdp_order(total_rho, delta),
        approximation_valid_up_to=valid_up_to,
    )


@dataclass(frozen=True)
class ZcdpCost:
    """ρ-zCDP of a release, and up to which RDP order that ρ is claimed to hold.

    Exact costs hold at every order (`valid_up_to` = inf). Yu et al.'s q²/σ² for a sampled step
    holds only up to its range, so an ε drawn from it deserves trust only if the conversion's
    order, `zcdp_order`, lies within that range; `valid_up_to` = 1.0 means no order at all.
    """

    rho: float
    approximate: bool = False
    valid_up_to: float = math.inf

    def __post_init__(self) -> None:
        _check_rho(self.rho)
        if not self.valid_up_to >= 1:
            raise ValueError(f"valid_up_to must be an RDP order >= 1, got {self.valid_up_to}")

    def compose(self, other: "ZcdpCost") -> "ZcdpCost":
        """Both releases: ρ adds (Bun & Steinke 2016); the claim holds only where both do."""
        return ZcdpCost(
            rho=self.rho + other.rho,
            approximate=self.approximate or other.approximate,
            valid_up_to=min(self.valid_up_to, other.valid_up_to),
        )

    def approximation_holds(self, delta: float) -> bool:
        """Whether `epsilon_from_rho(rho, delta)` rests only on orders where ρ is claimed."""
        return self.valid_up_to > 1 and zcdp_order(self.rho, delta) <= self.valid_up_to


def event_rho(event: dp_accounting.DpEvent) -> ZcdpCost:
    """ρ of a dp_accounting event made of Gaussian releases.

    Sampling amplifies ρ only where Yu et al. claim it: a Poisson-sampled Gaussian costs q²/σ²,
    approximately (`sampled_gaussian_rho`). Any other sampled event (fixed-size sampling without
    replacement, or Poisson sampling of a composite release) is charged the ρ of what it samples:
    sampling a dataset never raises a Rényi divergence (it is jointly quasi-convex), so this is a
    valid bound, but conservative; the exact RDP in the ledger does count the amplification.
    """
    match event:
        case dp_accounting.NoOpDpEvent():
            return ZcdpCost(0.0)
        case dp_accounting.NonPrivateDpEvent():
            return ZcdpCost(math.inf)
        case dp_accounting.GaussianDpEvent(noise_multiplier=sigma):
            return ZcdpCost(math.inf if sigma == 0 else gaussian_rho(sigma))
        case dp_accounting.SelfComposedDpEvent(event=inner, count=count):
            cost = event_rho(inner)
            rho = cost.rho * count if count else 0.0  # 0 · inf is no release, not nan
            return ZcdpCost(rho, cost.approximate, cost.valid_up_to)
        case dp_accounting.ComposedDpEvent(events=events):
            total = ZcdpCost(0.0)
            for inner in events:
                total = total.compose(event_rho(inner))
            return total
        case dp_accounting.PoissonSampledDpEvent(sampling_probability=rate, event=inner):
            cost = event_rho(inner)
            if rate == 0:
                return ZcdpCost(0.0)
            if rate == 1 or not isinstance(inner, dp_accounting.GaussianDpEvent):
                return cost
            return _sampled_gaussian_cost(rate, inner.noise_multiplier)
        case dp_accounting.SampledWithoutReplacementDpEvent(event=inner):
            return event_rho(inner)
    # Sampling with replacement can draw an example more than once, so even the unsampled ρ
    # would not bound it; other mechanisms have no ρ here.
    raise ValueError(
        f"the zCDP accountant covers Gaussian-noise mechanisms only, not "
        f"{type(event).__name__}; use accountant 'rdp'"
    )


def _sampled_gaussian_cost(rate: float, noise_multiplier: float) -> ZcdpCost:
    if noise_multiplier == 0:
        return ZcdpCost(math.inf)
    # With qσ >= 1 the approximation holds at no order: valid_up_to 1.0 says so, and
    # `approximation_holds` is then false whatever the total ρ.
    valid_up_to = (
        sampled_gaussian_rho_valid_up_to(rate, noise_multiplier)
        if rate * noise_multiplier < 1
        else 1.0
    )
    return ZcdpCost(sampled_gaussian_rho(rate, noise_multiplier), True, valid_up_to)


def _check_noise_multiplier(noise_multiplier: float) -> None:
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise ValueError(f"noise_multiplier must be positive and finite, got {noise_multiplier}")


def _check_rate(rate: float) -> None:
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate}")


def _check_delta(delta: float) -> None:
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")


def _check_rho(rho: float) -> None:
    if math.isnan(rho) or rho < 0:
        raise ValueError(f"rho must be non-negative, got {rho}")


def _check_batching(batching: str, rate: float | None, steps: int | None) -> None:
    if batching == "reshuffle":
        if rate is not None or steps is not None:
            raise ValueError(
                "rate and steps apply to poisson batching only: a reshuffled epoch costs one "
                "Gaussian release whatever the number of batches"
            )
    elif batching == "poisson":
        if rate is None or steps is None:
            raise ValueError("poisson batching needs the sampling rate and the steps per epoch")
        _check_rate(rate)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
    else:
        raise ValueError(f"batching must be 'reshuffle' or 'poisson', got {batching!r}")
