import itertools
import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting.rdp import RDP_ORDERS, RdpCurve, epsilons_from_rdp
from mechanisms.accounting.zcdp import (
    epoch_rdp,
    epoch_rho,
    epsilon_from_rho,
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
