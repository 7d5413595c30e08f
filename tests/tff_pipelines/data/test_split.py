import numpy as np
import pytest

from tff_pipelines.data import DataError
from tff_pipelines.data.split import keep_every_group_in_train, stratified_test_counts
from tff_pipelines.data.split import train_test_split as split


def test_stratified_split_keeps_class_shares():
    labels = np.repeat(np.arange(3), [100, 50, 10])
    train, test = split(labels, 0.2, np.random.default_rng(0), stratify=True)
    assert np.bincount(labels[test]).tolist() == [20, 10, 2]
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(160))


def test_apportionment_total_is_exact():
    counts = stratified_test_counts(np.array([7, 7, 7]), 0.5)
    assert counts.sum() == 10 and set(counts.tolist()) <= {3, 4}


def test_unstratified_split_and_zero_fraction():
    labels = np.linspace(0, 1, 50)
    train, test = split(labels, 0.3, np.random.default_rng(0), stratify=False)
    assert len(test) == 15 and len(train) == 35
    train, test = split(labels, 0.0, np.random.default_rng(0), stratify=False)
    assert len(test) == 0
    with pytest.raises(DataError, match="test_fraction"):
        split(labels, 1.0, np.random.default_rng(0), stratify=False)


def test_keep_every_group_in_train_returns_one_example():
    groups = np.array([0, 0, 1, 1, 2])
    train, test = keep_every_group_in_train(np.array([0, 1]), np.array([2, 3, 4]), groups)
    assert train.tolist() == [0, 1, 2, 4]
    assert test.tolist() == [3]
