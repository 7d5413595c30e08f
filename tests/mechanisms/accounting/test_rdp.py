import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting import RDP_ORDERS, RdpCurve
from mechanisms.accounting.rdp import epsilons_from_rdp, rdp_vector


def test_orders_extend_dp_accounting_defaults():
    assert RDP_ORDERS[: len(rdp_privacy_accountant.DEFAULT_RDP_ORDERS)] == tuple(
        rdp_privacy_accountant.DEFAULT_RDP_ORDERS
    )
    assert max(RDP_ORDERS) > max(rdp_privacy_accountant.DEFAULT_RDP_ORDERS)


@pytest.mark.parametrize("delta", [1e-5, 1e-8, 0.3])
def test_vectorised_conversion_matches_dp_accounting(delta):
    one_round = rdp_vector(
        dp_accounting.PoissonSampledDpEvent(0.02, dp_accounting.GaussianDpEvent(0.9)),
        dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
    )
    counts = [1, 2, 7, 100, 5000]
    totals = np.array([k * one_round for k in counts])
    epsilons, orders = epsilons_from_rdp(RDP_ORDERS, totals, delta)
    for row, epsilon, order in zip(totals, epsilons, orders, strict=True):
        expected, expected_order = rdp_privacy_accountant.compute_epsilon(
            list(RDP_ORDERS), list(row), delta
        )
        assert epsilon == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert order == expected_order


def test_vectorised_conversion_handles_zero_and_infinite_rdp():
    rdp = np.array([np.zeros(len(RDP_ORDERS)), np.full(len(RDP_ORDERS), math.inf)])
    epsilons, _ = epsilons_from_rdp(RDP_ORDERS, rdp, 1e-5)
    assert epsilons[0] == 0.0
    assert epsilons[1] == math.inf


def test_curve_is_exact_on_its_own_orders_and_conservative_elsewhere():
    curve = RdpCurve(orders=(2.0, 4.0, 8.0), rdp=(0.1, 0.3, 0.5))
    values = curve.at([2.0, 3.0, 4.0, 8.0, 9.0])
    # 3 is bounded by the value at 4 (RDP is non-decreasing in the order); 9 has no bound.
    np.testing.assert_array_equal(values, [0.1, 0.3, 0.3, 0.5, math.inf])


def test_curve_uses_smallest_bound_from_higher_orders():
    # A loose (non-monotone) curve: the value at 8 is also a valid bound at 4.
    curve = RdpCurve(orders=(4.0, 8.0), rdp=(0.9, 0.5))
    np.testing.assert_array_equal(curve.at([4.0]), [0.5])


@pytest.mark.parametrize(
    ("orders", "rdp"),
    [((2.0,), (0.1, 0.2)), ((), ()), ((1.0,), (0.1,)), ((2.0,), (-0.1,)), ((2.0,), (math.nan,))],
)
def test_curve_validation(orders, rdp):
    with pytest.raises(ValueError):
        RdpCurve(orders=orders, rdp=rdp)


def test_unsupported_event_is_a_value_error():
    with pytest.raises(ValueError, match="cannot account"):
        rdp_vector(
            dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.GaussianDpEvent(1.0)),
            dp_accounting.NeighboringRelation.REPLACE_ONE,
        )
