"""Epsilon after each of 1..T identical rounds: the privacy calculator behind `tffp account`."""

import math
from collections.abc import Callable, Sequence

import dp_accounting
import numpy as np

from mechanisms.accounting import pld
from mechanisms.accounting.ledger import Accountant, check_accounting_choice
from mechanisms.accounting.rdp import (
    RDP_ORDERS,
    RdpCurve,
    RoundPrivacy,
    epsilons_from_rdp,
    rdp_vector,
)
from mechanisms.accounting.sampling import Sampling
from mechanisms.accounting.zcdp import epsilon_from_rho, event_rho

# PLD is exact only at these checkpoints (every round up to 10, then rounds growing by ~20%,
# plus the last round); rounds in between report the next checkpoint's epsilon.
_PLD_EXACT_UP_TO = 10
_PLD_CHECKPOINT_GROWTH = 1.2


def epsilon_for_rounds(
    *,
    delta: float,
    rounds: int,
    sampling: Sampling,
    round_privacy: RoundPrivacy,
    accountant: Accountant = "rdp",
    relation: dp_accounting.NeighboringRelation | None = None,
) -> list[float]:
    """Epsilon at `delta` after each of 1..`rounds` identical rounds costing `round_privacy` (a
    sampled round: `sampling.round_event(...)`, or a mechanism's `RdpCurve`). `relation` is the
    neighbouring relation when the unit of privacy is not the client (by default, the sampling's).

    rdp: exact for every round (one RDP vector, scaled by the round count).
    zcdp: as the ledger, the larger of the zCDP figure (k·ρ after k rounds) and the exact RDP one.
    pld: exact (pessimistic PLD, self-composed by count) at checkpoint rounds; any other round
    reports the epsilon of the next checkpoint, a valid upper bound because composing more rounds
    never lowers epsilon. Values are made non-decreasing by taking, for each round, the smallest
    bound among checkpoints at or after it.
    """
    return _epsilons(delta, rounds, sampling, round_privacy, accountant, relation, pld_checkpoints)


def epsilon_after(
    *,
    delta: float,
    rounds: int,
    sampling: Sampling,
    round_privacy: RoundPrivacy,
    accountant: Accountant = "rdp",
    relation: dp_accounting.NeighboringRelation | None = None,
) -> float:
    """Epsilon after exactly `rounds` rounds: `epsilon_for_rounds(...)[-1]`, which a calibration
    evaluates dozens of times, without PLD's intermediate checkpoints."""
    return _epsilons(delta, rounds, sampling, round_privacy, accountant, relation, _last_only)[-1]


def _last_only(rounds: int) -> list[int]:
    return [rounds]


def _epsilons(
    delta: float,
    rounds: int,
    sampling: Sampling,
    round_privacy: RoundPrivacy,
    accountant: Accountant,
    relation: dp_accounting.NeighboringRelation | None,
    pld_checkpoints_of: Callable[[int], Sequence[int]],
) -> list[float]:
    """`epsilon_for_rounds`, with PLD composed exactly at `pld_checkpoints_of(rounds)` (which end
    at `rounds`)."""
    relation = sampling.relation if relation is None else relation
    check_accounting_choice(accountant, relation, delta)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if accountant == "rdp":
        return [float(e) for e in _rdp_epsilons(round_privacy, relation, delta, rounds)]
    if accountant == "zcdp":
        rho = event_rho(round_privacy).rho  # first: it refuses an RdpCurve in plain words
        rdp_epsilons = _rdp_epsilons(round_privacy, relation, delta, rounds)
        return [
            max(epsilon_from_rho(count * rho, delta), float(rdp_epsilon))
            for count, rdp_epsilon in enumerate(rdp_epsilons, start=1)
        ]
    if isinstance(round_privacy, RdpCurve):
        raise ValueError("the PLD accountant cannot compose RDP curves; use accountant='rdp'")
    return _pld_epsilons(round_privacy, relation, delta, rounds, pld_checkpoints_of(rounds))


def _rdp_epsilons(
    round_privacy: RoundPrivacy,
    relation: dp_accounting.NeighboringRelation,
    delta: float,
    rounds: int,
) -> np.ndarray:
    one_round = rdp_vector(round_privacy, relation, RDP_ORDERS)
    counts = np.arange(1, rounds + 1, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # inf * k stays inf; 0 * inf cannot occur (k >= 1)
        totals = counts[:, None] * one_round[None, :]
    return epsilons_from_rdp(RDP_ORDERS, totals, delta)[0]


def pld_checkpoints(rounds: int) -> list[int]:
    """Rounds at which the PLD calculator composes exactly."""
    checkpoints = list(range(1, min(rounds, _PLD_EXACT_UP_TO) + 1))
    while checkpoints[-1] < rounds:
        checkpoints.append(min(rounds, math.ceil(checkpoints[-1] * _PLD_CHECKPOINT_GROWTH)))
    return checkpoints


def _pld_epsilons(
    round_event: dp_accounting.DpEvent,
    relation: dp_accounting.NeighboringRelation,
    delta: float,
    rounds: int,
    checkpoints: Sequence[int],
) -> list[float]:
    parts = pld.round_plds(round_event, relation)
    if parts is None:
        return [math.inf] * rounds
    one_round = pld.identity()
    for part in parts:
        one_round = one_round.compose(part)
    at_checkpoints = [pld.epsilon(one_round.self_compose(count), delta) for count in checkpoints]
    return _fill_from_next_checkpoint(checkpoints, at_checkpoints, rounds)


def _fill_from_next_checkpoint(
    checkpoints: Sequence[int], epsilons: Sequence[float], rounds: int
) -> list[float]:
    result = [math.inf] * rounds
    best = math.inf
    next_index = len(checkpoints) - 1
    for round_number in range(rounds, 0, -1):
        while next_index >= 0 and checkpoints[next_index] >= round_number:
            best = min(best, epsilons[next_index])
            next_index -= 1
        result[round_number - 1] = best
    return result
