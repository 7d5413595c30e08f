import itertools
import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting.rdp import RDP_ORDERS, RdpCurve, epsilons_from_rdp, rdp_vector
from mechanisms.accounting.zcdp import (
    ZcdpCost,
    epoch_rdp,
    epoch_rho,
    epsilon_from_rho,
    event_rho,
    gaussian_rho,
    sampled_gaussian_report,
    sampled_gaussian_rho,
    sampled_gaussian_rho_valid_up_to,
    zcdp_epsilons,
    zcdp_order,
)

DELTA = 1e-5


def test_gaussian_rho_by_hand():
    assert gaussian_rho(1.0) == 0.5
    assert gaussian_rho(2.0) == 0.125
    assert gaussian_rho(8.0) == 1 / 128


def test_epsilon_from_rho_by_hand():
    # 0.5 + 2·sqrt(0.5·ln(1e5)) with ln(1e5) = 11.512925464970229.
    assert epsilon_from_rho(0.5, DELTA) == pytest.approx(5.298525912, rel=1e-9)
    assert epsilon_from_rho(0.0, DELTA) == 0.0
    assert epsilon_from_rho(math.inf, DELTA) == math.inf


@pytest.mark.parametrize("rho", [1e-4, 0.05, 0.78125, 3.0])
def test_epsilon_from_rho_is_the_best_rdp_conversion_on_the_zcdp_line(rho):
    # ρ-zCDP is RDP ρα at every α; the classic conversion ρα + ln(1/δ)/(α−1) is minimised at
    # zcdp_order, where it equals epsilon_from_rho.
    alphas = np.linspace(1.0001, 1e4, 2_000_001)
    converted = rho * alphas + math.log(1 / DELTA) / (alphas - 1)
    assert converted.min() == pytest.approx(epsilon_from_rho(rho, DELTA), rel=1e-6)
    assert alphas[converted.argmin()] == pytest.approx(zcdp_order(rho, DELTA), rel=1e-3)


def test_sampled_gaussian_rho_and_range_by_hand():
    assert sampled_gaussian_rho(0.01, 4.0) == pytest.approx(6.25e-6, rel=1e-12)
    # 16·ln(1/0.04) + 1 = 16·3.2188758248682006 + 1
    assert sampled_gaussian_rho_valid_up_to(0.01, 4.0) == pytest.approx(52.50201320, rel=1e-9)


@pytest.mark.parametrize(("rate", "sigma"), [(0.5, 2.0), (0.1, 10.0), (1.0, 1.0)])
def test_approximation_range_is_refused_when_it_holds_no_order(rate, sigma):
    with pytest.raises(ValueError, match="covers no RDP order"):
        sampled_gaussian_rho_valid_up_to(rate, sigma)


def test_reshuffled_epoch_costs_one_gaussian_release():
    assert epoch_rho(8.0, batching="reshuffle") == gaussian_rho(8.0)


def test_poisson_epoch_rho_adds_over_steps():
    assert epoch_rho(4.0, batching="poisson", rate=0.01, steps=600) == pytest.approx(
        600 * 1e-4 / 16, rel=1e-12
    )


def test_zcdp_epsilons_add_rho_then_convert():
    epsilons = zcdp_epsilons([0.1, 0.2, 0.3], DELTA)
    expected = [epsilon_from_rho(r, DELTA) for r in (0.1, 0.1 + 0.2, 0.1 + 0.2 + 0.3)]
    assert epsilons == pytest.approx(expected, rel=1e-12)
    assert zcdp_epsilons([], DELTA) == []


def test_hundred_epochs_at_sigma_8_spend_the_papers_budget():
    epsilons = zcdp_epsilons([epoch_rho(8.0, batching="reshuffle")] * 100, DELTA)
    assert epsilons[-1] == epsilon_from_rho(0.78125, DELTA)
    assert all(a < b for a, b in itertools.pairwise(epsilons))


