import numpy as np
import pytest

from tff_pipelines.data import DataError
from tff_pipelines.data.partition import (
    dirichlet_partition,
    fill_empty_clients,
    group_by_client,
    iid_partition,
    natural_partition,
    partition,
    shard_partition,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_valid(owner: np.ndarray, n: int, clients: int) -> None:
    assert owner.shape == (n,) and owner.dtype == np.int64
    assert owner.min() >= 0 and owner.max() < clients
    assert np.bincount(owner, minlength=clients).min() >= 1
    groups = group_by_client(owner, clients)
    assert len(groups) == clients
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), np.arange(n))


def mean_labels_per_client(owner: np.ndarray, labels: np.ndarray, clients: int) -> float:
    return float(np.mean([len(np.unique(labels[owner == c])) for c in range(clients)]))


def test_iid_sizes_differ_by_at_most_one():
    owner = iid_partition(103, 10, rng())
    assert_valid(owner, 103, 10)
    sizes = np.bincount(owner)
    assert sizes.max() - sizes.min() == 1 and sizes.sum() == 103


def test_iid_shuffles():
    owner = iid_partition(1000, 10, rng())
    assert not np.array_equal(owner, np.repeat(np.arange(10), 100))


def test_dirichlet_small_alpha_is_skewed_large_alpha_near_iid():
    labels = np.repeat(np.arange(10), 300)
    skewed = dirichlet_partition(labels, 20, 0.05, rng())
    uniform = dirichlet_partition(labels, 20, 1000.0, rng())
    for owner in (skewed, uniform):
        assert_valid(owner, len(labels), 20)
    assert mean_labels_per_client(skewed, labels, 20) < 4
    assert mean_labels_per_client(uniform, labels, 20) == 10

    # Distance of each client's label distribution from the global (uniform) one.
    def total_variation(owner):
        counts = [np.bincount(labels[owner == c], minlength=10) for c in range(20)]
        shares = [count / count.sum() for count in counts]
        return np.mean([0.5 * np.abs(share - 0.1).sum() for share in shares])

    assert total_variation(skewed) > 0.5
    assert total_variation(uniform) < 0.1


def test_dirichlet_tiny_alpha_still_fills_every_client():
    labels = np.repeat(np.arange(3), 40)
    owner = dirichlet_partition(labels, 100, 0.001, rng())
    assert_valid(owner, 120, 100)


def test_shards_bound_labels_per_client():
    labels = np.repeat(np.arange(10), 400)
    owner = shard_partition(labels, 100, 2, rng())
    assert_valid(owner, 4000, 100)
    assert max(len(np.unique(labels[owner == c])) for c in range(100)) <= 2
    assert np.bincount(owner).tolist() == [40] * 100


def test_shards_with_more_shards_than_examples_still_fills_clients():
    owner = shard_partition(np.arange(7) % 2, 5, 3, rng())
    assert_valid(owner, 7, 5)


def test_natural_groups_by_sorted_id():
    ids = np.array(["b", "a", "b", "c", "a"])
    owner = natural_partition(ids, 3)
    assert owner.tolist() == [1, 0, 1, 2, 0]
    with pytest.raises(DataError, match="found 3 distinct client ids but clients=4"):
        natural_partition(ids, 4)
    with pytest.raises(DataError, match="needs per-example client ids"):
        natural_partition(None, 3)


def test_fill_empty_clients_takes_from_largest_deterministically():
    owner = np.array([0, 0, 0, 0, 2, 2, 2])
    filled = fill_empty_clients(owner, 5)
    assert np.bincount(filled, minlength=5).tolist() == [2, 1, 2, 1, 1]
    np.testing.assert_array_equal(filled, fill_empty_clients(owner, 5))
    full = np.array([0, 1, 2, 2])
    np.testing.assert_array_equal(fill_empty_clients(full, 3), full)


def test_fewer_examples_than_clients_is_an_error():
    with pytest.raises(DataError, match="5 training examples cannot give each of 6 clients"):
        iid_partition(5, 6, rng())


def test_partition_dispatch_errors():
    labels = np.arange(10.0)
    with pytest.raises(DataError, match="needs classification"):
        partition(labels, 2, "dirichlet", rng(), is_classification=False)
    with pytest.raises(DataError, match="unknown partition 'random'"):
        partition(labels, 2, "random", rng())
    with pytest.raises(DataError, match="dirichlet_alpha must be > 0"):
        partition(np.zeros(10, int), 2, "dirichlet", rng(), dirichlet_alpha=0.0)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_same_generator_seed_same_partition(scheme):
    labels = np.repeat(np.arange(5), 50)
    a = partition(labels, 7, scheme, rng(3))
    b = partition(labels, 7, scheme, rng(3))
    np.testing.assert_array_equal(a, b)
