import dp_accounting
import numpy as np
import pytest
import tensorflow as tf

from mechanisms.accounting import Sampling
from mechanisms.gaussian import GaussianMechanism

ADD_REMOVE = dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
REPLACE = dp_accounting.NeighboringRelation.REPLACE_ONE


def test_encode_clips_long_updates_and_keeps_short_ones():
    mechanism = GaussianMechanism(clip=1.0, noise_multiplier=1.0)
    seed = tf.constant([1, 2], tf.int64)
    long, stats = mechanism.encode(tf.constant([3.0, 4.0]), seed, seed, 1)
    np.testing.assert_allclose(long.numpy(), [0.6, 0.8], rtol=1e-6)
    assert stats["clipped"].numpy() == 1.0
    assert stats["update_norm"].numpy() == pytest.approx(5.0)
    short, stats = mechanism.encode(tf.constant([0.3, 0.4]), seed, seed, 1)
    np.testing.assert_allclose(short.numpy(), [0.3, 0.4], rtol=1e-6)
    assert stats["clipped"].numpy() == 0.0


def test_decode_adds_noise_of_the_promised_scale_and_is_seeded():
    mechanism = GaussianMechanism(clip=0.5, noise_multiplier=2.0)
    total = tf.zeros([200_000])
    seed = tf.constant([7, 3], tf.int64)
    noisy, diagnostics = mechanism.decode(total, seed)
    noisy = noisy.numpy()
    assert diagnostics == {}
    assert noisy.std() == pytest.approx(1.0, rel=0.01)  # z * clip
    assert abs(noisy.mean()) < 0.01
    np.testing.assert_array_equal(noisy, mechanism.decode(total, seed)[0].numpy())
    other = mechanism.decode(total, tf.constant([7, 4], tf.int64))[0].numpy()
    assert not np.array_equal(noisy, other)


def test_a_scheduled_server_follows_its_table_by_round_index():
    mechanism = GaussianMechanism(clip=2.0, noise_multiplier=3.0, scheduled=(3.0, 1.5, 0.5))
    total, seed = tf.zeros([200_000]), tf.constant([7, 3], tf.int64)
    for round_index, stddev in [(0, 6.0), (1, 3.0), (2, 1.0), (9, 1.0)]:
        noisy = mechanism.decode(total, seed, round_index=tf.constant(round_index, tf.int64))[0]
        assert noisy.numpy().std() == pytest.approx(stddev, rel=0.01)
    with pytest.raises(ValueError, match="scheduled"):
        GaussianMechanism(clip=1.0, noise_multiplier=1.0, scheduled=(1.0, 0.0))


def test_the_noise_applied_is_never_below_the_noise_accounted():
    """TF adds noise in float32: the stddev is rounded up, not to nearest."""
    from mechanisms.float32 import float32_at_least

    for value in (0.1, 1 / 3, 2.0 / 3.0 * 1.7, 1e-3, 12345.678):
        rounded = float32_at_least(value)
        assert rounded.dtype == np.float32 and float(rounded) >= value
        assert float(np.nextafter(rounded, np.float32(0))) < value


def test_round_privacy_is_the_sampled_release():
    mechanism = GaussianMechanism(clip=1.0, noise_multiplier=1.2)
    sampling = Sampling("poisson", population=100, cohort=10)
    assert mechanism.round_privacy(sampling) == dp_accounting.PoissonSampledDpEvent(
        0.1, dp_accounting.GaussianDpEvent(1.2)
    )


def test_release_event_doubles_sensitivity_under_replace_one():
    mechanism = GaussianMechanism(clip=1.0, noise_multiplier=1.2)
    assert mechanism.release_event(ADD_REMOVE) == dp_accounting.GaussianDpEvent(1.2)
    assert mechanism.release_event(REPLACE) == dp_accounting.GaussianDpEvent(0.6)
    zero = GaussianMechanism(clip=1.0, noise_multiplier=0.0)
    assert isinstance(zero.release_event(ADD_REMOVE), dp_accounting.NonPrivateDpEvent)


@pytest.mark.parametrize("clip, z", [(0.0, 1.0), (-1.0, 1.0), (1.0, -0.1)])
def test_rejects_bad_parameters(clip, z):
    with pytest.raises(ValueError):
        GaussianMechanism(clip=clip, noise_multiplier=z)
