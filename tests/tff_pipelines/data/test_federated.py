import json
import time

import numpy as np
import pytest

from tff_pipelines.data import DataError, Dataset, build_federated_data, load_source


@pytest.fixture(scope="module")
def mnist():
    return load_source("mnist5k")


def all_train(fd):
    return np.concatenate([x for x, _ in fd.clients]), np.concatenate([y for _, y in fd.clients])


def tagged_dataset(n: int = 600, classes: int = 3) -> Dataset:
    """Feature 0 is the row index, so every example can be traced through the pipeline."""
    rng = np.random.default_rng(0)
    x = np.stack([np.arange(n), rng.normal(size=n)], axis=1).astype(np.float32)
    y = (np.arange(n) % classes).astype(np.int32)
    return Dataset("tagged", x, y, "classification", classes)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_partition_covers_train_exactly_once(scheme):
    ds = tagged_dataset()
    fd = build_federated_data(ds, clients=30, partition=scheme, standardize=False)
    assert len(fd.clients) == 30 and all(len(y) >= 1 for _, y in fd.clients)
    x_train, y_train = all_train(fd)
    train_rows = x_train[:, 0].astype(int)
    test_rows = fd.test[0][:, 0].astype(int)
    assert len(np.unique(train_rows)) == len(train_rows)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_rows, test_rows])), np.arange(600))
    np.testing.assert_array_equal(y_train, ds.y[train_rows])
    assert fd.partition == scheme and fd.input_dim == 2 and fd.name == "tagged"


def test_mnist_shards_give_at_most_two_labels(mnist):
    fd = build_federated_data(mnist, clients=100, partition="shards", shards_per_client=2)
    assert max(len(np.unique(y)) for _, y in fd.clients) <= 2
    assert fd.image_shape == (28, 28, 1) and fd.input_dim == 784 and fd.num_classes == 10


def test_mnist_stratified_test_split(mnist):
    fd = build_federated_data(mnist, clients=10, test_fraction=0.2)
    assert np.bincount(fd.test[1]).tolist() == [100] * 10
    assert np.bincount(all_train(fd)[1]).tolist() == [400] * 10


def test_mnist_load_and_build_are_fast(mnist):
    start = time.perf_counter()
    build_federated_data(load_source("mnist5k"), clients=100, partition="dirichlet")
    assert time.perf_counter() - start < 1.0


def test_standardisation_uses_train_statistics_only():
    ds = tagged_dataset()
    raw = build_federated_data(ds, clients=5, standardize=False, seed=2)
    std = build_federated_data(ds, clients=5, standardize=True, seed=2)
    raw_train, _ = all_train(raw)
    mean, scale = raw_train.mean(axis=0), raw_train.std(axis=0)
    np.testing.assert_allclose(std.standardizer.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(std.standardizer.scale, scale, rtol=1e-5)
    np.testing.assert_allclose(all_train(std)[0], (raw_train - mean) / scale, atol=1e-5)
    np.testing.assert_allclose(std.test[0], (raw.test[0] - mean) / scale, atol=1e-5)
    assert abs(std.test[0][:, 1].mean()) > 0  # test is not re-centred on its own statistics
    assert raw.standardizer is None


def test_regression_split_is_uniform_and_dirichlet_rejected():
    ds = load_source("boston")
    fd = build_federated_data(ds, clients=4, test_fraction=0.25)
    assert len(fd.test[1]) == round(0.25 * 506) and fd.task == "regression"
    assert fd.summary()["label_histogram"]["edges"][0] == pytest.approx(all_train(fd)[1].min())
    with pytest.raises(DataError, match="needs classification"):
        build_federated_data(ds, clients=4, partition="dirichlet")


def test_regression_targets_standardised_for_training_only():
    ds = load_source("boston")
    raw = build_federated_data(ds, clients=3, seed=4)
    std = build_federated_data(ds, clients=3, standardize_target=True, seed=4)
    raw_targets, std_targets = all_train(raw)[1], all_train(std)[1]
    target = std.target_standardizer
    assert raw.target_standardizer is None
    np.testing.assert_allclose(target.mean, raw_targets.mean(), rtol=1e-6)
    np.testing.assert_allclose(target.scale, raw_targets.std(), rtol=1e-6)
    np.testing.assert_allclose(std_targets, (raw_targets - target.mean) / target.scale, atol=1e-5)
    np.testing.assert_allclose(target.invert(std_targets), raw_targets, rtol=1e-5)
    np.testing.assert_array_equal(std.test[1], raw.test[1])  # evaluation stays in $1000s
    with pytest.raises(DataError, match="only regression targets"):
        build_federated_data(tagged_dataset(), clients=3, standardize_target=True)


def test_natural_partition_groups_by_id():
    ids = np.repeat(np.array(["u0", "u1", "u2", "u3"]), [1, 5, 10, 20])
    ds = Dataset(
        "nat",
        np.arange(36, dtype=np.float32)[:, None],
        (np.arange(36) % 2).astype(np.int32),
        "classification",
        2,
        client_ids=ids,
    )
    fd = build_federated_data(ds, clients=4, partition="natural", standardize=False)
    for client, (x, _) in enumerate(fd.clients):
        assert set(ids[x[:, 0].astype(int)]) == {f"u{client}"}
    assert len(fd.clients[0][1]) == 1  # u0's only example was kept out of the test set
    with pytest.raises(DataError, match="found 4 distinct client ids but clients=3"):
        build_federated_data(ds, clients=3, partition="natural")
    with pytest.raises(DataError, match="needs per-example client ids"):
        build_federated_data(load_source("pima"), clients=3, partition="natural")


def test_too_few_training_examples():
    with pytest.raises(DataError, match="cannot give each of 500 clients"):
        build_federated_data(load_source("pima"), clients=500)


def test_same_seed_same_arrays_and_partition_does_not_move_test():
    ds = load_source("synthetic", examples=2000, classes=4, seed=1)
    a = build_federated_data(ds, clients=20, partition="dirichlet", seed=5)
    b = build_federated_data(ds, clients=20, partition="dirichlet", seed=5)
    for (xa, ya), (xb, yb) in zip(a.clients, b.clients, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    c = build_federated_data(ds, clients=20, partition="shards", seed=5)
    np.testing.assert_array_equal(a.test[0], c.test[0])  # split stream independent of partition
    d = build_federated_data(ds, clients=20, partition="dirichlet", seed=6)
    assert not np.array_equal(a.test[0], d.test[0])


def test_summary_is_json_ready():
    fd = build_federated_data(load_source("pima"), clients=7)
    summary = json.loads(json.dumps(fd.summary()))
    assert summary["clients"] == 7
    assert summary["train_size"] + summary["test_size"] == 532
    sizes = summary["examples_per_client"]
    assert sizes["min"] <= sizes["median"] <= sizes["max"] and sizes["max"] - sizes["min"] <= 1
    assert sum(summary["label_histogram"]["train"]) == summary["train_size"]
    assert len(summary["label_histogram"]["test"]) == 2


def test_large_synthetic_is_fast():
    start = time.perf_counter()
    ds = load_source("synthetic", examples=1_000_000, dim=20, classes=10)
    fd = build_federated_data(ds, clients=10_000, partition="dirichlet")
    assert fd.summary()["examples_per_client"]["min"] >= 1
    assert time.perf_counter() - start < 10.0