@pytest.mark.parametrize("sigma", [0.7, 2.0, 8.0])
def test_reshuffled_epoch_rdp_is_the_gaussian_line(sigma):
    curve = epoch_rdp(sigma, batching="reshuffle")
    assert isinstance(curve, RdpCurve)
    assert curve.orders == RDP_ORDERS
    np.testing.assert_allclose(curve.rdp, np.array(RDP_ORDERS) / (2 * sigma**2), rtol=1e-15)


@pytest.mark.parametrize(("sigma", "epochs"), [(0.7, 1), (2.0, 10), (8.0, 100)])
def test_rdp_epsilon_of_reshuffled_epochs_is_at_most_the_zcdp_epsilon(sigma, epochs):
    total = epochs * np.asarray(epoch_rdp(sigma, batching="reshuffle").rdp)
    rdp_epsilon, _ = epsilons_from_rdp(RDP_ORDERS, total, DELTA)
    zcdp_epsilon = zcdp_epsilons([epoch_rho(sigma, batching="reshuffle")] * epochs, DELTA)[-1]
    assert rdp_epsilon <= zcdp_epsilon
    assert rdp_epsilon > 0.8 * zcdp_epsilon  # same curve, only the conversion differs


@pytest.mark.parametrize(("rate", "sigma", "steps"), [(0.01, 4.0, 600), (256 / 60000, 1.1, 234)])
def test_poisson_epoch_rdp_is_dp_accountings(rate, sigma, steps):
    accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS))
    accountant.compose(
        dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    curve = epoch_rdp(sigma, batching="poisson", rate=rate, steps=steps)
    np.testing.assert_allclose(curve.rdp, accountant.rdp, rtol=1e-12)


@pytest.mark.parametrize(("rate", "sigma"), [(0.01, 4.0), (0.01, 8.0), (0.001, 2.0)])
def test_q2_over_sigma2_is_a_close_conservative_slope_within_its_range(rate, sigma):
    rho = sampled_gaussian_rho(rate, sigma)
    valid_up_to = sampled_gaussian_rho_valid_up_to(rate, sigma)
    curve = epoch_rdp(sigma, batching="poisson", rate=rate, steps=1)
    orders = np.array(curve.orders)
    in_range = orders <= valid_up_to
    slope_ratio = np.array(curve.rdp)[in_range] / (rho * orders[in_range])
    # At small q the exact slope is about q²/(2σ²): the approximation is within 2x, from above.
    assert np.all(slope_ratio <= 1.0)
    assert np.all(slope_ratio >= 0.5)


def test_q2_over_sigma2_fails_badly_beyond_its_range():
    rate, sigma = 0.001, 2.0
    rho = sampled_gaussian_rho(rate, sigma)
    curve = epoch_rdp(sigma, batching="poisson", rate=rate, steps=1)
    orders = np.array(curve.orders)
    beyond = (orders > sampled_gaussian_rho_valid_up_to(rate, sigma)) & (orders <= 64)
    assert np.max(np.array(curve.rdp)[beyond] / (rho * orders[beyond])) > 100


def test_report_trusts_zcdp_when_its_order_is_in_range():
    report = sampled_gaussian_report([8.0] * 100, rate=0.01, steps=100, delta=DELTA)
    assert report.approximation_holds
    assert report.zcdp_order <= report.approximation_valid_up_to
    assert report.zcdp_epsilon == pytest.approx(
        epsilon_from_rho(100 * 100 * 0.01**2 / 64, DELTA), rel=1e-12
    )
    assert report.epsilon < report.zcdp_epsilon


def test_report_flags_zcdp_outside_its_range_where_it_understates_epsilon():
    report = sampled_gaussian_report([1.1] * 5, rate=0.05, steps=20, delta=DELTA)
    assert not report.approximation_holds
    assert report.zcdp_order > report.approximation_valid_up_to
    # Exactly why the flag matters: here the zCDP figure is below the true epsilon.
    assert report.zcdp_epsilon < report.epsilon


def test_report_has_no_range_when_some_epoch_has_q_sigma_at_least_one():
    report = sampled_gaussian_report([12.0, 8.0], rate=0.1, steps=10, delta=DELTA)
    assert report.approximation_valid_up_to is None
    assert not report.approximation_holds


def test_report_composes_epochs_at_different_noise_exactly():
    sigmas = [3.0, 2.0, 2.0, 1.5]
    rate, steps = 0.02, 50
    report = sampled_gaussian_report(sigmas, rate=rate, steps=steps, delta=DELTA)
    accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS))
    for sigma in sigmas:
        accountant.compose(
            dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(sigma)), steps
        )
    expected, expected_order = accountant.get_epsilon_and_optimal_order(DELTA)
    assert report.epsilon == pytest.approx(expected, rel=1e-12)
    assert report.optimal_order == expected_order
    total_rho = sum(steps * rate**2 / s**2 for s in sigmas)
    assert report.zcdp_epsilon == pytest.approx(epsilon_from_rho(total_rho, DELTA), rel=1e-12)
    assert report.approximation_valid_up_to == pytest.approx(
        sampled_gaussian_rho_valid_up_to(rate, 1.5), rel=1e-12
    )


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: gaussian_rho(0.0), "noise_multiplier"),
        (lambda: gaussian_rho(-1.0), "noise_multiplier"),
        (lambda: gaussian_rho(math.inf), "noise_multiplier"),
        (lambda: epsilon_from_rho(-0.1, DELTA), "rho"),
        (lambda: epsilon_from_rho(math.nan, DELTA), "rho"),
        (lambda: epsilon_from_rho(0.1, 0.0), "delta"),
        (lambda: epsilon_from_rho(0.1, 1.0), "delta"),
        (lambda: sampled_gaussian_rho(0.0, 1.0), "rate"),
        (lambda: sampled_gaussian_rho(1.5, 1.0), "rate"),
        (lambda: sampled_gaussian_rho_valid_up_to(0.01, 0.0), "noise_multiplier"),
        (lambda: epoch_rho(1.0, batching="shuffle"), "batching"),
        (lambda: epoch_rho(1.0, batching="reshuffle", steps=10), "steps"),
        (lambda: epoch_rho(1.0, batching="poisson", rate=0.1), "steps"),
        (lambda: epoch_rho(1.0, batching="poisson", rate=0.1, steps=0), "steps"),
        (lambda: epoch_rho(1.0, batching="poisson", rate=0.1, steps=2.5), "steps"),
        (lambda: epoch_rho(1.0, batching="poisson", rate=0.1, steps=True), "steps"),
        (lambda: epoch_rdp(1.0, batching="poisson", rate=2.0, steps=1), "rate"),
        (lambda: epoch_rdp(-1.0, batching="reshuffle"), "noise_multiplier"),
        (lambda: zcdp_epsilons([0.1, -0.1], DELTA), "rho"),
        (lambda: sampled_gaussian_report([], rate=0.1, steps=1, delta=DELTA), "noise_multipliers"),
    ],
)
def test_bad_parameters_are_named(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call()


GAUSSIAN_2 = dp_accounting.GaussianDpEvent(2.0)


def _poisson(rate, sigma):
    return dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(sigma))


