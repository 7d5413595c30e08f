"""Distributed Selective SGD: download and upload selection, the SVT upload, and the TFF process
(one round against plain SGD, standalone training, state round-trips)."""

import collections
import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from tff_pipelines import checkpoint
from tff_pipelines.run import round_record
from tff_pipelines.selective_sgd import (
    FlatLayout,
    SelectiveSgdProcess,
    SelectiveSgdSettings,
    download_mask,
    select_upload,
)

FEATURES, HIDDEN, CLASSES = 6, 5, 3
SIZE = FEATURES * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES  # |w| = 53
NUM_CLIENTS = 4
BASE = SelectiveSgdSettings(
    upload_fraction=1.0,
    download_fraction=1.0,
    download="most_updated",
    selection="largest",
    threshold=0.0,
    bound=1e6,
    learning_rate=0.1,
    local_epochs=1,
    svt_epsilon=None,
    seed=7,
)


def settings(**changes) -> SelectiveSgdSettings:
    return dataclasses.replace(BASE, **changes)


def keras_model() -> tf.keras.Model:
    return tf.keras.Sequential(
        [
            tf.keras.layers.InputLayer(input_shape=(FEATURES,)),
            tf.keras.layers.Dense(HIDDEN, activation="tanh"),
            tf.keras.layers.Dense(CLASSES),
        ]
    )


def model_fn() -> tff.learning.models.VariableModel:
    spec = collections.OrderedDict(
        x=tf.TensorSpec([None, FEATURES], tf.float32), y=tf.TensorSpec([None], tf.int32)
    )
    return tff.learning.models.from_keras_model(
        keras_model(),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        input_spec=spec,
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def initial_weights(seed: int = 0) -> tff.learning.models.ModelWeights:
    rng = np.random.default_rng(seed)
    shapes = [(FEATURES, HIDDEN), (HIDDEN,), (HIDDEN, CLASSES), (CLASSES,)]
    return tff.learning.models.ModelWeights(
        [rng.normal(0.0, 0.5, s).astype(np.float32) for s in shapes], []
    )


def examples(client: int, n: int = 20) -> collections.OrderedDict:
    rng = np.random.default_rng(100 + client)
    return collections.OrderedDict(
        x=rng.normal(size=(n, FEATURES)).astype(np.float32),
        y=rng.integers(0, CLASSES, size=n).astype(np.int32),
    )


def dataset(client: int, n: int = 20) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(examples(client, n)).batch(8)


def no_data() -> tf.data.Dataset:
    """A client without examples: it trains nothing, so its local model is what it downloaded."""
    return tf.data.Dataset.from_tensor_slices(examples(0)).take(0).batch(8)


def plain_sgd(weights: list[np.ndarray], client: int, epochs: int, rate: float = 0.1):
    """Reference: `epochs` passes of w ← w − rate·∇loss(batch) with Keras, flat."""
    model = keras_model()
    model.set_weights(weights)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    data = examples(client)
    for _ in range(epochs):
        for start in range(0, len(data["y"]), 8):
            x, y = data["x"][start : start + 8], data["y"][start : start + 8]
            with tf.GradientTape() as tape:
                value = loss(y, model(x))
            gradients = tape.gradient(value, model.trainable_variables)
            for variable, gradient in zip(model.trainable_variables, gradients, strict=True):
                variable.assign_sub(rate * gradient)
    return flat([v.numpy() for v in model.trainable_variables])


def flat(tensors) -> np.ndarray:
    return np.concatenate([np.asarray(t).ravel() for t in tensors])


def fresh_state(process: SelectiveSgdProcess):
    return process.set_model_weights(process.initialize(), initial_weights())


# --- Settings and layout ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        dict(upload_fraction=1.5),
        dict(download_fraction=-0.1),
        dict(download="newest"),
        dict(selection="smallest"),
        dict(threshold=math.nan),
        dict(bound=0.0),
        dict(learning_rate=-1.0),
        dict(local_epochs=0),
        dict(svt_epsilon=0.0),
        dict(seed=1.5),
    ],
)
def test_settings_reject_invalid_values(change):
    with pytest.raises(ValueError):
        settings(**change)


