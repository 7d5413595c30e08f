"""DDG and Skellam share the client pipeline; each test runs on both."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mechanisms.accounting import Sampling
from mechanisms.accounting.ddg import DISTRIBUTED_ORDERS, ddg_round_rdp
from mechanisms.ddg import DistributedDiscreteGaussian
from mechanisms.discretized import run_epsilon
from mechanisms.scaled_rounding import scaled_rounding_mechanism
from mechanisms.skellam import SkellamMechanism
from tests.mechanisms.simulated_round import release

DIM = 1000
BOTH = pytest.mark.parametrize(
    "build", [DistributedDiscreteGaussian, SkellamMechanism], ids=["ddg", "skellam"]
)


def _mechanism(build, **changes):
    parameters = dict(
        clip=1.0,
        noise_multiplier=1e-6,  # practically no noise
        scale=2000.0,
        clients=4,
        population=40,
        bits=24,
        rotation="hadamard",
        dim=DIM,
    )
    return build(**{**parameters, **changes})


def _updates(n: int, norm: float) -> list[np.ndarray]:
    vectors = np.random.default_rng(3).normal(size=(n, DIM))
    return [v / np.linalg.norm(v) * norm for v in vectors]


@BOTH
@pytest.mark.parametrize("rotation", ["hadamard", "dft"])
def test_round_trip_without_noise_recovers_the_clipped_sum(build, rotation):
    mechanism = _mechanism(build, rotation=rotation)
    updates = _updates(3, norm=0.5) + _updates(1, norm=3.0)
    decoded, diagnostics, server = release(mechanism, updates)
    clipped = [u * min(1.0, 1.0 / np.linalg.norm(u)) for u in updates]
    # Each client's rounding moves a coordinate by < 1/scale; four clients, rotated back.
    assert np.abs(decoded - np.sum(clipped, axis=0)).max() < 4 / mechanism.scale * 4
    assert diagnostics["clipped"] == 0.25
    assert int(server["wrapped_coordinates"]) == 0


@BOTH
@pytest.mark.parametrize("cohort", [2, 4, 7])
def test_noise_carries_the_accounted_variance_whatever_the_cohort(build, cohort):
    mechanism = _mechanism(build, noise_multiplier=0.8, scale=50.0, dim=8192)
    decoded, _, _ = release(mechanism, [np.zeros(8192)] * cohort, cohort=cohort)
    accounted = (mechanism.noise_multiplier * mechanism.clip) ** 2  # variance of the sum
    if build is SkellamMechanism:
        assert decoded.var() == pytest.approx(accounted, rel=0.05)
    else:  # integer sigma is rounded up: never less than accounted, and not much more
        sigma = math.ceil(0.8 / 2 * 50 * math.sqrt(4 / cohort))
        assert decoded.var() == pytest.approx(cohort * sigma**2 / 50**2, rel=0.05)
        assert decoded.var() >= accounted * 0.95


@BOTH
def test_conditional_rounding_respects_the_norm_bound(build):
    mechanism = _mechanism(build, scale=3.0, beta=math.exp(-0.5))
    bound = mechanism.sensitivity[0]
    assert bound < 1.0 + math.sqrt(1024) / 3.0  # tighter than unconditional rounding
    y = tf.constant(np.pad(_updates(1, norm=1.0)[0], (0, 24)) * 3.0, tf.float64)
    for seed in range(5):
        z = mechanism._round(y, tf.constant([seed, 0], tf.int64))
        assert np.linalg.norm(z.numpy()) <= bound * 3.0


@BOTH
def test_calibration_reaches_the_target(build):
    mechanism = scaled_rounding_mechanism(
        build,
        clip=1.0,
        bits=16,
        rotation="hadamard",
        dim=25_450,
        clients=100,
        population=1000,
        rounds=40,
        delta=1e-5,
        wrap_probability=1e-4,
        beta=0.0,
        target_epsilon=8.0,
    )
    epsilon, _ = run_epsilon(DISTRIBUTED_ORDERS, mechanism.round_rdp(0.1), 40, 1e-5)
    assert epsilon <= 8.0 and epsilon == pytest.approx(8.0, rel=1e-4)
    assert mechanism.wrap_probability() == pytest.approx(1e-4, rel=1e-6)


def test_ddg_accounts_tau_over_the_population():
    mechanism = _mechanism(DistributedDiscreteGaussian, noise_multiplier=1.0, scale=1.0)
    l2, l1 = mechanism.sensitivity
    expected_cohort_only = ddg_round_rdp(
        l2=l2,
        l1=l1,
        sigma=mechanism.local_stddev,
        clients=4,
        scale=1.0,
        dim=1024,
        rate=0.1,
    )
    ours = mechanism.round_privacy(Sampling("poisson", population=40, cohort=4)).rdp
    assert np.all(np.asarray(ours) >= expected_cohort_only - 1e-12)


@BOTH
@pytest.mark.parametrize("survivors", [7, 10])
def test_provisioned_for_dropouts_the_fewest_survivors_carry_the_accounted_noise(build, survivors):
    """Cohort 10, max_dropout 0.3: any 7 uploads must carry the noise the accountant assumed;
    all 10 carry at most 10/7 of it (what the modulus is sized for)."""
    mechanism = _mechanism(build, noise_multiplier=0.8, scale=50.0, dim=8192, max_dropout=0.3)
    decoded, _, _ = release(mechanism, [np.zeros(8192)] * survivors, cohort=10)
    accounted = (mechanism.noise_multiplier * mechanism.clip) ** 2
    if build is SkellamMechanism:  # Poisson shares add up exactly: 4/7 of 4 clients' noise each
        assert decoded.var() == pytest.approx(accounted * survivors / 7, rel=0.05)
    else:  # discrete Gaussian shares round sigma up
        sigma = math.ceil(0.8 / 2 * 50 * math.sqrt(4 / 7))
        assert decoded.var() == pytest.approx(survivors * sigma**2 / 50**2, rel=0.05)
        assert decoded.var() >= accounted * survivors / 7 * 0.95
