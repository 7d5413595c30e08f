"""Privacy loss distributions of single rounds, built exactly as dp_accounting's PLDAccountant
builds them, so a ledger can cache one round's PLD and compose it round after round.

PLDAccountant rebuilds the subsampled-Gaussian PLD (~0.7 s) on every `compose`; caching it leaves
only the composition itself per round.
"""

import math

import dp_accounting
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.pld import privacy_loss_distribution as pld_lib

VALUE_DISCRETIZATION_INTERVAL = 1e-4  # dp_accounting's default; pessimistic rounding throughout.

PrivacyLossDistribution = pld_lib.PrivacyLossDistribution


def identity() -> PrivacyLossDistribution:
    return pld_lib.identity(value_discretization_interval=VALUE_DISCRETIZATION_INTERVAL)


def round_plds(
    event: dp_accounting.DpEvent, relation: dp_accounting.NeighboringRelation
) -> list[PrivacyLossDistribution] | None:
    """The PLDs that PLDAccountant would compose, in order, for `event`; None if non-private."""
    if relation is not dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE:
        raise ValueError(
            "the PLD accountant here supports only add/remove-one neighbours (Poisson sampling); "
            "dp_accounting has no PLD for sampling without replacement: use accountant='rdp'"
        )
    checker = pld_privacy_accountant.PLDAccountant(relation, VALUE_DISCRETIZATION_INTERVAL)
    if not checker.supports(event):
        raise ValueError(f"the PLD accountant cannot account for this event: {event}")
    return _plds(event, 1)


def _plds(event: dp_accounting.DpEvent, count: int) -> list[PrivacyLossDistribution] | None:
    # Mirrors PLDAccountant._maybe_compose in dp_accounting 0.4.3, branch by branch.
    interval = VALUE_DISCRETIZATION_INTERVAL
    if isinstance(event, dp_accounting.NoOpDpEvent):
        return []
    if isinstance(event, dp_accounting.NonPrivateDpEvent):
        return None
    if isinstance(event, dp_accounting.SelfComposedDpEvent):
        return _plds(event.event, event.count * count)
    if isinstance(event, dp_accounting.ComposedDpEvent):
        parts: list[PrivacyLossDistribution] = []
        for sub_event in event.events:
            sub_parts = _plds(sub_event, count)
            if sub_parts is None:
                return None
            parts.extend(sub_parts)
        return parts
    if isinstance(event, dp_accounting.GaussianDpEvent):
        if event.noise_multiplier == 0:
            return None
        return [
            pld_lib.from_gaussian_mechanism(
                standard_deviation=event.noise_multiplier / math.sqrt(count),
                value_discretization_interval=interval,
            )
        ]
    if isinstance(event, dp_accounting.LaplaceDpEvent):
        if event.noise_multiplier == 0:
            return None
        laplace = pld_lib.from_laplace_mechanism(
            parameter=event.noise_multiplier, value_discretization_interval=interval
        )
        return [laplace.self_compose(count)]
    if isinstance(event, dp_accounting.PoissonSampledDpEvent):
        inner = event.event
        if event.sampling_probability == 0:
            return []
        if inner.noise_multiplier == 0:
            return None
        if isinstance(inner, dp_accounting.GaussianDpEvent):
            sampled = pld_lib.from_gaussian_mechanism(
                standard_deviation=inner.noise_multiplier,
                value_discretization_interval=interval,
                sampling_prob=event.sampling_probability,
            )
        else:
            sampled = pld_lib.from_laplace_mechanism(
                parameter=inner.noise_multiplier,
                value_discretization_interval=interval,
                sampling_prob=event.sampling_probability,
            )
        return [sampled.self_compose(count)]
    raise ValueError(f"the PLD accountant cannot account for this event: {event}")


def epsilon(distribution: PrivacyLossDistribution | None, delta: float) -> float:
    """Epsilon at `delta`; None stands for a non-private composition."""
    if distribution is None:
        return math.inf
    return float(distribution.get_epsilon_for_delta(delta))
