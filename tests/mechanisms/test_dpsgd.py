"""DP-SGD client work: per-example clipping, noise scale and seeding, and the TFF process."""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from mechanisms.dpsgd import (
    build_dpsgd_client_work,
    client_noise_seed,
    clip_sum_and_noise,
    dp_sgd_step,
    local_dp_sgd,
    per_example_gradients,
)

LOSS = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _model_fn(features: int = 6, classes: int = 3, hidden: int = 5):
    def model_fn() -> tff.learning.models.VariableModel:
        keras = tf.keras.Sequential(
            [
                tf.keras.layers.InputLayer(input_shape=(features,)),
                tf.keras.layers.Dense(hidden, activation="tanh"),
                tf.keras.layers.Dense(classes),
            ]
        )
        spec = collections.OrderedDict(
            x=tf.TensorSpec([None, features], tf.float32), y=tf.TensorSpec([None], tf.int32)
        )
        return tff.learning.models.from_keras_model(
            keras,
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            input_spec=spec,
            metrics=[tf.keras.metrics.SparseCategoricalAccuracy()],
        )

    return model_fn


def _weights(model_fn, seed: int) -> tff.learning.models.ModelWeights:
    """Fixed initial weights as numpy arrays, the same for every model built by model_fn."""
    rng = np.random.default_rng(seed)
    model = model_fn()
    trainable = [
        rng.normal(0.0, 0.5, v.shape).astype(np.float32) for v in model.trainable_variables
    ]
    return tff.learning.models.ModelWeights(trainable, [])


def _batches(n: int, features: int, batch: int, seed: int, classes: int = 3) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    data = collections.OrderedDict(
        x=rng.normal(size=(n, features)).astype(np.float32),
        y=rng.integers(0, classes, size=n).astype(np.int32),
    )
    return tf.data.Dataset.from_tensor_slices(data).batch(batch)


def _assign(model, weights) -> None:
    for variable, value in zip(model.trainable_variables, weights.trainable, strict=True):
        variable.assign(value)


def _one_by_one(model, batch) -> list[list[np.ndarray]]:
    """Per-example gradients the slow, obvious way: one single-example forward pass each."""
    out = []
    for i in range(int(batch["y"].shape[0])):
        single = collections.OrderedDict(x=batch["x"][i : i + 1], y=batch["y"][i : i + 1])
        with tf.GradientTape() as tape:
            loss = model.forward_pass(single).loss
        out.append([g.numpy() for g in tape.gradient(loss, model.trainable_variables)])
    return out


def _flat(tensors) -> np.ndarray:
    return np.concatenate([np.asarray(t).ravel() for t in tensors])


SEED = tf.constant([3, 4], tf.int64)


def test_per_example_gradients_match_one_by_one():
    model_fn = _model_fn()
    model = model_fn()
    _assign(model, _weights(model_fn, 0))
    batch = next(iter(_batches(7, 6, 7, seed=1)))
    stacked, output = per_example_gradients(model, batch, LOSS.call)
    assert output.predictions.shape == (7, 3)
    for i, expected in enumerate(_one_by_one(model, batch)):
        for got, want in zip(stacked, expected, strict=True):
            np.testing.assert_allclose(got[i].numpy(), want, rtol=1e-5, atol=1e-6)


def test_tiny_clip_makes_every_example_contribute_exactly_the_clip():
    model_fn = _model_fn()
    model = model_fn()
    _assign(model, _weights(model_fn, 0))
    batch = next(iter(_batches(8, 6, 8, seed=2)))
    clip, nominal = 1e-3, 10
    step = dp_sgd_step(
        model,
        batch,
        per_example_loss=LOSS.call,
        l2_clip=clip,
        noise_stddev=0.0,
        batch_size=nominal,
        seed=SEED,
    )
    singles = [_flat(g) for g in _one_by_one(model, batch)]
    assert all(np.linalg.norm(g) > 10 * clip for g in singles)
    expected = sum(clip * g / np.linalg.norm(g) for g in singles) / nominal
    np.testing.assert_allclose(_flat(step.gradient), expected, rtol=1e-4, atol=1e-9)
    assert int(step.clipped) == 8
    assert int(step.num_examples) == 8


