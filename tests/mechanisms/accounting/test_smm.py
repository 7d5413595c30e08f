import itertools
import math

import numpy as np
import pytest

from mechanisms.accounting.rdp import RDP_ORDERS, RdpCurve, epsilons_from_rdp
from mechanisms.accounting.smm import (
    SMM_ORDERS,
    SmmPrivacy,
    smm_calibrate_mu_total,
    smm_epsilon,
    smm_linf,
    smm_rdp,
    smm_round_rdp,
)
from mechanisms.accounting.subsampled import poisson_subsampled_rdp

DELTA = 1e-5
# The composed test point of smm.md: c = 4096, n = 240 of N = 60000, mu = 5.95, T = 1000.
POINT = {"c": 4096.0, "mu_total": 240 * 5.95, "rate": 240 / 60000, "rounds": 1000, "delta": DELTA}


def assert_close(actual, expected):
    assert actual == pytest.approx(expected, rel=1e-9, abs=0)


def test_orders():
    assert tuple(range(2, 257)) == SMM_ORDERS


@pytest.mark.parametrize(
    ("clients", "epsilon", "order", "linf"),
    [
        (100, 12.718330135505079, 3, 5.335625504243255),
        (1000, 3.0383780754085583, 8, 5.941913359495822),
    ],
)
@pytest.mark.parametrize("bound", ["tight", "general"])  # no sampling: the bound plays no part
def test_single_round_vectors(clients, epsilon, order, linf, bound):
    privacy = smm_epsilon(
        c=64.0**2, mu_total=5.95 * clients, rate=1.0, rounds=1, delta=DELTA, bound=bound
    )
    assert_close(privacy.epsilon, epsilon)
    assert privacy.order == order
    assert_close(privacy.linf, linf)


def test_subsampled_composed_vector_and_its_intermediates():
    c, mu_total, rate = POINT["c"], POINT["mu_total"], POINT["rate"]
    assert_close(smm_rdp([5], c=c, mu_total=mu_total)[0], 5.0196078431372549)  # 7 * 4096 / 5712
    per_round = smm_round_rdp(c=c, mu_total=mu_total, rate=rate, bound="tight")
    assert per_round[SMM_ORDERS.index(5)] == pytest.approx(7.4606990160e-4, rel=1e-10)
    privacy = smm_epsilon(**POINT, bound="tight")
    assert privacy == SmmPrivacy(epsilon=privacy.epsilon, order=5, linf=privacy.linf)
    assert_close(privacy.epsilon, 2.9987982384189564)
    assert_close(privacy.linf, 4.73844174689098)


def test_default_is_the_general_bound_and_it_costs_more():
    general = smm_round_rdp(c=4096.0, mu_total=1428.0, rate=0.004)
    tight = smm_round_rdp(c=4096.0, mu_total=1428.0, rate=0.004, bound="tight")
    assert np.all(general >= tight)
    assert np.all(general[1:] > tight[1:])  # the factor 3 starts at j = 3
    assert general[0] == tight[0]
    assert smm_epsilon(**POINT).epsilon > smm_epsilon(**POINT, bound="tight").epsilon


def test_round_rdp_is_the_subsampled_formula():
    expected = poisson_subsampled_rdp(
        lambda js: (1.2 * js + 1) * 4096 / (4 * 1428), rate=0.004, orders=SMM_ORDERS
    )
    np.testing.assert_allclose(smm_round_rdp(c=4096.0, mu_total=1428.0, rate=0.004), expected)


def test_full_rate_is_unsampled():
    np.testing.assert_array_equal(
        smm_round_rdp(c=300.0, mu_total=50.0, rate=1.0),
        smm_rdp(SMM_ORDERS, c=300.0, mu_total=50.0),
    )


