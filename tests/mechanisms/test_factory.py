import numpy as np
import pytest
import tensorflow_federated as tff

from mechanisms.factory import PrivateMeanFactory
from mechanisms.gaussian import GaussianMechanism

VALUE_TYPE = tff.types.to_type([(np.float32, (2, 3)), (np.float32, (4,))])


def _client_values(n: int, rng: np.random.Generator):
    return [
        [rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(4,)).astype(np.float32)]
        for _ in range(n)
    ]


def _flat(structure) -> np.ndarray:
    return np.concatenate([np.asarray(t).ravel() for t in structure])


def test_without_noise_the_result_is_the_mean_of_clipped_updates(tff_session):
    rng = np.random.default_rng(0)
    values = _client_values(5, rng)
    clip = 1.5
    process = PrivateMeanFactory(
        GaussianMechanism(clip=clip, noise_multiplier=0.0), expected_clients=5, seed=1
    ).create(VALUE_TYPE)
    output = process.next(process.initialize(), values)
    expected = np.mean(
        [_flat(v) * min(1.0, clip / np.linalg.norm(_flat(v))) for v in values], axis=0
    )
    np.testing.assert_allclose(_flat(output.result), expected, rtol=1e-5, atol=1e-6)
    assert [np.shape(t) for t in output.result] == [(2, 3), (4,)]
    assert output.measurements["clients"] == 5
    norms = [np.linalg.norm(_flat(v)) for v in values]
    assert output.measurements["clipped"] == pytest.approx(np.mean([n > clip for n in norms]))


def test_denominator_is_the_expected_cohort_not_the_count(tff_session):
    values = [[np.full((2, 3), 0.1, np.float32), np.zeros((4,), np.float32)]] * 3
    process = PrivateMeanFactory(
        GaussianMechanism(clip=10.0, noise_multiplier=0.0), expected_clients=4, seed=1
    ).create(VALUE_TYPE)
    output = process.next(process.initialize(), values)
    np.testing.assert_allclose(output.result[0], np.full((2, 3), 0.075), rtol=1e-6)


def test_noise_on_the_mean_has_the_predicted_variance_and_changes_each_round(tff_session):
    clip, z, cohort = 1.0, 2.0, 4
    big = tff.types.to_type([(np.float32, (50_000,))])
    process = PrivateMeanFactory(
        GaussianMechanism(clip=clip, noise_multiplier=z), expected_clients=cohort, seed=3
    ).create(big)
    zeros = [[np.zeros(50_000, np.float32)]] * cohort
    state = process.initialize()
    first = process.next(state, zeros)
    second = process.next(first.state, zeros)
    noise = np.asarray(first.result[0])
    assert noise.std() == pytest.approx(z * clip / cohort, rel=0.02)
    assert not np.allclose(noise, np.asarray(second.result[0]))
    again = process.next(state, zeros)  # same state, same seed: same noise
    np.testing.assert_array_equal(noise, np.asarray(again.result[0]))
    other_seed = PrivateMeanFactory(
        GaussianMechanism(clip=clip, noise_multiplier=z), expected_clients=cohort, seed=4
    ).create(big)
    different = other_seed.next(other_seed.initialize(), zeros)
    assert not np.allclose(noise, np.asarray(different.result[0]))


def test_rejects_non_float_values_and_empty_cohorts():
    with pytest.raises(ValueError):
        PrivateMeanFactory(GaussianMechanism(1.0, 1.0), expected_clients=0, seed=0)
    factory = PrivateMeanFactory(GaussianMechanism(1.0, 1.0), expected_clients=2, seed=0)
    with pytest.raises(TypeError):
        factory.create(tff.types.to_type([(np.int32, (3,))]))