def test_clip_sum_and_noise_keeps_small_scales_large_and_drops_non_finite():
    # Two variables; example gradients of joint norm 0.6, 5 (→ 1) and one with a NaN.
    a = tf.constant([[0.0, 0.6], [3.0, 0.0], [np.nan, 1.0]])
    b = tf.constant([[0.0], [4.0], [1.0]])
    summed, clipped = clip_sum_and_noise(
        [a, b], l2_clip=1.0, noise_stddev=0.0, denominator=2.0, seed=SEED
    )
    np.testing.assert_allclose(summed[0].numpy(), [0.6 / 2, 0.6 / 2], rtol=1e-6)
    np.testing.assert_allclose(summed[1].numpy(), [0.8 / 2], rtol=1e-6)
    assert int(clipped) == 2


def test_coordinate_clip_clamps_every_clipped_example_coordinate_wise():
    # Joint norms 5 (clipped to 1: [0.6, 0], [0.8]) and 0.5 (kept), then |coordinate| <= 0.7.
    a = tf.constant([[3.0, 0.0], [0.3, 0.0]])
    b = tf.constant([[4.0], [-0.4]])
    summed, clipped = clip_sum_and_noise(
        [a, b], l2_clip=1.0, noise_stddev=0.0, denominator=1.0, seed=SEED, coordinate_clip=0.7
    )
    np.testing.assert_allclose(summed[0].numpy(), [0.6 + 0.3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(summed[1].numpy(), [0.7 - 0.4], rtol=1e-6)
    assert int(clipped) == 1  # counts the L2 clip, as without the clamp


def test_clip_sum_and_noise_draws_sigma_c_over_denominator_per_coordinate():
    zeros = tf.zeros([4, 200, 100])
    noisy, _ = clip_sum_and_noise(
        [zeros], l2_clip=1.0, noise_stddev=3.0, denominator=4.0, seed=SEED
    )
    values = noisy[0].numpy().ravel()
    assert abs(values.std() / 0.75 - 1) < 0.03
    assert abs(values.mean()) < 0.03
    again, _ = clip_sum_and_noise(
        [zeros], l2_clip=1.0, noise_stddev=3.0, denominator=4.0, seed=SEED
    )
    np.testing.assert_array_equal(again[0].numpy(), noisy[0].numpy())


def test_without_noise_or_clipping_an_epoch_equals_minibatch_sgd():
    model_fn, lr = _model_fn(), 0.3
    initial = _weights(model_fn, 5)
    data = _batches(32, 6, 8, seed=6)
    model = model_fn()
    trained = tf.function(
        lambda: local_dp_sgd(
            model,
            initial,
            data,
            per_example_loss=LOSS.call,
            l2_clip=1e6,
            batch_size=8,
            noise_multiplier=0.0,
            learning_rate=lr,
            seed=SEED,
        )
    )()
    plain = model_fn()
    _assign(plain, initial)
    for batch in data:
        with tf.GradientTape() as tape:
            loss = plain.forward_pass(batch).loss
        for v, g in zip(
            plain.trainable_variables, tape.gradient(loss, plain.trainable_variables), strict=True
        ):
            v.assign_sub(lr * g)
    final = [v.numpy() for v in plain.trainable_variables]
    expected = [w - v for w, v in zip(initial.trainable, final, strict=True)]
    assert np.abs(_flat(expected)).max() > 1e-2  # the epoch moved the weights
    np.testing.assert_allclose(_flat(trained.update), _flat(expected), atol=1e-5)
    assert int(trained.num_examples) == 32
    assert int(trained.clipped) == 0
    metrics = model.report_local_unfinalized_metrics()
    assert metrics["num_examples"][0] == 32


def test_update_noise_std_is_lr_sigma_c_over_b_times_sqrt_steps():
    # Clip 1e-6 with sigma 1e6: the data's share is < 1e-6 per step, noise std sigma*C = 1.
    model_fn = _model_fn(features=100, classes=10, hidden=100)  # 11 110 parameters
    lr, batch, steps = 0.1, 8, 4
    data = _batches(batch * steps, 100, batch, seed=7, classes=10)
    model, initial = model_fn(), _weights(model_fn, 8)
    trained = tf.function(
        lambda: local_dp_sgd(
            model,
            initial,
            data,
            per_example_loss=LOSS.call,
            l2_clip=1e-6,
            batch_size=batch,
            noise_multiplier=1e6,
            learning_rate=lr,
            seed=SEED,
        )
    )()
    update = _flat(trained.update)
    assert update.size == 11_110
    expected = lr * 1.0 / batch * np.sqrt(steps)
    assert abs(update.std() / expected - 1) < 0.04
    assert abs(update.mean()) < 0.04 * expected
    assert int(trained.clipped) == batch * steps


def test_a_modelmix_step_starts_uniformly_within_tau_of_the_initial_weights():
    """One batch, no noise: the first step mixes the initial weights with themselves pushed
    τ apart, so update − lr·gradient is uniform on [−τ/2, τ/2] per coordinate."""
    from mechanisms.example_level import ModelMix

    model_fn, lr, tau_over_lr = _model_fn(features=100, classes=10, hidden=100), 0.1, 5.0
    data = _batches(8, 100, 8, seed=9, classes=10)
    initial = _weights(model_fn, 10)

    def train(modelmix):
        model = model_fn()
        return tf.function(
            lambda: local_dp_sgd(
                model,
                initial,
                data,
                per_example_loss=LOSS.call,
                l2_clip=1.0,
                batch_size=8,
                noise_multiplier=0.0,
                learning_rate=lr,
                seed=SEED,
                modelmix=modelmix,
            )
        )()

    plain = _flat(train(None).update)  # lr · gradient
    mixed = _flat(train(ModelMix(tau_over_lr)).update)
    offset = plain - mixed  # the start's displacement from the initial weights
    tau = tau_over_lr * lr
    assert np.abs(offset).max() <= tau / 2 * (1 + 1e-4)
    assert abs(offset.std() / (tau / np.sqrt(12)) - 1) < 0.03
    assert abs(offset.mean()) < 0.01 * tau
    again = _flat(train(ModelMix(tau_over_lr)).update)
    np.testing.assert_array_equal(again, mixed)


def test_an_empty_poisson_batch_releases_noise_alone():
    """Poisson batching can draw no example at all; the step still releases N(0, (σC)²)/B."""
    model = _model_fn(features=6, classes=3, hidden=40)()
    empty = collections.OrderedDict(x=tf.zeros([0, 6], tf.float32), y=tf.zeros([0], tf.int32))
    spec = collections.OrderedDict(
        x=tf.TensorSpec([None, 6], tf.float32), y=tf.TensorSpec([None], tf.int32)
    )

    @tf.function(input_signature=[spec])  # as in training: the batch size is not static
    def step(batch):
        return dp_sgd_step(
            model,
            batch,
            per_example_loss=LOSS.call,
            l2_clip=2.0,
            noise_stddev=3.0,
            batch_size=4,
            seed=SEED,
        )

    noisy = step(empty)
    values = _flat(noisy.gradient)
    assert int(noisy.num_examples) == 0 and int(noisy.clipped) == 0
    assert values.size == 6 * 40 + 40 + 40 * 3 + 3
    assert abs(values.std() / (3.0 / 4) - 1) < 0.1


def test_a_reduced_loss_is_refused():
    model = _model_fn()()
    batch = next(iter(_batches(4, 6, 4, seed=1)))
    with pytest.raises(ValueError, match="one loss per example"):
        per_example_gradients(model, batch, LOSS)


def test_client_noise_seed_depends_on_seed_round_and_data():
    data, other = _batches(8, 6, 4, seed=1), _batches(8, 6, 4, seed=2)
    base = client_noise_seed(1, tf.constant(0, tf.int64), data).numpy()
    np.testing.assert_array_equal(client_noise_seed(1, tf.constant(0, tf.int64), data), base)
    for changed in (
        client_noise_seed(2, tf.constant(0, tf.int64), data),
        client_noise_seed(1, tf.constant(1, tf.int64), data),
        client_noise_seed(1, tf.constant(0, tf.int64), other),
    ):
        assert not np.array_equal(changed.numpy(), base)


def test_constructor_refuses_bad_settings():
    for bad in ({"l2_clip": 0.0}, {"noise_multiplier": -1.0}, {"batch_size": 0}):
        kwargs = dict(learning_rate=0.1, l2_clip=1.0, noise_multiplier=1.0, batch_size=4, seed=0)
        with pytest.raises(ValueError):
            build_dpsgd_client_work(_model_fn(), per_example_loss=LOSS.call, **(kwargs | bad))


# --- through TFF ---------------------------------------------------------------------------


def _client_work(model_fn, **overrides) -> tff.learning.templates.ClientWorkProcess:
    settings = dict(learning_rate=0.1, l2_clip=1e-6, noise_multiplier=1e6, batch_size=4, seed=11)
    return build_dpsgd_client_work(model_fn, per_example_loss=LOSS.call, **(settings | overrides))


def test_types_match_tffs_model_delta_client_work():
    model_fn = _model_fn()
    ours = _client_work(model_fn)
    theirs = tff.learning.templates.build_model_delta_client_work(
        model_fn,
        tff.learning.optimizers.build_sgdm(0.1),
        client_weighting=tff.learning.ClientWeighting.UNIFORM,
    )
    assert ours.next.type_signature.parameter[1:] == theirs.next.type_signature.parameter[1:]
    assert ours.next.type_signature.result.result == theirs.next.type_signature.result.result
    ours_train = ours.next.type_signature.result.measurements.member["train"]
    assert ours_train == theirs.next.type_signature.result.measurements.member["train"]


def test_noise_follows_hparams_rounds_seed_and_client(tff_session):
    model_fn = _model_fn(features=20, classes=10, hidden=20)  # 630 parameters
    weights = _weights(model_fn, 1)
    data = [_batches(8, 20, 4, seed=10, classes=10), _batches(8, 20, 4, seed=11, classes=10)]
    process = _client_work(model_fn)
    state = process.initialize()
    assert process.get_hparams(state) == collections.OrderedDict(
        noise_multiplier=np.float32(1e6), learning_rate=np.float32(0.1)
    )
    first = process.next(state, [weights, weights], data)
    a, b = (_flat(r.update) for r in first.result)
    assert [r.update_weight for r in first.result] == [1.0, 1.0]
    assert first.state["round"] == 1
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.3  # clients draw independent noise
    expected_std = 0.1 * 1.0 / 4 * np.sqrt(2)
    assert 0.8 < a.std() / expected_std < 1.2
    assert first.measurements["clipped_fraction"] == 1.0
    assert first.measurements["train"]["num_examples"] == 16

    second = process.next(first.state, [weights], data[:1])
    assert abs(np.corrcoef(a, _flat(second.result[0].update))[0, 1]) < 0.3  # rounds differ

    louder = process.set_hparams(
        state, collections.OrderedDict(noise_multiplier=np.float32(3e6), learning_rate=0.1)
    )
    assert louder["round"] == 0
    tripled = process.next(louder, [weights], data[:1])
    np.testing.assert_allclose(_flat(tripled.result[0].update), 3 * a, rtol=1e-3, atol=1e-6)

    again = _client_work(model_fn).next(state, [weights], data[:1])
    np.testing.assert_array_equal(_flat(again.result[0].update), a)  # same seed, same data
    reseeded = _client_work(model_fn, seed=12).next(state, [weights], data[:1])
    assert abs(np.corrcoef(a, _flat(reseeded.result[0].update))[0, 1]) < 0.3


def test_composes_into_a_learning_process_and_trains(tff_session):
    model_fn = _model_fn()
    client_work = _client_work(model_fn, l2_clip=1.0, noise_multiplier=0.5, learning_rate=0.5)
    weights_type = tff.learning.models.weights_type_from_model(model_fn)

    @tff.tensorflow.computation
    def initial_weights():
        return tff.learning.models.ModelWeights.from_model(model_fn())

    update_type = client_work.next.type_signature.result.result.member.update
    aggregator = tff.aggregators.as_weighted_aggregator(tff.aggregators.UnweightedMeanFactory())
    process = tff.learning.templates.compose_learning_process(
        initial_weights,
        tff.learning.templates.build_broadcast_process(weights_type),
        client_work,
        aggregator.create(update_type, tff.TensorType(np.float32)),
        tff.learning.templates.build_apply_optimizer_finalizer(
            tff.learning.optimizers.build_sgdm(1.0), weights_type
        ),
    )
    clients = [_batches(8, 6, 4, seed=20 + c) for c in range(3)]
    state = process.initialize()
    start = _flat(process.get_model_weights(state).trainable)
    for _ in range(2):
        output = process.next(state, clients)
        state = output.state
        train = output.metrics["client_work"]["train"]
        assert train["num_examples"] == 24
        assert np.isfinite(train["loss"])
        assert 0.0 <= output.metrics["client_work"]["clipped_fraction"] <= 1.0
    assert state.client_work["round"] == 2
    assert process.get_hparams(state)["client_work"]["noise_multiplier"] == np.float32(0.5)
    assert not np.allclose(_flat(process.get_model_weights(state).trainable), start)