def test_epsilon_depends_only_on_c_over_mu_and_falls_as_mu_grows():
    base = smm_epsilon(c=1000.0, mu_total=400.0, rate=0.01, rounds=500, delta=DELTA)
    scaled = smm_epsilon(c=4000.0, mu_total=1600.0, rate=0.01, rounds=500, delta=DELTA)
    assert scaled.epsilon == pytest.approx(base.epsilon, rel=1e-12)
    assert scaled.order == base.order
    epsilons = [
        smm_epsilon(c=1000.0, mu_total=mu, rate=0.01, rounds=500, delta=DELTA).epsilon
        for mu in (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0)
    ]
    assert all(a > b for a, b in itertools.pairwise(epsilons))


def test_linf_formula_and_monotonicity():
    orders = np.arange(2, 257)
    linf = smm_linf(orders, mu_total=1428.0)
    expected = np.minimum(
        2 * 1428.0 / orders, np.sqrt(4 * 1428.0 / (10.9 * orders**2 - 1.8 * orders - 9.1))
    )
    np.testing.assert_allclose(linf, expected, rtol=1e-15)
    assert np.all(np.diff(linf) < 0)
    # With little noise the 2 mu / alpha term binds.
    assert smm_linf([2], mu_total=0.01)[0] == pytest.approx(0.01)


@pytest.mark.parametrize("bound", ["general", "tight"])
@pytest.mark.parametrize("target", [0.5, 3.0, 20.0])
def test_calibration_hits_the_target_from_below(target, bound):
    settings = {"c": 4096.0, "rate": 0.004, "rounds": 1000, "delta": DELTA, "bound": bound}
    mu_total = smm_calibrate_mu_total(target, **settings)
    assert smm_epsilon(mu_total=mu_total, **settings).epsilon <= target
    # One tolerance step less noise already overshoots.
    assert smm_epsilon(mu_total=mu_total / (1 + 1e-6), **settings).epsilon > target


def test_calibration_reproduces_the_test_vector():
    mu_total = smm_calibrate_mu_total(
        2.9987982384189564, c=4096.0, rate=0.004, rounds=1000, delta=DELTA, bound="tight"
    )
    assert mu_total == pytest.approx(1428.0, rel=2e-6)


def test_calibration_with_a_callers_conversion():
    # The ledger's view: the curve mapped conservatively onto its own order grid.
    def on_ledger_grid(orders, rdp):
        return float(epsilons_from_rdp(RDP_ORDERS, RdpCurve(orders, rdp).at(RDP_ORDERS), DELTA)[0])

    settings = {"c": 4096.0, "rate": 0.004, "rounds": 1000, "delta": DELTA}
    mu_total = smm_calibrate_mu_total(2.0, **settings, rdp_to_epsilon=on_ledger_grid)
    rdp = 1000 * smm_round_rdp(c=4096.0, mu_total=mu_total, rate=0.004)
    assert on_ledger_grid(SMM_ORDERS, rdp) <= 2.0
    # The ledger grid skips some integer orders, so it can only ask for as much noise or more.
    assert mu_total >= smm_calibrate_mu_total(2.0, **settings) * (1 - 1e-6)


def test_calibration_errors():
    settings = {"c": 4096.0, "rate": 0.004, "rounds": 1000, "delta": DELTA}
    with pytest.raises(ValueError, match="target_epsilon"):
        smm_calibrate_mu_total(0.0, **settings)
    with pytest.raises(ValueError, match="no mu_total"):
        smm_calibrate_mu_total(1.0, **settings, rdp_to_epsilon=lambda orders, rdp: math.inf)
    with pytest.raises(ValueError, match="does not constrain"):
        smm_calibrate_mu_total(1.0, **settings, rdp_to_epsilon=lambda orders, rdp: 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"c": 0.0}, {"mu_total": -1.0}, {"mu_total": math.inf}, {"rounds": 0}, {"rounds": 2.0}],
)
def test_rejects_bad_arguments(kwargs):
    arguments = {**POINT, **kwargs}
    with pytest.raises(ValueError):
        smm_epsilon(**arguments)
