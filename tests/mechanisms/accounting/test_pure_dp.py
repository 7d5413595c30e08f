import math
import time

import mpmath
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from mechanisms.accounting.ledger import PrivacyLedger
from mechanisms.accounting.pure_dp import (
    BASIC,
    OPTIMAL,
    RDP,
    basic_composition,
    composed_epsilon,
    optimal_composition_epsilon,
    pure_dp_rdp_curve,
    randomized_response_rdp,
    rdp_composition_epsilon,
)
from mechanisms.accounting.rdp import RDP_ORDERS

DELTA = 1e-5
EPSILONS = [1e-6, 1e-3, 0.1, 1.0, 5.0, 30.0, 300.0]
ORDERS = [1.01, 1.5, 2.0, 10.0, 256.0, 4096.0, 1e5]


def _randomized_response_rdp_mpmath(alpha: float, epsilon: float) -> float:
    """D_α of (e^ε, 1)/(1 + e^ε) from (1, e^ε)/(1 + e^ε), straight from the definition."""
    with mpmath.workdps(80):
        a, e = mpmath.mpf(alpha), mpmath.mpf(epsilon)
        p, q = mpmath.exp(e) / (1 + mpmath.exp(e)), 1 / (1 + mpmath.exp(e))
        return float(mpmath.log(p**a * q ** (1 - a) + q**a * p ** (1 - a)) / (a - 1))


def _laplace_rdp(alpha: float, epsilon: float) -> float:
    """Mironov (2017), Prop. 6: RDP of the Laplace mechanism with sensitivity 1 and scale 1/ε,
    which is ε-DP: log(α/(2α−1)·e^{(α−1)ε} + (α−1)/(2α−1)·e^{−αε})/(α − 1)."""
    return np.logaddexp(
        math.log(alpha / (2 * alpha - 1)) + (alpha - 1) * epsilon,
        math.log((alpha - 1) / (2 * alpha - 1)) - alpha * epsilon,
    ) / (alpha - 1)


def _exact_composed_epsilon(epsilon: float, count: int, delta: float) -> float:
    """The optimal ε' from the binomial law of the composed privacy loss ε·(k − 2L),
    L ~ Binomial(k, 1/(1 + e^ε)): δ(ε') = E[(1 − e^{ε' − loss})₊], solved in log space."""
    flips = np.arange(count + 1)
    log_mass = scipy.stats.binom.logpmf(flips, count, 1 / (1 + math.exp(epsilon)))
    losses = epsilon * (count - 2 * flips)

    def log_delta(eps_prime: float) -> float:
        above = losses > eps_prime
        terms = log_mass[above] + np.log(-np.expm1(eps_prime - losses[above]))
        return scipy.special.logsumexp(terms) if terms.size else -math.inf

    return scipy.optimize.brentq(
        lambda e: log_delta(e) - math.log(delta), 0.0, count * epsilon, xtol=1e-12, rtol=1e-14
    )


# --- randomized response RDP -----------------------------------------------------------------


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_randomized_response_rdp_matches_the_definition_in_high_precision(epsilon):
    got = randomized_response_rdp(ORDERS, epsilon)
    want = [_randomized_response_rdp_mpmath(alpha, epsilon) for alpha in ORDERS]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_randomized_response_rdp_stays_under_epsilon_and_bun_steinke_and_grows_with_order(
    epsilon,
):
    alphas = np.asarray(RDP_ORDERS)
    rdp = randomized_response_rdp(alphas, epsilon)
    assert np.all(rdp <= epsilon)
    assert np.all(rdp <= alphas * epsilon**2 / 2 * (1 + 1e-12))
    assert np.all(np.diff(rdp) >= -1e-15 * epsilon)  # non-decreasing, to rounding
    assert np.all(rdp > 0)


@pytest.mark.parametrize("alpha", [1.5, 2.0, 10.0, 100.0])
def test_small_epsilon_meets_the_bun_steinke_curve(alpha):
    # ε-DP ⇒ (ε²/2)-zCDP, and randomized response shows the constant 1/2 cannot be improved.
    epsilon = 1e-4
    ratio = randomized_response_rdp([alpha], epsilon)[0] / (alpha * epsilon**2 / 2)
    assert ratio == pytest.approx(1.0, abs=1e-3)
    assert ratio <= 1.0


def test_order_near_one_is_the_kl_divergence_and_large_orders_reach_epsilon():
    # KL of randomized response: ε·tanh(ε/2).
    for epsilon in (0.1, 1.0, 4.0):
        kl = randomized_response_rdp([1.0 + 1e-9], epsilon)[0]
        assert kl == pytest.approx(epsilon * math.tanh(epsilon / 2), rel=1e-6)
    assert randomized_response_rdp([1e7], 1.0)[0] == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("epsilon", [0.01, 0.5, 2.0, 8.0])
def test_randomized_response_bounds_the_laplace_mechanism(epsilon):
    # The Laplace mechanism with scale 1/ε is ε-DP, so its RDP must lie under the bound.
    for alpha in (1.5, 2.0, 4.0, 32.0, 256.0):
        assert _laplace_rdp(alpha, epsilon) <= randomized_response_rdp([alpha], epsilon)[0]


