"""The least noise that keeps a whole training run within a target epsilon."""

import math
from collections.abc import Callable

import dp_accounting
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting import pld
from mechanisms.accounting.ledger import Accountant, check_accounting_choice
from mechanisms.accounting.rdp import RDP_ORDERS
from mechanisms.accounting.sampling import Sampling
from mechanisms.accounting.zcdp import epsilon_from_rho, event_rho

MAX_NOISE_MULTIPLIER = 1000.0
_MIN_NOISE_MULTIPLIER = 1e-4
_RELATIVE_TOLERANCE = 1e-4  # of z; the contract promises ~1e-3
_SIGNIFICANT_DIGITS = 5
_COARSE_TOLERANCE = 1e-2  # the sparse-grid pass only has to land near the answer
_SPARSE_ORDERS = tuple(float(a) for a in (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 512, 2048))
_REFINE_STEP = 1.03  # fractional orders move z by a few percent at most, typically
# The run loop's ledger composes round by round, which can differ from the one-shot count
# composition used here in the last digits (RDP ~1e-13, PLD ~1e-9 relative). Calibrating to a
# target shrunk by this margin keeps the ledger from tripping max_epsilon on the final round.
_TARGET_MARGIN = 1e-6


def calibrate_noise_multiplier(
    target_epsilon: float,
    *,
    delta: float,
    rounds: int,
    sampling: Sampling,
    release_event: Callable[[float], dp_accounting.DpEvent],
    accountant: Accountant = "rdp",
) -> float:
    """Smallest noise multiplier z (rounded up to 5 significant digits) such that `rounds` rounds
    of `sampling.round_event(release_event(z))` cost at most `target_epsilon` at `delta`.

    Assumes epsilon decreases as z grows, as for every noise-adding mechanism.

    zcdp: the accountant reports the larger of the zCDP and the exact RDP epsilon, both falling
    as z grows, so the least z meeting the target is the larger of the least z meeting each.
    """
    check_accounting_choice(accountant, sampling.relation, delta)
    if not target_epsilon > 0:
        raise ValueError(f"target_epsilon must be positive, got {target_epsilon}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    target = target_epsilon * (1 - _TARGET_MARGIN)

    def run_event(z: float) -> dp_accounting.DpEvent:
        return dp_accounting.SelfComposedDpEvent(sampling.round_event(release_event(z)), rounds)

    if accountant == "pld":

        def fresh_pld() -> dp_accounting.PrivacyAccountant:
            return pld_privacy_accountant.PLDAccountant(
                sampling.relation, pld.VALUE_DISCRETIZATION_INTERVAL
            )

        return _solve(fresh_pld, run_event, target, target_epsilon, delta, rounds)

    if accountant == "zcdp":

        def fresh_zcdp() -> dp_accounting.PrivacyAccountant:
            return _ZcdpFigureAccountant(sampling.relation)

        zcdp_z = _solve(fresh_zcdp, run_event, target, target_epsilon, delta, rounds)
        rdp_z = _calibrate_rdp(run_event, sampling, target, target_epsilon, delta, rounds)
        return max(zcdp_z, rdp_z)

    return _calibrate_rdp(run_event, sampling, target, target_epsilon, delta, rounds)


def _calibrate_rdp(
    run_event: Callable[[float], dp_accounting.DpEvent],
    sampling: Sampling,
    target: float,
    target_epsilon: float,
    delta: float,
    rounds: int,
) -> float:
    # An RDP bound holds at any subset of orders (fewer orders: never optimistic). dp_accounting
    # is slow at fractional orders and at some integer ones (a Python loop of length alpha; 256
    # is the worst for sampling without replacement), so solve on a sparse grid spanning every
    # magnitude first, then refine with every order around that solution's best order, where the
    # optimum lies. The ledger reports epsilon at all orders: never above the target.
    grid = [a for a in _SPARSE_ORDERS if a in RDP_ORDERS]
    coarse = _solve(
        _rdp_accountant(grid, sampling),
        run_event,
        target,
        target_epsilon,
        delta,
        rounds,
        tolerance=_COARSE_TOLERANCE,
    )
    _, best = (
        _rdp_accountant(grid, sampling)()
        .compose(run_event(coarse))
        .get_epsilon_and_optimal_order(delta)
    )
    around_best = {
        a
        for a in RDP_ORDERS
        if abs(a - best) < 1 or (float(a).is_integer() and best / 2 <= a <= 2 * best)
    }
    return _solve(
        _rdp_accountant(sorted({*grid, *around_best}), sampling),
        run_event,
        target,
        target_epsilon,
        delta,
        rounds,
        start=coarse,
        step=_REFINE_STEP,
    )


class _ZcdpFigureAccountant(dp_accounting.PrivacyAccountant):
    """The zCDP epsilon alone (`epsilon_from_rho` of the composed ρ), in the shape dp_accounting's
    calibration searches. Only ever solved beside the RDP calibration: for sampled rounds it can
    be below a valid bound, so it never stands as a reported epsilon."""

    def __init__(self, relation: dp_accounting.NeighboringRelation) -> None:
        super().__init__(relation)
        self._rho = 0.0

    def _maybe_compose(
        self, event: dp_accounting.DpEvent, count: int, do_compose: bool
    ) -> dp_accounting.PrivacyAccountant.CompositionErrorDetails | None:
        try:
            rho = event_rho(event).rho
        except ValueError as error:
            return self.CompositionErrorDetails(invalid_event=event, error_message=str(error))
        if do_compose and count:
            self._rho += count * rho
        return None

    def get_epsilon(self, target_delta: float) -> float:
        return epsilon_from_rho(self._rho, target_delta)


def _rdp_accountant(
    orders: list[float], sampling: Sampling
) -> Callable[[], dp_accounting.PrivacyAccountant]:
    return lambda: rdp_privacy_accountant.RdpAccountant(list(orders), sampling.relation)


def _solve(
    make_fresh_accountant: Callable[[], dp_accounting.PrivacyAccountant],
    run_event: Callable[[float], dp_accounting.DpEvent],
    target: float,
    target_epsilon: float,
    delta: float,
    rounds: int,
    *,
    start: float = 1.0,
    step: float = 2.0,
    tolerance: float = _RELATIVE_TOLERANCE,
) -> float:
    """Smallest z (rounded up) whose run costs at most `target` under this accountant."""

    def epsilon_at(z: float) -> float:
        return make_fresh_accountant().compose(run_event(z)).get_epsilon(delta)

    low, high = _bracket(epsilon_at, target, target_epsilon, delta, rounds, start, step)
    z = dp_accounting.calibrate_dp_mechanism(
        make_fresh_accountant,
        run_event,
        target,
        delta,
        bracket_interval=dp_accounting.ExplicitBracketInterval(low, high),
        tol=low * tolerance,
    )
    rounded = _round_up(z, _SIGNIFICANT_DIGITS)
    return rounded if epsilon_at(rounded) <= target else float(z)


def _bracket(
    epsilon_at: Callable[[float], float],
    target: float,
    target_epsilon: float,
    delta: float,
    rounds: int,
    start: float,
    step: float,
) -> tuple[float, float]:
    """(z too small, z large enough), multiplying or dividing by `step` from `start`."""
    z = start
    if epsilon_at(z) > target:
        while True:
            if z >= MAX_NOISE_MULTIPLIER:
                raise ValueError(
                    f"no noise multiplier up to {MAX_NOISE_MULTIPLIER:g} reaches epsilon "
                    f"{target_epsilon:g} at delta {delta:g} over {rounds} rounds"
                )
            low, z = z, min(step * z, MAX_NOISE_MULTIPLIER)
            if epsilon_at(z) <= target:
                return low, z
    while True:
        high, z = z, z / step
        if z < _MIN_NOISE_MULTIPLIER:
            raise ValueError(
                f"epsilon {target_epsilon:g} at delta {delta:g} over {rounds} rounds is met even "
                f"with noise multiplier {high:g}; this target does not constrain the noise"
            )
        if epsilon_at(z) > target:
            return z, high


def _round_up(value: float, significant_digits: int) -> float:
    scale = 10 ** (significant_digits - 1 - math.floor(math.log10(value)))
    return math.ceil(value * scale) / scale
