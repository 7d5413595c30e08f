import numpy as np
import pytest
import tensorflow as tf

from mechanisms.example_level import ModelMix
from mechanisms.modelmix import mix, modelmix_starts, separate

SEED = tf.constant([3, 4], tf.int64)


def test_separate_pushes_close_pairs_exactly_tau_apart_around_their_midpoint():
    current = tf.constant([1.0, 0.0, 5.0, -2.0, 7.0], tf.float32)
    previous = tf.constant([0.9, 0.3, 5.0, -2.0, 0.0], tf.float32)
    tau = 0.5
    now, before = (t.numpy() for t in separate(current, previous, tau=tau, seed=SEED))
    gap = now - before
    np.testing.assert_allclose(np.abs(gap[:4]), tau, rtol=2e-5)
    assert np.all(np.abs(gap[:4]) >= tau)  # never short of what the accountant credits
    np.testing.assert_allclose((now + before) / 2, (current + previous).numpy() / 2, atol=1e-6)
    assert gap[0] > 0 and gap[1] < 0  # the direction of the difference is kept
    assert now[4] == 7.0 and before[4] == 0.0  # already far apart: untouched


def test_ties_pick_both_directions_at_random():
    zeros = tf.zeros([4000])
    now, before = separate(zeros, zeros, tau=2.0, seed=SEED)
    signs = np.sign(now.numpy() - before.numpy())
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert abs(signs.mean()) < 0.1
    again, _ = separate(zeros, zeros, tau=2.0, seed=SEED)
    np.testing.assert_array_equal(again.numpy(), now.numpy())


def test_mix_is_uniform_between_the_two_states():
    current, previous = tf.fill([20000], 3.0), tf.fill([20000], 1.0)
    mixed = mix(current, previous, seed=SEED).numpy()
    assert mixed.min() >= 1.0 and mixed.max() <= 3.0
    assert abs(mixed.mean() - 2.0) < 0.02
    assert abs(mixed.std() - 2.0 / np.sqrt(12)) < 0.01
    assert len(np.unique(mixed)) > 19000


def test_modelmix_starts_mixes_every_variable_and_keeps_the_separated_current():
    current = [tf.zeros([3, 2]), tf.fill([5], 10.0)]
    previous = [tf.zeros([3, 2]), tf.fill([5], 4.0)]
    starts, kept = modelmix_starts(current, previous, tau=1.0, seed=SEED)
    assert [s.shape for s in starts] == [(3, 2), (5,)]
    np.testing.assert_allclose(np.abs(kept[0].numpy()), 0.5, rtol=2e-5)  # tie: pushed ±τ/2
    assert np.all(np.abs(starts[0].numpy()) <= 0.5 * (1 + 2e-5))
    np.testing.assert_array_equal(kept[1].numpy(), current[1].numpy())  # already 6 apart
    assert np.all((starts[1].numpy() >= 4.0) & (starts[1].numpy() <= 10.0))
    other, _ = modelmix_starts(current, previous, tau=1.0, seed=SEED + 1)
    assert not np.array_equal(other[1].numpy(), starts[1].numpy())


def test_settings():
    assert ModelMix(0.15, 100).coordinate_clip(20.0) == pytest.approx(2.0)
    assert ModelMix(0.15).coordinate_clip(20.0) is None and ModelMix(0.15).p == 1
    for bad in ({"tau_over_lr": 0.0}, {"tau_over_lr": 0.1, "coordinate_clip_p": 0}):
        with pytest.raises(ValueError):
            ModelMix(**bad)


def test_server_finalizer_steps_from_a_mix_of_the_last_two_global_models(tff_session):
    import tensorflow_federated as tff

    from mechanisms.modelmix import build_modelmix_finalizer

    weights_type = tff.to_type(
        tff.learning.models.ModelWeights(
            trainable=[tff.TensorType(np.float32, [500])],
            non_trainable=[tff.TensorType(np.float32, [2])],
        )
    )
    tau = 0.2
    finalizer = build_modelmix_finalizer(
        tff.learning.optimizers.build_sgdm(learning_rate=1.0), weights_type, tau=tau, seed=7
    )
    weights = tff.learning.models.ModelWeights(
        trainable=[np.full(500, 3.0, np.float32)], non_trainable=[np.ones(2, np.float32)]
    )
    update = [np.full(500, 1.0, np.float32)]  # the optimizer subtracts it
    state = finalizer.initialize()
    first = finalizer.next(state, weights, update)
    start = first.result.trainable[0] + 1.0
    assert np.all(np.abs(start - 3.0) <= tau / 2 * (1 + 1e-4))  # mixed with itself, τ apart
    assert start.std() > tau / 10
    np.testing.assert_array_equal(first.result.non_trainable[0], np.ones(2))

    second = finalizer.next(first.state, first.result, update)
    start = second.result.trainable[0] + 1.0
    latest = first.result.trainable[0]
    previous = first.state["modelmix"]["previous"][0]  # the separated first-round model
    low, high = np.minimum(latest, previous), np.maximum(latest, previous)
    assert np.all((start >= low - 1e-5) & (start <= high + 1e-5))  # between the two models
    assert np.abs(start - latest).max() > 0.5  # and not just the latest one
    hparams = finalizer.get_hparams(second.state)
    assert float(hparams["learning_rate"]) == 1.0
    assert finalizer.set_hparams(second.state, hparams)["modelmix"]["round"] == 2