def test_rdp_input_is_checked():
    with pytest.raises(ValueError, match="greater than 1"):
        randomized_response_rdp([1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="epsilon must be positive"):
        randomized_response_rdp([2.0], 0.0)


def test_ledger_composes_the_curve_as_the_rdp_route_does():
    ledger = PrivacyLedger(DELTA, accountant="rdp")
    for _ in range(100):
        ledger.record(pure_dp_rdp_curve(1.0))
    assert ledger.epsilon == pytest.approx(rdp_composition_epsilon(1.0, 100, DELTA), rel=1e-9)
    curve = pure_dp_rdp_curve(1.0)
    assert curve.orders == tuple(RDP_ORDERS)


# --- composition -----------------------------------------------------------------------------


def test_basic_composition_of_one_release_is_epsilon():
    assert basic_composition(0.7, 1) == 0.7
    assert basic_composition(0.7, 10) == pytest.approx(7.0)
    assert basic_composition(0.7, 0) == 0.0
    assert composed_epsilon(0.7, 10, 0.0) == (pytest.approx(7.0), BASIC)


def test_one_release_at_positive_delta_by_hand():
    # Randomized response is (ε', δ)-DP for e^ε' = (p − δ)/(1 − p), p = e^ε/(1 + e^ε):
    # ε' = ε + log(1 − δ(1 + e^{−ε})).
    epsilon = 1.0
    want = epsilon + math.log1p(-DELTA * (1 + math.exp(-epsilon)))
    assert optimal_composition_epsilon(epsilon, 1, DELTA) == pytest.approx(want, rel=1e-12)
    assert composed_epsilon(epsilon, 1, DELTA) == (pytest.approx(want, rel=1e-12), OPTIMAL)


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_optimal_composition_matches_kairouz_oh_viswanath(count):
    # Theorem 3.3 (δ = 0): k-fold ε-DP is ((k − 2i)ε, δ_i)-DP, tightly, with
    # δ_i = Σ_{l<i} C(k, l)(e^{(k−l)ε} − e^{(k−2i+l)ε}) / (1 + e^ε)^k.
    epsilon = 1.0
    for i in range(1, count // 2 + 1):
        delta_i = (
            sum(
                math.comb(count, ell)
                * (math.exp((count - ell) * epsilon) - math.exp((count - 2 * i + ell) * epsilon))
                for ell in range(i)
            )
            / (1 + math.exp(epsilon)) ** count
        )
        if delta_i >= 1:
            continue
        eps_i = (count - 2 * i) * epsilon
        assert optimal_composition_epsilon(epsilon, count, delta_i) == pytest.approx(
            eps_i, abs=1e-9
        )
        # A hair less δ needs more ε, a hair more needs less (if ε_i > 0 leaves room).
        assert optimal_composition_epsilon(epsilon, count, delta_i * 0.99) > eps_i
        if eps_i > 0:
            assert optimal_composition_epsilon(epsilon, count, delta_i * 1.01) < eps_i


@pytest.mark.parametrize(
    ("epsilon", "count"), [(1.0, 7), (0.5, 100), (0.1, 1000), (0.01, 10_000), (2.0, 300)]
)
def test_optimal_composition_matches_the_exact_binomial_curve(epsilon, count):
    got = optimal_composition_epsilon(epsilon, count, DELTA)
    assert got == pytest.approx(_exact_composed_epsilon(epsilon, count, DELTA), rel=1e-7)


@pytest.mark.parametrize(
    ("epsilon", "count"), [(0.01, 100), (0.1, 50), (0.1, 1000), (0.5, 200), (1.0, 100)]
)
def test_optimal_composition_is_within_advanced_composition_and_basic(epsilon, count):
    # Dwork, Rothblum & Vadhan 2010: ε√(2k ln(1/δ)) + kε(e^ε − 1) at δ.
    advanced = epsilon * math.sqrt(2 * count * math.log(1 / DELTA)) + count * epsilon * math.expm1(
        epsilon
    )
    optimal = optimal_composition_epsilon(epsilon, count, DELTA)
    assert optimal <= advanced
    assert optimal <= basic_composition(epsilon, count)
    assert optimal <= rdp_composition_epsilon(epsilon, count, DELTA)


@pytest.mark.parametrize("epsilon", [0.001, 0.1, 1.0, 3.0, 10.0])
@pytest.mark.parametrize("count", [1, 2, 10, 100, 1000])
def test_composed_epsilon_is_the_smallest_bound_and_says_which(epsilon, count):
    value, name = composed_epsilon(epsilon, count, DELTA)
    bounds = {
        BASIC: basic_composition(epsilon, count),
        OPTIMAL: optimal_composition_epsilon(epsilon, count, DELTA),
        RDP: rdp_composition_epsilon(epsilon, count, DELTA),
    }
    assert value == min(bounds.values())
    assert bounds[name] == value
    assert value <= count * epsilon


def test_huge_epsilon_falls_back_to_basic_composition():
    assert optimal_composition_epsilon(800.0, 3, DELTA) == math.inf
    assert composed_epsilon(800.0, 3, DELTA) == (2400.0, BASIC)


@pytest.mark.parametrize("epsilon", [0.01, 1.0])
def test_ten_thousand_compositions_in_well_under_a_second(epsilon):
    start = time.perf_counter()
    value, _ = composed_epsilon(epsilon, 10_000, DELTA)
    assert time.perf_counter() - start < 1.0
    assert value < 10_000 * epsilon


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: composed_epsilon(0.0, 3, DELTA), "epsilon must be positive"),
        (lambda: composed_epsilon(math.inf, 3, DELTA), "epsilon must be positive"),
        (lambda: composed_epsilon(1.0, -1, DELTA), "count must be a non-negative integer"),
        (lambda: composed_epsilon(1.0, 2.5, DELTA), "count must be a non-negative integer"),
        (lambda: composed_epsilon(1.0, 3, 1.0), "delta must be in"),
        (lambda: optimal_composition_epsilon(1.0, 3, 0.0), "delta must be in"),
    ],
)
def test_bad_arguments_are_refused_in_plain_words(call, message):
    with pytest.raises(ValueError, match=message):
        call()