def test_event_rho_of_a_gaussian_is_exact():
    assert event_rho(GAUSSIAN_2) == ZcdpCost(rho=0.125, approximate=False, valid_up_to=math.inf)
    # Replace-one callers halve σ (sensitivity 2): ρ is 4x that of add/remove.
    assert event_rho(dp_accounting.GaussianDpEvent(1.0)).rho == 0.5
    assert event_rho(dp_accounting.GaussianDpEvent(0.5)).rho == 2.0
    assert event_rho(dp_accounting.GaussianDpEvent(0.0)).rho == math.inf


def test_event_rho_of_trivial_events():
    assert event_rho(dp_accounting.NoOpDpEvent()) == ZcdpCost(0.0, False, math.inf)
    assert event_rho(dp_accounting.NonPrivateDpEvent()) == ZcdpCost(math.inf, False, math.inf)


def test_event_rho_self_composed_multiplies_and_keeps_the_range():
    assert event_rho(dp_accounting.SelfComposedDpEvent(GAUSSIAN_2, 3)).rho == 0.375
    cost = event_rho(dp_accounting.SelfComposedDpEvent(_poisson(0.01, 4.0), 600))
    assert cost.rho == pytest.approx(600 * 6.25e-6, rel=1e-12)
    assert cost.approximate
    assert cost.valid_up_to == pytest.approx(52.50201320, rel=1e-9)  # 16·ln(25) + 1
    never = dp_accounting.SelfComposedDpEvent(dp_accounting.NonPrivateDpEvent(), 0)
    assert event_rho(never).rho == 0.0


