"""Holding out a test set that keeps every class's share (classification) or is uniform."""

from __future__ import annotations

import numpy as np

from tff_pipelines.data.errors import DataError


def stratified_test_counts(class_sizes: np.ndarray, test_fraction: float) -> np.ndarray:
    """Largest-remainder apportionment of round(test_fraction * n) test slots over classes.

    Each class gets floor or ceil of its proportional share; leftover slots go to the largest
    fractional parts (lowest class on ties), so the total is exact and deterministic.
    """
    total = round(float(test_fraction) * int(class_sizes.sum()))
    quotas = class_sizes * test_fraction
    counts = np.floor(quotas).astype(np.int64)
    leftover = total - int(counts.sum())
    if leftover > 0:
        by_remainder = np.argsort(-(quotas - counts), kind="stable")
        counts[by_remainder[:leftover]] += 1
    return counts


def train_test_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator, *, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), each sorted; stratified by label when asked."""
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    n = len(labels)
    shuffled = rng.permutation(n)
    if stratify:
        grouped = shuffled[np.argsort(labels[shuffled], kind="stable")]
        _, class_sizes = np.unique(labels, return_counts=True)
        starts = np.concatenate([[0], np.cumsum(class_sizes)[:-1]])
        rank_in_class = np.arange(n) - np.repeat(starts, class_sizes)
        test_counts = stratified_test_counts(class_sizes, test_fraction)
        in_test = rank_in_class < np.repeat(test_counts, class_sizes)
        test, train = grouped[in_test], grouped[~in_test]
    else:
        cut = round(float(test_fraction) * n)
        test, train = shuffled[:cut], shuffled[cut:]
    return np.sort(train), np.sort(test)


def keep_every_group_in_train(
    train: np.ndarray, test: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Move one test example back to train for each group that has no training example.

    Used for natural partitions so every client id still owns data after the split.
    """
    missing = np.setdiff1d(np.unique(groups[test]), np.unique(groups[train]))
    if missing.size == 0:
        return train, test
    test_groups, first_position = np.unique(groups[test], return_index=True)
    back = first_position[np.isin(test_groups, missing)]
    returned = test[back]
    return np.sort(np.concatenate([train, returned])), np.delete(test, back)
