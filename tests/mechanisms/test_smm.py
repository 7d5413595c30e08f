import math

import numpy as np
import pytest
import tensorflow as tf

from mechanisms.accounting import Sampling
from mechanisms.accounting.smm import smm_epsilon
from mechanisms.discretized import run_epsilon
from mechanisms.smm import SkellamMixtureMechanism, _mixture_norm_clip, smm_mechanism
from tests.mechanisms.simulated_round import release

DIM = 1000


def _smm(**changes) -> SkellamMixtureMechanism:
    parameters = dict(
        clip=1.0,
        gamma=2000.0,
        mu=1e-9,  # practically no noise
        clients=4,
        bits=24,
        rotation="hadamard",
        dim=DIM,
        linf=math.inf,  # no coordinate clip: no privacy, an exact round trip
    )
    return SkellamMixtureMechanism(**{**parameters, **changes})


def _updates(n: int, norm: float, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM))
    return [v / np.linalg.norm(v) * norm for v in vectors]


def _expected_square(y: np.ndarray) -> np.ndarray:
    a = np.abs(y)
    p = a - np.floor(a)
    return a * a + p - p * p


@pytest.mark.parametrize("scale", [0.3, 3.0, 40.0])
def test_mixture_norm_clip_bounds_the_expected_rounded_norm_exactly(scale):
    rng = np.random.default_rng(1)
    y = rng.normal(size=4096) * scale
    c = 0.5 * _expected_square(y).sum()  # forces clipping
    clipped, ratio = _mixture_norm_clip(tf.constant(y, tf.float64), c)
    clipped = clipped.numpy()
    assert _expected_square(clipped).sum() == pytest.approx(c, rel=1e-9)
    assert float(ratio) == pytest.approx(0.5, rel=1e-12)
    assert np.all(np.abs(clipped) <= np.abs(y) + 1e-12) and np.all(np.sign(clipped) * y >= 0)
    untouched, ratio = _mixture_norm_clip(tf.constant(y, tf.float64), 2 * c / 0.5)
    np.testing.assert_allclose(untouched.numpy(), y, rtol=1e-12)
    assert float(ratio) == 1.0


def test_round_trip_without_noise_recovers_the_sum_to_rounding_precision():
    mechanism = _smm()
    updates = _updates(4, norm=0.5)
    decoded, diagnostics, server = release(mechanism, updates)
    # ||gamma x||^2 = 1e6 plus rounding variance <= d'/4: the mixture clip barely bites.
    assert diagnostics["mixture_clip_ratio"] > 0.999
    ratio = diagnostics["mixture_clip_ratio"]
    error = decoded - np.sum(updates, axis=0) * math.sqrt(ratio)
    assert np.abs(error).max() < 4 * math.sqrt(4 / 4) / mechanism.gamma * 1.5
    assert int(server["wrapped_coordinates"]) == 0


def test_noise_on_the_decoded_sum_has_the_predicted_variance_whoever_takes_part():
    mu, n = 50.0, 4
    mechanism = _smm(mu=mu, gamma=10.0, clients=n, dim=8192)
    zeros = [np.zeros(8192)] * 2  # only 2 of the 4 expected clients show up
    decoded, _, _ = release(mechanism, zeros, cohort=2)
    predicted = 2 * mu * n / mechanism.gamma**2  # Skellam(n·mu) on the sum, unscaled
    assert decoded.var() == pytest.approx(predicted, rel=0.05)
    assert abs(decoded.mean()) < 4 * math.sqrt(predicted / decoded.size)


def test_small_modulus_wraps_and_the_server_counts_it():
    mechanism = _smm(mu=400.0, gamma=10.0, bits=6)
    _, _, server = release(mechanism, [np.zeros(DIM)] * 4)
    # Sum noise std sqrt(2·4·400) ≈ 57 against a half-range of 32: most coordinates wrap.
    assert 0.3 * 1024 < int(server["wrapped_coordinates"]) <= 1024


def test_round_privacy_holds_only_up_to_the_clipping_order():
    linf = math.sqrt(4 * 595 / (10.9 * 25 - 1.8 * 5 - 9.1))  # L(5) at mu_total = 595
    mechanism = _smm(mu=5.95, gamma=64.0, clients=100, linf=linf)
    assert mechanism.max_order == 5
    curve = mechanism.round_privacy(Sampling("poisson", population=60_000, cohort=100))
    rdp = dict(zip(curve.orders, curve.rdp, strict=True))
    assert math.isinf(rdp[6.0]) and math.isfinite(rdp[5.0])
    unbounded = _smm(linf=math.inf).round_privacy(Sampling("poisson", 100, 4))
    assert all(math.isinf(r) for r in unbounded.rdp)  # no coordinate clip, no guarantee


def _planned(**changes):
    """smm_mechanism for the quickstart-sized model, with `changes`."""
    arguments = dict(
        clip=1.0,
        bits=16,
        rotation="hadamard",
        dim=25_450,
        clients=100,
        rate=0.1,
        rounds=40,
        delta=1e-5,
        bound="general",
        wrap_probability=1e-4,
        target_epsilon=8.0,
    )
    return smm_mechanism(**{**arguments, **changes})


def test_calibrated_mechanism_meets_the_target_and_the_wrap_probability():
    mechanism = _planned()
    epsilon, order = run_epsilon(range(2, 257), mechanism.round_rdp(0.1), 40, 1e-5)
    assert epsilon == pytest.approx(8.0, rel=1e-5) and epsilon <= 8.0
    assert mechanism.max_order == math.ceil(order)
    assert mechanism.wrap_probability() == pytest.approx(1e-4, rel=1e-6)
    # The package's own SMM accountant agrees on the run's epsilon.
    direct = smm_epsilon(
        c=mechanism.c, mu_total=mechanism.mu_total, rate=0.1, rounds=40, delta=1e-5
    )
    assert direct.epsilon == pytest.approx(epsilon, rel=1e-9)


def test_explicit_mu_sets_gamma_from_the_modulus_and_too_few_bits_fail():
    small = dict(rotation="dft", dim=1000, clients=10, rate=0.01, rounds=10, bound="tight")
    mechanism = _planned(**small, target_epsilon=None, mu=100.0)
    assert mechanism.wrap_probability() == pytest.approx(1e-4, rel=1e-6)
    with pytest.raises(ValueError, match="bits"):
        _planned(**small, bits=8, target_epsilon=None, mu=1e4)
