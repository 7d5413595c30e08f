import math
import warnings

import pytest
from scipy.special import erfc

from mechanisms.scaling import (
    MAX_SCALE,
    sensitivity_bounds,
    sum_wrap_probability,
    tff_scale,
    wrap_k,
)

# ddg-skellam.md: d' = 65536, n = 100, z = 1, c = 1, p = 1e-4, beta = 0.
TABLE_SETTINGS = {
    "clip": 1.0,
    "noise_multiplier": 1.0,
    "clients": 100,
    "dim": 65536,
    "wrap_probability": 1e-4,
}
# bits: (s, sigma' = sigma s, Delta2' = (Delta2 + 1e-5) s, Delta2)
TABLE = {
    12: (490.2952258, 49.029522, 746.30011, 1.5221343),
    16: (7845.0761364, 784.50763, 8101.1543, 1.0326319),
    20: (125521.2402, 12552.124, 125778.5, 1.0020396),
}
# TFF keeps these in float32 and takes k from a float32 erfcinv (3e-8 below the float64 value),
# so its printed state agrees with the exact formula to float32 precision, not to every digit.
FLOAT32_PRECISION = 1.2e-7


def test_wrap_k():
    assert round(wrap_k(1e-4), 4) == 3.8906
    for p in (1e-2, 1e-4, 1e-9):
        assert erfc(wrap_k(p) / math.sqrt(2)) == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, math.nan])
def test_wrap_k_rejects_impossible_probabilities(p):
    with pytest.raises(ValueError, match="wrap probability"):
        wrap_k(p)


@pytest.mark.parametrize("bits", sorted(TABLE))
def test_tff_state_table(bits):
    scale_tff, local_std_tff, scaled_l2_tff, l2_tff = TABLE[bits]
    scale = tff_scale(bits=bits, **TABLE_SETTINGS)
    assert scale == pytest.approx(scale_tff, rel=3e-8)
    l2, _ = sensitivity_bounds(clip=1.0, scale=scale, dim=65536, beta=0.0)
    assert 0.1 * scale == pytest.approx(local_std_tff, rel=FLOAT32_PRECISION)
    assert (l2 + 1e-5) * scale == pytest.approx(scaled_l2_tff, rel=FLOAT32_PRECISION)
    assert l2 == pytest.approx(l2_tff, rel=FLOAT32_PRECISION)


@pytest.mark.parametrize(
    ("bits", "clients", "noise_multiplier", "dim", "p"),
    [(12, 100, 1.0, 65536, 1e-4), (16, 1000, 0.5, 1024, 1e-6), (8, 10, 2.0, 16, 0.01)],
)
def test_scale_is_where_the_sum_wraps_with_the_chosen_probability(
    bits, clients, noise_multiplier, dim, p
):
    clip = 0.7
    scale = tff_scale(
        bits=bits,
        clip=clip,
        noise_multiplier=noise_multiplier,
        clients=clients,
        dim=dim,
        wrap_probability=p,
    )
    local_std = noise_multiplier * clip / math.sqrt(clients)
    predicted = sum_wrap_probability(
        bits=bits,
        signal_l2=scale * clip,
        clients=clients,
        dim=dim,
        noise_variance=clients * (local_std * scale) ** 2,
    )
    assert predicted == pytest.approx(p, rel=1e-9)
    # One more bit of headroom at the same scale wraps far less often.
    assert (
        sum_wrap_probability(
            bits=bits + 1,
            signal_l2=scale * clip,
            clients=clients,
            dim=dim,
            noise_variance=clients * (local_std * scale) ** 2,
        )
        < p / 100
    )


def test_scale_is_capped():
    assert tff_scale(bits=32, **TABLE_SETTINGS) == MAX_SCALE


def test_smm_noise_alone_wraps_eight_bits_often():
    # smm.md: 8 bits with mu_tot = 1428 (variance 2 mu_tot) leaves (-128, 128] in ~1.6%.
    p = sum_wrap_probability(bits=8, signal_l2=0.0, clients=1, dim=1, noise_variance=2 * 1428)
    assert 0.0155 < p < 0.017


def test_too_few_bits_for_the_clients():
    with pytest.raises(ValueError, match=r"bits \(3\) is too small for 16 clients"):
        tff_scale(bits=3, clip=1.0, noise_multiplier=1.0, clients=16, dim=64, wrap_probability=0.01)
    # 2^(2b) = 256 < n k^2 = 16 * 23.9: the rounding alone would wrap.
    with pytest.raises(ValueError, match="rounding noise of the sum alone"):
        tff_scale(bits=4, clip=1.0, noise_multiplier=1.0, clients=16, dim=64, wrap_probability=1e-6)


def test_warns_when_the_scale_destroys_the_signal():
    with pytest.warns(UserWarning, match="<= 1"):
        scale = tff_scale(
            bits=8, clip=1.0, noise_multiplier=1.0, clients=100, dim=1, wrap_probability=1e-4
        )
    assert scale < 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tff_scale(bits=16, **{**TABLE_SETTINGS})


@pytest.mark.parametrize(
    "kwargs",
    [{"clip": 0.0}, {"noise_multiplier": -1.0}, {"clients": 0}, {"dim": 2.5}, {"bits": True}],
)
def test_tff_scale_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        tff_scale(**{"bits": 16, **TABLE_SETTINGS, **kwargs})


def test_sensitivity_without_conditional_rounding():
    l2, l1 = sensitivity_bounds(clip=2.0, scale=10.0, dim=400, beta=0.0)
    assert l2 == pytest.approx(2.0 + 0.1 * 20)
    assert l1 == pytest.approx(l2 * min(20, l2 * 10.0))


def test_sensitivity_with_conditional_rounding():
    clip, scale, dim, beta = 1.0, 50.0, 10_000, math.exp(-3)
    gamma = 1 / scale
    expected = math.sqrt(
        clip**2 + gamma**2 * dim / 4 + math.sqrt(6) * gamma * (clip + gamma * math.sqrt(dim) / 2)
    )
    l2, l1 = sensitivity_bounds(clip=clip, scale=scale, dim=dim, beta=beta)
    assert l2 == pytest.approx(expected, rel=1e-14)
    assert l2 < clip + gamma * math.sqrt(dim)
    assert l1 == pytest.approx(l2 * min(100.0, l2 * scale), rel=1e-14)
    # When the concentration bound is worse than the worst case, the worst case is used.
    tiny_dim, _ = sensitivity_bounds(clip=1.0, scale=1.0, dim=1, beta=1e-12)
    assert tiny_dim == 2.0


@pytest.mark.parametrize("beta", [-0.1, 1.0])
def test_sensitivity_rejects_bad_beta(beta):
    with pytest.raises(ValueError, match="beta"):
        sensitivity_bounds(clip=1.0, scale=10.0, dim=16, beta=beta)