def test_event_rho_composed_adds_and_takes_the_narrowest_range():
    cost = event_rho(
        dp_accounting.ComposedDpEvent(
            [dp_accounting.GaussianDpEvent(1.0), _poisson(0.01, 4.0), _poisson(0.001, 2.0)]
        )
    )
    assert cost.rho == pytest.approx(0.5 + 1e-4 / 16 + 1e-6 / 4, rel=1e-12)
    assert cost.approximate
    # 4·ln(500) + 1 = 25.858 is below 16·ln(25) + 1 = 52.502.
    assert cost.valid_up_to == pytest.approx(4 * math.log(500) + 1, rel=1e-12)
    exact = event_rho(dp_accounting.ComposedDpEvent([GAUSSIAN_2, GAUSSIAN_2]))
    assert exact == ZcdpCost(0.25, False, math.inf)
    assert event_rho(dp_accounting.ComposedDpEvent([])) == ZcdpCost(0.0, False, math.inf)


def test_event_rho_of_a_poisson_sampled_gaussian_is_yu_et_als_approximation():
    cost = event_rho(_poisson(0.05, 1.1))
    assert cost.rho == pytest.approx(0.05**2 / 1.1**2, rel=1e-12)
    assert cost.approximate
    assert cost.valid_up_to == pytest.approx(1.1**2 * math.log(1 / 0.055) + 1, rel=1e-12)


def test_event_rho_at_sampling_rate_one_is_the_gaussian():
    assert event_rho(_poisson(1.0, 2.0)) == event_rho(GAUSSIAN_2)


def test_event_rho_at_sampling_rate_zero_is_nothing():
    assert event_rho(_poisson(0.0, 2.0)) == ZcdpCost(0.0)


def test_event_rho_without_an_approximation_range_is_never_trusted():
    cost = event_rho(_poisson(0.5, 4.0))  # qσ = 2: q²/σ² covers no order
    assert cost.rho == pytest.approx(0.25 / 16, rel=1e-12)
    assert cost.approximate
    assert cost.valid_up_to == 1.0
    assert not cost.approximation_holds(DELTA)
    assert not cost.approximation_holds(0.5)


@pytest.mark.parametrize(
    "event",
    [
        dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.SelfComposedDpEvent(GAUSSIAN_2, 3)),
        dp_accounting.PoissonSampledDpEvent(
            0.1, dp_accounting.ComposedDpEvent([GAUSSIAN_2, GAUSSIAN_2, GAUSSIAN_2])
        ),
    ],
    ids=["poisson-of-self-composed", "poisson-of-composed"],
)
def test_poisson_sampling_of_a_composite_release_claims_no_amplification(event):
    assert event_rho(event) == ZcdpCost(0.375, False, math.inf)