def test_counts_round_down_and_the_svt_budget_needs_an_upload():
    s = settings(upload_fraction=0.1, download_fraction=0.25, svt_epsilon=2.0, bound=0.5)
    assert s.upload_count(53) == 5 and s.download_count(53) == 13
    budget = s.svt_budget(53)
    assert (budget.epsilon, budget.count, budget.bound) == (2.0, 5, 0.5)
    assert settings(upload_fraction=0.01, svt_epsilon=2.0).svt_budget(53) is None  # c = 0
    assert settings().svt_budget(53) is None  # no DP


def test_flat_layout_round_trips():
    layout = FlatLayout(((2, 3), (3,)))
    tensors = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([7, 8, 9], np.float32)]
    flat_weights = layout.flatten(tensors)
    np.testing.assert_array_equal(flat_weights, [0, 1, 2, 3, 4, 5, 7, 8, 9])
    for a, b in zip(layout.unflatten(flat_weights), tensors, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        layout.flatten(tensors[::-1])


# --- Selection, eagerly ----------------------------------------------------------------------

SEED = tf.constant([3, 4], tf.int64)


def update(size: int = 1000, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, size).astype(np.float32)


def test_largest_uploads_exactly_the_top_c_truncated():
    delta = update()
    s = settings(upload_fraction=0.05, bound=0.8)
    values, selected = (t.numpy() for t in select_upload(delta, settings=s, budget=None, seed=SEED))
    top = np.argsort(-np.abs(delta))[:50]
    assert set(np.flatnonzero(selected)) == set(top)
    np.testing.assert_array_equal(values[top], np.clip(delta[top], -0.8, 0.8))
    assert np.all(values[~selected] == 0)
    assert np.abs(values).max() == pytest.approx(0.8)  # the top 50 of N(0, 1) all exceed 0.8


def test_an_infinite_bound_uploads_untruncated_and_needs_no_dp():
    delta = update()
    s = settings(upload_fraction=0.05, bound=math.inf)
    values, selected = (t.numpy() for t in select_upload(delta, settings=s, budget=None, seed=SEED))
    np.testing.assert_array_equal(values[selected], delta[selected])
    with pytest.raises(ValueError, match="finite bound"):
        settings(bound=math.inf, svt_epsilon=1.0)


def test_unchanged_and_non_finite_coordinates_are_never_uploaded_without_dp():
    delta = np.zeros(100, np.float32)
    delta[[3, 9]] = [0.5, -0.25]
    delta[[20, 30]] = [np.nan, np.inf]
    values, selected = select_upload(
        delta, settings=settings(upload_fraction=0.5), budget=None, seed=SEED
    )
    assert np.flatnonzero(selected.numpy()).tolist() == [3, 9]
    np.testing.assert_array_equal(values.numpy()[[3, 9]], [0.5, -0.25])


def test_random_threshold_uploads_at_most_c_random_coordinates_above_tau():
    delta = update()
    s = settings(upload_fraction=0.05, selection="random_threshold", threshold=1.5, bound=2.0)
    above = np.abs(delta) > 1.5
    assert above.sum() > 50  # enough candidates: exactly c are drawn among them
    picks = []
    for seed in ([1, 2], [5, 6]):
        values, selected = select_upload(delta, settings=s, budget=None, seed=tf.constant(seed))
        selected = selected.numpy()
        assert selected.sum() == 50 and np.all(above[selected])
        np.testing.assert_array_equal(values.numpy()[selected], np.clip(delta[selected], -2, 2))
        picks.append(set(np.flatnonzero(selected)))
    assert picks[0] != picks[1]  # random, by seed
    few = settings(upload_fraction=0.05, selection="random_threshold", threshold=2.5)
    _, selected = select_upload(delta, settings=few, budget=None, seed=SEED)
    np.testing.assert_array_equal(selected.numpy(), np.abs(delta) > 2.5)  # fewer than c: all


def test_svt_upload_is_bounded_noisy_and_reproducible():
    delta = update(2000)
    s = settings(upload_fraction=0.02, svt_epsilon=2000.0, threshold=1.0, bound=1.5)
    budget = s.svt_budget(2000)
    values, selected = (
        t.numpy() for t in select_upload(delta, settings=s, budget=budget, seed=SEED)
    )
    assert 0 < selected.sum() <= 40
    assert np.all(np.abs(values) <= 1.5) and np.all(values[~selected] == 0)
    clipped = np.clip(delta, -1.5, 1.5)
    assert not np.allclose(values[selected], clipped[selected])  # Laplace noise on the values
    # With this (huge) ε the selection is informative: mostly coordinates above τ.
    assert np.mean(np.abs(delta[selected]) > 1.0) > 0.8 > np.mean(np.abs(delta) > 1.0)
    again, _ = select_upload(delta, settings=s, budget=budget, seed=SEED)
    np.testing.assert_array_equal(again.numpy(), values)
    other, _ = select_upload(delta, settings=s, budget=budget, seed=tf.constant([9, 9], tf.int64))
    assert not np.array_equal(other.numpy(), values)


def test_no_upload_when_c_is_zero():
    values, selected = select_upload(
        update(), settings=settings(upload_fraction=0.0), budget=None, seed=SEED
    )
    assert not selected.numpy().any() and not values.numpy().any()


# --- Download, eagerly -----------------------------------------------------------------------


def test_most_updated_download_takes_the_largest_counts_ties_by_seeded_order():
    counts = tf.constant([0, 5, 1, 5, 2, 0, 3, 2, 2, 0], tf.int64)
    mask = download_mask(counts, count=3, kind="most_updated", seed=SEED).numpy()
    assert np.flatnonzero(mask).tolist() == [1, 3, 6]
    # Five slots: 5, 5, 3 and two of the three 2s, which depend on the seed.
    picked = set()
    for seed in range(20):
        mask = download_mask(counts, count=5, kind="most_updated", seed=tf.constant([seed, 0]))
        chosen = set(np.flatnonzero(mask.numpy()))
        assert {1, 3, 6} < chosen and len(chosen - {1, 3, 6} - {4, 7, 8}) == 0
        picked.add(frozenset(chosen))
    assert len(picked) == 3  # every pair of tied parameters is reachable
    repeat = download_mask(counts, count=5, kind="most_updated", seed=SEED)
    np.testing.assert_array_equal(
        repeat.numpy(), download_mask(counts, count=5, kind="most_updated", seed=SEED).numpy()
    )


def test_random_download_and_the_extremes():
    counts = tf.constant(np.arange(100), tf.int64)
    a = download_mask(counts, count=10, kind="random", seed=SEED).numpy()
    b = download_mask(counts, count=10, kind="random", seed=tf.constant([1, 1])).numpy()
    assert a.sum() == b.sum() == 10 and not np.array_equal(a, b)
    assert set(np.flatnonzero(a)) != set(range(90, 100))  # not by count
    assert not download_mask(counts, count=0, kind="random", seed=SEED).numpy().any()
    assert download_mask(counts, count=100, kind="most_updated", seed=SEED).numpy().all()


# --- The process, through TFF ----------------------------------------------------------------


@pytest.fixture(scope="module")
def full_sharing(tff_session) -> SelectiveSgdProcess:
    """θ_u = θ_d = 1, top-c with a bound nothing reaches: DSSGD degenerates to SGD."""
    return SelectiveSgdProcess(model_fn, BASE, NUM_CLIENTS)


@pytest.fixture(scope="module")
def standalone(tff_session) -> SelectiveSgdProcess:
    """θ_u = θ_d = 0: every participant trains alone."""
    return SelectiveSgdProcess(
        model_fn, settings(upload_fraction=0.0, download_fraction=0.0), NUM_CLIENTS
    )


@pytest.fixture(scope="module")
def partial(tff_session) -> SelectiveSgdProcess:
    """c = 10 of 53 uploaded (largest, truncated to ±0.02), the 10 most updated downloaded."""
    return SelectiveSgdProcess(
        model_fn,
        settings(upload_fraction=0.2, download_fraction=0.2, bound=0.02),
        NUM_CLIENTS,
    )


@pytest.fixture(scope="module")
def private(tff_session) -> SelectiveSgdProcess:
    """`partial` with its uploads through the SVT (ε = 10 per upload)."""
    return SelectiveSgdProcess(
        model_fn,
        settings(upload_fraction=0.2, download_fraction=0.2, bound=0.02, svt_epsilon=10.0),
        NUM_CLIENTS,
    )


def test_one_round_with_everything_shared_is_one_epoch_of_sgd(full_sharing):
    state = fresh_state(full_sharing)
    assert full_sharing.num_parameters == SIZE
    output = full_sharing.next(state, [dataset(2)], [2])
    expected = plain_sgd(initial_weights().trainable, client=2, epochs=1)
    global_model = flat(full_sharing.get_model_weights(output.state).trainable)
    np.testing.assert_allclose(global_model, expected, rtol=1e-5, atol=1e-6)
    local = flat(full_sharing.local_model_weights(output.state, 2).trainable)
    np.testing.assert_allclose(local, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(global_model, local, rtol=0, atol=1e-6)
    for other in (0, 1, 3):  # the others did not take a turn
        untouched = flat(full_sharing.local_model_weights(output.state, other).trainable)
        np.testing.assert_array_equal(untouched, flat(initial_weights().trainable))
    assert isinstance(output, tff.learning.templates.LearningProcessOutput)
    metrics = output.metrics
    assert metrics["client_work"]["train"]["num_examples"] == 20
    assert 0 <= metrics["client_work"]["train"]["accuracy"] <= 1
    assert metrics["aggregator"]["uploaded"] == SIZE  # every weight moves
    assert metrics["aggregator"]["upload_fraction_realised"] == 1.0
    np.testing.assert_array_equal(output.state["update_counts"], np.ones(SIZE))
    assert int(output.state["round"]) == 1
    record = round_record(1, 1, metrics, None, None, 0.1)  # what the run loop logs
    assert record["train_num_examples"] == 20 and record["agg_uploaded"] == SIZE
    assert record["agg_upload_fraction_realised"] == 1.0


def test_a_round_adds_every_clients_upload(full_sharing):
    state = fresh_state(full_sharing)
    output = full_sharing.next(state, [dataset(0), dataset(1)], [0, 1])
    start = flat(initial_weights().trainable)
    deltas = [plain_sgd(initial_weights().trainable, client=c, epochs=1) - start for c in (0, 1)]
    np.testing.assert_allclose(
        output.state["global_trainable"], start + deltas[0] + deltas[1], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(output.state["update_counts"], np.full(SIZE, 2))
    assert output.metrics["aggregator"]["uploaded"] == 2 * SIZE
    assert output.metrics["client_work"]["train"]["num_examples"] == 40


def test_standalone_keeps_the_global_model_and_trains_each_local_model_on_its_own(standalone):
    state = fresh_state(standalone)
    start = flat(initial_weights().trainable)
    for round_clients in ([0], [1, 0], [0]):
        output = standalone.next(state, [dataset(c) for c in round_clients], round_clients)
        state = output.state
        assert output.metrics["aggregator"]["uploaded"] == 0
        assert output.metrics["aggregator"]["upload_fraction_realised"] == 0.0
    np.testing.assert_array_equal(flat(standalone.get_model_weights(state).trainable), start)
    assert not state["update_counts"].any()
    # θ_d = 0: client 0 kept training its own model, three turns = three epochs of plain SGD.
    np.testing.assert_allclose(
        flat(standalone.local_model_weights(state, 0).trainable),
        plain_sgd(initial_weights().trainable, client=0, epochs=3),
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        flat(standalone.local_model_weights(state, 1).trainable),
        plain_sgd(initial_weights().trainable, client=1, epochs=1),
        rtol=1e-5,
        atol=1e-6,
    )


def test_partial_upload_and_most_updated_download(partial):
    state = fresh_state(partial)
    start = flat(initial_weights().trainable)
    output = partial.next(state, [dataset(0)], [0])
    counts = output.state["update_counts"]
    delta = plain_sgd(initial_weights().trainable, client=0, epochs=1) - start
    top = np.argsort(-np.abs(delta))[:10]  # c = floor(0.2 · 53)
    assert set(np.flatnonzero(counts)) == set(top)
    assert output.metrics["aggregator"]["uploaded"] == 10
    assert output.metrics["aggregator"]["upload_fraction_realised"] == pytest.approx(10 / SIZE)
    change = output.state["global_trainable"] - start
    np.testing.assert_allclose(change[top], np.clip(delta[top], -0.02, 0.02), atol=1e-6)
    assert not np.delete(change, top).any()
    # Client 1 has no data: its local model is exactly what it downloaded, the 10 most updated.
    output = partial.next(output.state, [no_data()], [1])
    local = flat(partial.local_model_weights(output.state, 1).trainable)
    global_model = output.state["global_trainable"]
    np.testing.assert_array_equal(local, np.where(counts > 0, global_model, start))
    assert output.metrics["aggregator"]["uploaded"] == 0


def test_svt_uploads_are_bounded_noisy_and_reproducible(private, partial):
    state = fresh_state(private)
    clients = [0, 1, 2]
    data = [dataset(c) for c in clients]
    output = private.next(state, data, clients)
    counts = output.state["update_counts"]
    uploaded = output.metrics["aggregator"]["uploaded"]
    assert counts.sum() == uploaded and 0 < uploaded <= 3 * 10 and counts.max() <= 3
    change = output.state["global_trainable"] - state["global_trainable"]
    assert np.all(np.abs(change) <= counts * 0.02 + 1e-7)  # each upload within ±γ
    assert not change[counts == 0].any()
    # The values carry noise: the same round without DP uploads something else.
    exact = partial.next(state, data, clients)
    assert not np.allclose(exact.state["global_trainable"], output.state["global_trainable"])
    # Stateless randomness: the same state and data give the same round.
    again = private.next(state, data, clients)
    np.testing.assert_array_equal(again.state["global_trainable"], output.state["global_trainable"])
    np.testing.assert_array_equal(again.state["update_counts"], counts)


def test_svt_noise_is_keyed_by_client(private):
    """Two clients with the same model and data still draw their own noise: they select
    different coordinates (identical selections would make every count 0 or 2)."""
    output = private.next(fresh_state(private), [dataset(0), dataset(0)], [0, 1])
    assert np.any(output.state["update_counts"] == 1)


def test_state_survives_a_checkpoint_and_continues_identically(partial, tmp_path):
    state = partial.next(fresh_state(partial), [dataset(0), dataset(3)], [0, 3]).state
    checkpoint.save(tmp_path, 1, state, partial.get_model_weights(state), meta={})
    restored = checkpoint.load(tmp_path).restore_state(partial.initialize())
    assert int(restored["round"]) == 1
    for a, b in ([dataset(1)], [1]), ([dataset(0), dataset(2)], [0, 2]):
        state = partial.next(state, a, b).state
        restored = partial.next(restored, a, b).state
    for name in ("global_trainable", "update_counts", "local_trainable"):
        np.testing.assert_array_equal(restored[name], state[name])
    assert int(restored["round"]) == int(state["round"]) == 3


def test_set_model_weights_resets_the_global_and_every_local_model(partial):
    state = partial.next(fresh_state(partial), [dataset(0), dataset(1)], [0, 1]).state
    weights = initial_weights(seed=5)
    reset = partial.set_model_weights(state, weights)
    for client in range(NUM_CLIENTS):
        np.testing.assert_array_equal(
            flat(partial.local_model_weights(reset, client).trainable), flat(weights.trainable)
        )
    np.testing.assert_array_equal(
        flat(partial.get_model_weights(reset).trainable), flat(weights.trainable)
    )
    np.testing.assert_array_equal(reset["update_counts"], state["update_counts"])
    assert not np.array_equal(state["local_trainable"][0], reset["local_trainable"][0])


def test_an_empty_round_changes_nothing_but_the_round(partial):
    state = fresh_state(partial)
    output = partial.next(state, [], [])
    assert int(output.state["round"]) == 1
    np.testing.assert_array_equal(output.state["global_trainable"], state["global_trainable"])
    train = output.metrics["client_work"]["train"]
    assert train["num_examples"] == 0 and np.isnan(train["loss"])
    assert output.metrics["aggregator"]["uploaded"] == 0


@pytest.mark.parametrize(
    "data, ids",
    [([1], [0, 1]), ([1, 2], [0, 0]), ([1], [NUM_CLIENTS]), ([1], [-1])],
)
def test_next_rejects_bad_client_ids(partial, data, ids):
    with pytest.raises(ValueError):
        partial.next(fresh_state(partial), [dataset(c) for c in data], ids)
