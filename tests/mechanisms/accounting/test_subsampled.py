import itertools
import math

import dp_accounting
import mpmath
import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting.rdp import epsilons_from_rdp
from mechanisms.accounting.subsampled import poisson_subsampled_rdp

ORDERS = (*range(2, 129), 256)
SPOT_ORDERS = (2, 3, 5, 17, 64, 128, 256)


def gaussian(noise_multiplier):
    return lambda js: js / (2 * noise_multiplier**2)


def linear(slope, offset=0.0):
    return lambda js: slope * js + offset


def reference_bound(rdp_at, rate, alpha, factor):
    """The reference formula term by term, at 60 significant digits."""
    mpmath.mp.dps = 60
    q = mpmath.mpf(rate)
    eps = [None, None, *(mpmath.mpf(float(v)) for v in rdp_at(np.arange(2, alpha + 1)))]
    total = (1 - q) ** (alpha - 1) * (alpha * q - q + 1)
    for j in range(2, alpha + 1):
        weight = mpmath.binomial(alpha, j) * (1 - q) ** (alpha - j) * q**j
        total += (1 if j == 2 else factor) * weight * mpmath.exp((j - 1) * eps[j])
    return min(float(mpmath.log(total) / (alpha - 1)), float(eps[alpha]))


@pytest.mark.parametrize(("rate", "noise_multiplier"), [(0.01, 1.0), (0.2, 0.7), (1e-3, 2.0)])
def test_tight_form_is_exact_for_the_gaussian(rate, noise_multiplier):
    # At integer orders the tight sum is exactly the subsampled-Gaussian RDP (Mironov et al. 2019).
    # (Below RDP ~1e-9 dp_accounting's sum loses digits against the leading 1; the high-precision
    # test covers that regime.)
    accountant = rdp_privacy_accountant.RdpAccountant(list(ORDERS))
    accountant.compose(
        dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(noise_multiplier))
    )
    ours = poisson_subsampled_rdp(
        gaussian(noise_multiplier), rate=rate, orders=ORDERS, bound="tight"
    )
    np.testing.assert_allclose(ours, accountant._rdp, rtol=1e-10)


def test_gaussian_reference_figures():
    # ddg-skellam.md: z = 1, q = 0.01, T = 1000, delta = 1e-5.
    accountant = rdp_privacy_accountant.RdpAccountant(list(ORDERS))
    accountant.compose(
        dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(1.0)), 1000
    )
    assert round(accountant.get_epsilon(1e-5), 4) == 2.1078
    general = poisson_subsampled_rdp(gaussian(1.0), rate=0.01, orders=ORDERS)
    epsilon, order = epsilons_from_rdp(ORDERS, 1000 * general, 1e-5)
    assert round(float(epsilon), 4) == 2.4503
    assert order == 7


@pytest.mark.parametrize("bound", ["general", "tight"])
@pytest.mark.parametrize(
    ("rdp_at", "rate"),
    [
        (linear(0.003585, 0.00071), 0.004),  # SMM at c/mu = 4096/1428 * 1e-3
        (linear(2.0, 0.5), 0.01),  # large RDP: the plain sum overflows float64
        (gaussian(30.0), 1e-6),  # tiny result: the plain sum cancels against 1
        (gaussian(5.0), 1e-4),
        (linear(0.05), 0.5),
    ],
)
def test_matches_the_reference_formula_in_high_precision(rdp_at, rate, bound):
    ours = poisson_subsampled_rdp(rdp_at, rate=rate, orders=SPOT_ORDERS, bound=bound)
    factor = 3 if bound == "general" else 1
    expected = [reference_bound(rdp_at, rate, alpha, factor) for alpha in SPOT_ORDERS]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_general_bound_dominates_tight_and_neither_exceeds_unsampled():
    for rdp_at in (gaussian(0.8), linear(0.01, 0.02), linear(3.0)):
        general = poisson_subsampled_rdp(rdp_at, rate=0.05, orders=ORDERS, bound="general")
        tight = poisson_subsampled_rdp(rdp_at, rate=0.05, orders=ORDERS, bound="tight")
        unsampled = rdp_at(np.asarray(ORDERS))
        assert np.all(general >= tight)
        assert np.all(general <= unsampled)
        assert np.any(general > tight)


def test_full_rate_is_the_unsampled_curve_exactly():
    rdp_at = linear(0.0123, 0.004)
    for bound in ("general", "tight"):
        result = poisson_subsampled_rdp(rdp_at, rate=1.0, orders=ORDERS, bound=bound)
        np.testing.assert_array_equal(result, rdp_at(np.asarray(ORDERS, dtype=float)))


def test_amplification_grows_as_the_rate_falls():
    rates = [1.0, 0.5, 0.1, 0.01, 0.001]
    curves = [poisson_subsampled_rdp(gaussian(1.0), rate=q, orders=ORDERS) for q in rates]
    for larger, smaller in itertools.pairwise(curves):
        assert np.all(smaller <= larger)
        assert np.all(smaller[:-1] < larger[:-1])


def test_zero_and_infinite_rdp():
    zero = poisson_subsampled_rdp(lambda js: np.zeros(js.shape), rate=0.1, orders=ORDERS)
    np.testing.assert_array_equal(zero, 0.0)
    with np.errstate(all="raise"):
        inf = poisson_subsampled_rdp(
            lambda js: np.full(js.shape, math.inf), rate=0.1, orders=ORDERS
        )
    assert np.all(np.isposinf(inf))
    # Infinite only from order 10 on: lower orders never use those terms and stay finite.
    partly = poisson_subsampled_rdp(
        lambda js: np.where(js >= 10, math.inf, 0.1 * js), rate=0.1, orders=ORDERS
    )
    assert np.all(np.isfinite(partly[:8])) and np.all(np.isposinf(partly[8:]))


def test_orders_may_be_unsorted_integral_floats():
    result = poisson_subsampled_rdp(gaussian(1.0), rate=0.1, orders=[8.0, 2.0, 5.0])
    expected = poisson_subsampled_rdp(gaussian(1.0), rate=0.1, orders=[2, 5, 8])
    np.testing.assert_array_equal(result, expected[[2, 0, 1]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"orders": [2, 2.5]}, "integer orders"),
        ({"orders": [1, 2]}, "integer orders"),
        ({"orders": []}, "at least one order"),
        ({"rate": 0.0}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"bound": "loose"}, "bound"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    arguments = {"rate": 0.1, "orders": [2, 3], "bound": "general", **kwargs}
    with pytest.raises(ValueError, match=message):
        poisson_subsampled_rdp(gaussian(1.0), **arguments)


def test_rejects_malformed_rdp():
    with pytest.raises(ValueError, match="non-negative"):
        poisson_subsampled_rdp(lambda js: np.full(js.shape, math.nan), rate=0.1, orders=[2, 3])
    with pytest.raises(ValueError, match="shape"):
        poisson_subsampled_rdp(lambda js: np.zeros(1), rate=0.1, orders=[2, 3])
