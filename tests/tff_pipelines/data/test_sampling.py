import json

import numpy as np
import pytest

from tff_pipelines.data import ClientSampler, DataError


def test_fixed_exact_size_sorted_unique():
    sampler = ClientSampler(1000, 37, "fixed", seed=0)
    for _ in range(20):
        ids = sampler.sample()
        assert ids.dtype == np.int64 and len(ids) == 37
        assert np.all(np.diff(ids) > 0) and ids.min() >= 0 and ids.max() < 1000
    assert sampler.rate == pytest.approx(0.037)


def test_fixed_is_uniform_over_clients():
    sampler = ClientSampler(10, 3, "fixed", seed=1)
    counts = np.bincount(np.concatenate([sampler.sample() for _ in range(5000)]), minlength=10)
    # Each count ~ Binomial(5000, 0.3): sd ~ 32; 8 sd is far beyond any plausible deviation.
    assert np.all(np.abs(counts - 1500) < 8 * 32.4)


def test_poisson_mean_and_membership_rate():
    sampler = ClientSampler(10_000, 100, "poisson", seed=0)
    sizes = np.array([len(sampler.sample()) for _ in range(2000)])
    # Size ~ Binomial(10000, 0.01): sd 9.95; the mean of 2000 has sd 0.22; allow 6 sd.
    assert abs(sizes.mean() - 100) < 6 * 0.223
    assert abs(sizes.std() - 9.95) < 1.0  # not fixed-size: sizes really vary
    assert sampler.rate == pytest.approx(0.01)


def test_poisson_can_be_empty_and_large_population_is_fast():
    tiny = ClientSampler(50, 1, "poisson", seed=0)
    assert min(len(tiny.sample()) for _ in range(200)) == 0  # P(empty) = 0.98^50 ~ 0.36
    big = ClientSampler(1_000_000, 1000, "poisson", seed=0)
    ids = big.sample()
    assert 800 < len(ids) < 1200 and np.all(np.diff(ids) > 0)


def test_reproducible_and_seed_sensitive():
    def run(seed):
        sampler = ClientSampler(500, 20, "poisson", seed=seed)
        return [sampler.sample().tolist() for _ in range(5)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_round_robin_cycles_through_every_client_in_turn():
    sampler = ClientSampler(10, 3, "round_robin", seed=1)
    cohorts = [sampler.sample().tolist() for _ in range(5)]
    assert cohorts == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 1, 9], [2, 3, 4]]
    assert ClientSampler(10, 3, "round_robin", seed=2).sample().tolist() == [0, 1, 2]


@pytest.mark.parametrize("kind", ["fixed", "poisson", "round_robin"])
def test_state_round_trip_resumes_identical_sequence(kind):
    original = ClientSampler(1000, 50, kind, seed=7)
    for _ in range(3):
        original.sample()
    state = json.loads(json.dumps(original.get_state()))
    expected = [original.sample().tolist() for _ in range(5)]
    resumed = ClientSampler(1000, 50, kind, seed=7)
    resumed.set_state(state)
    assert resumed.rounds_sampled == 3
    assert [resumed.sample().tolist() for _ in range(5)] == expected


def test_state_from_another_configuration_is_refused():
    state = ClientSampler(1000, 50, "fixed", seed=7).get_state()
    with pytest.raises(DataError, match="saved for"):
        ClientSampler(1000, 50, "poisson", seed=7).set_state(state)


def test_invalid_arguments():
    with pytest.raises(DataError, match="kind"):
        ClientSampler(10, 2, "uniform", seed=0)
    with pytest.raises(DataError, match=r"clients_per_round must be in \[1, 10\]"):
        ClientSampler(10, 11, "fixed", seed=0)
    with pytest.raises(DataError, match="seed"):
        ClientSampler(10, 2, "fixed", seed=-1)
