import itertools
import math

import numpy as np
import pytest

from mechanisms.accounting.ddg import (
    DISTRIBUTED_ORDERS,
    ddg_rdp,
    ddg_round_rdp,
    ddg_tau,
    skellam_rdp,
    skellam_round_rdp,
)
from mechanisms.accounting.rdp import epsilons_from_rdp
from mechanisms.accounting.subsampled import poisson_subsampled_rdp
from mechanisms.scaling import sensitivity_bounds, tff_scale

CLIENTS, DIM, CLIP, Z = 100, 65536, 1.0, 1.0
SIGMA = Z * CLIP / math.sqrt(CLIENTS)


def table_setting(bits):
    """ddg-skellam.md's setting: TFF's scale for p = 1e-4 and its beta = 0 sensitivities."""
    scale = tff_scale(
        bits=bits,
        clip=CLIP,
        noise_multiplier=Z,
        clients=CLIENTS,
        dim=DIM,
        wrap_probability=1e-4,
    )
    l2, l1 = sensitivity_bounds(clip=CLIP, scale=scale, dim=DIM, beta=0.0)
    return {"l2": l2, "l1": l1, "sigma": SIGMA, "clients": CLIENTS, "scale": scale}


def run_epsilon(round_rdp, rounds=1000, delta=1e-5):
    epsilon, order = epsilons_from_rdp(DISTRIBUTED_ORDERS, rounds * round_rdp, delta)
    return float(epsilon), int(order)


def test_orders():
    assert (*range(2, 129), 256) == DISTRIBUTED_ORDERS


@pytest.mark.parametrize(
    ("bits", "epsilon", "order"), [(12, 7.7164, 3), (16, 2.6637, 6), (20, 2.4620, 7)]
)
def test_reference_epsilons(bits, epsilon, order):
    setting = table_setting(bits)
    ddg = run_epsilon(ddg_round_rdp(**setting, dim=DIM, rate=0.01))
    skellam = run_epsilon(skellam_round_rdp(**setting, rate=0.01))
    assert round(ddg[0], 4) == epsilon
    assert ddg[1] == order
    assert round(skellam[0], 4) == epsilon
    assert skellam[1] == order


def test_more_bits_approach_the_gaussian_under_the_same_bound():
    gaussian = run_epsilon(
        poisson_subsampled_rdp(lambda js: js / (2 * Z**2), rate=0.01, orders=DISTRIBUTED_ORDERS)
    )[0]
    epsilons = [
        run_epsilon(ddg_round_rdp(**table_setting(bits), dim=DIM, rate=0.01))[0]
        for bits in (12, 16, 20, 24)
    ]
    assert all(a > b for a, b in itertools.pairwise(epsilons))
    assert epsilons[-1] > gaussian
    assert epsilons[-1] == pytest.approx(gaussian, rel=2e-3)


def test_tau_is_the_sum_over_other_clients():
    sigma, scale, clients = 0.01, 30.0, 7  # sigma * scale = 0.3: far from continuous
    expected = 10 * sum(
        math.exp(-2 * math.pi**2 * (sigma * scale) ** 2 * k / (k + 1)) for k in range(1, clients)
    )
    assert ddg_tau(sigma=sigma, scale=scale, clients=clients) == pytest.approx(expected, rel=1e-14)
    assert ddg_tau(sigma=sigma, scale=scale, clients=1) == 0.0
    assert ddg_tau(sigma=SIGMA, scale=490.0, clients=CLIENTS) == 0.0  # sigma' = 49: negligible


def test_ddg_without_tau_is_the_gaussian():
    orders = np.asarray(DISTRIBUTED_ORDERS)
    rdp = ddg_rdp(orders, l2=1.2, l1=50.0, sigma=SIGMA, clients=CLIENTS, scale=490.0, dim=DIM)
    np.testing.assert_allclose(rdp, orders * 1.2**2 / (2 * CLIENTS * SIGMA**2), rtol=1e-14)


def test_ddg_with_tau_is_the_least_of_three_bounds():
    l2, l1, sigma, clients, scale, dim = 1.1, 30.0, 0.02, 5, 25.0, 64
    tau = ddg_tau(sigma=sigma, scale=scale, clients=clients)
    assert tau > 1e-3
    root_n_sigma = math.sqrt(clients) * sigma
    for alpha in (2, 7, 40):
        first = alpha * l2**2 / (2 * root_n_sigma**2) + tau * dim
        second = alpha / 2 * (l2**2 / root_n_sigma**2 + 2 * l1 * tau / root_n_sigma + tau**2 * dim)
        third = alpha / 2 * (l2 / root_n_sigma + tau * math.sqrt(dim)) ** 2
        rdp = ddg_rdp([alpha], l2=l2, l1=l1, sigma=sigma, clients=clients, scale=scale, dim=dim)[0]
        assert rdp == pytest.approx(min(first, second, third), rel=1e-14)
        assert rdp > alpha * l2**2 / (2 * root_n_sigma**2)


def test_skellam_formula():
    l2, l1, sigma, clients, scale = 1.03, 264.0, 0.1, 100, 7845.0
    mu = clients * sigma**2
    for alpha in (2, 6, 128):
        gaussian = alpha * l2**2 / (2 * mu)
        extra = min(
            ((2 * alpha - 1) * scale * l2**2 + 6 * l1) / (4 * scale**3 * mu**2),
            3 * l1 / (2 * scale * mu),
        )
        rdp = skellam_rdp([alpha], l2=l2, l1=l1, sigma=sigma, clients=clients, scale=scale)[0]
        assert rdp == pytest.approx(gaussian + extra, rel=1e-14)
        assert rdp > gaussian


def test_skellam_pays_more_at_coarse_scales():
    def at_scale(scale):
        return skellam_rdp([4], l2=1.0, l1=16.0, sigma=0.1, clients=100, scale=scale)[0]

    assert at_scale(1.0) > at_scale(10.0) > at_scale(1000.0) > 4 / (2 * 1.0)


def test_round_curves_use_the_general_bound():
    setting = table_setting(16)
    expected = poisson_subsampled_rdp(
        lambda js: ddg_rdp(js, **setting, dim=DIM),
        rate=0.02,
        orders=DISTRIBUTED_ORDERS,
        bound="general",
    )
    np.testing.assert_array_equal(ddg_round_rdp(**setting, dim=DIM, rate=0.02), expected)
    unsampled = skellam_rdp(DISTRIBUTED_ORDERS, **setting)
    np.testing.assert_array_equal(skellam_round_rdp(**setting, rate=1.0), unsampled)
    assert np.all(skellam_round_rdp(**setting, rate=0.02) < unsampled)


@pytest.mark.parametrize(
    "kwargs", [{"l2": 0.0}, {"l1": -1.0}, {"sigma": 0.0}, {"clients": 0}, {"scale": math.nan}]
)
def test_rejects_bad_arguments(kwargs):
    arguments = {**table_setting(12), **kwargs}
    with pytest.raises(ValueError):
        ddg_rdp([2], **arguments, dim=DIM)
    with pytest.raises(ValueError):
        skellam_rdp([2], **arguments)