def test_fixed_size_sampling_claims_no_amplification():
    event = dp_accounting.SampledWithoutReplacementDpEvent(
        1000, 50, dp_accounting.GaussianDpEvent(0.5)
    )
    assert event_rho(event) == ZcdpCost(2.0, False, math.inf)


@pytest.mark.parametrize(
    ("event", "relation"),
    [
        (
            dp_accounting.SampledWithoutReplacementDpEvent(
                1000, 50, dp_accounting.GaussianDpEvent(0.5)
            ),
            dp_accounting.NeighboringRelation.REPLACE_ONE,
        ),
        (
            dp_accounting.PoissonSampledDpEvent(
                0.3, dp_accounting.SelfComposedDpEvent(GAUSSIAN_2, 3)
            ),
            dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
        ),
    ],
    ids=["fixed", "poisson-of-composite"],
)
def test_unamplified_rho_bounds_the_exact_rdp_at_every_order(event, relation):
    # Conservative, not just plausible: the exact (amplified) RDP lies below ρα everywhere.
    zcdp_line = event_rho(event).rho * np.array(RDP_ORDERS)
    exact = rdp_vector(event, relation)
    assert np.all(exact <= zcdp_line)
    assert np.any(exact < 0.9 * zcdp_line)  # and the amplification it forgoes is real


@pytest.mark.parametrize(
    "event",
    [
        dp_accounting.LaplaceDpEvent(1.0),
        dp_accounting.UnsupportedDpEvent(),
        dp_accounting.SampledWithReplacementDpEvent(1000, 50, GAUSSIAN_2),
        dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.LaplaceDpEvent(1.0)),
        dp_accounting.ComposedDpEvent([GAUSSIAN_2, dp_accounting.LaplaceDpEvent(1.0)]),
        dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(1.0), 2),
        RdpCurve(orders=(2.0, 4.0), rdp=(0.1, 0.2)),
    ],
    ids=[
        "laplace",
        "unsupported",
        "with-replacement",
        "sampled-laplace",
        "composed",
        "self",
        "curve",
    ],
)
def test_event_rho_refuses_what_is_not_gaussian_noise(event):
    with pytest.raises(ValueError, match=r"Gaussian-noise mechanisms only.*accountant 'rdp'"):
        event_rho(event)


def test_zcdp_cost_composition_and_approximation_range():
    exact, sampled = ZcdpCost(0.5), ZcdpCost(0.01, approximate=True, valid_up_to=30.0)
    total = exact.compose(sampled)
    assert total == ZcdpCost(0.51, approximate=True, valid_up_to=30.0)
    assert exact.approximation_holds(DELTA)  # exact: every order is covered
    # zcdp_order(0.01, 1e-5) = 1 + sqrt(1151.3) = 34.9 > 30, but 1 + sqrt(11.5/0.51) = 5.75.
    assert not sampled.approximation_holds(DELTA)
    assert total.approximation_holds(DELTA)
    with pytest.raises(ValueError, match="rho"):
        ZcdpCost(-0.1)
    with pytest.raises(ValueError, match="valid_up_to"):
        ZcdpCost(0.1, approximate=True, valid_up_to=0.5)


@pytest.mark.parametrize(
    ("sigmas", "rate", "steps"),
    [([8.0] * 100, 0.01, 100), ([1.1] * 5, 0.05, 20), ([3.0, 2.0, 2.0, 1.5], 0.02, 50)],
)
def test_event_rho_agrees_with_the_epoch_report(sigmas, rate, steps):
    cost = ZcdpCost(0.0)
    for sigma in sigmas:
        cost = cost.compose(
            event_rho(dp_accounting.SelfComposedDpEvent(_poisson(rate, sigma), steps))
        )
    report = sampled_gaussian_report(sigmas, rate=rate, steps=steps, delta=DELTA)
    assert epsilon_from_rho(cost.rho, DELTA) == pytest.approx(report.zcdp_epsilon, rel=1e-12)
    assert cost.approximation_holds(DELTA) == report.approximation_holds
