import numpy as np
import pytest
import tensorflow_federated as tff

from tff_pipelines.averaging import ModelAverage, suffix_start


def _weights(*values):
    return tff.learning.models.ModelWeights(
        trainable=[np.array(values, np.float32)], non_trainable=[np.array([7.0], np.float32)]
    )


def test_uniform_average_of_the_models_from_start_on():
    average = ModelAverage(start=3)
    latest = None
    for round_num, value in enumerate([100.0, 50.0, 1.0, 2.0, 6.0], start=1):
        latest = _weights(value, -value)
        average.update(round_num, latest.trainable)
    published = average.published(latest)
    np.testing.assert_allclose(published.trainable[0], [3.0, -3.0])
    assert published.trainable[0].dtype == np.float32
    assert published.non_trainable == latest.non_trainable  # only trainable weights averaged
    assert average.count == 3


def test_before_start_the_last_model_is_published():
    average = ModelAverage(start=4)
    latest = _weights(5.0)
    assert not average.takes(3) and average.takes(4)
    average.update(3, latest.trainable)
    assert average.published(latest) is latest


def test_decay_turns_the_mean_into_an_exponential_moving_average():
    average = ModelAverage(start=1, decay=0.5)
    values = [4.0, 8.0, 0.0, 2.0]
    for round_num, value in enumerate(values, start=1):
        average.update(round_num, [np.array([value])])
    # rates max(1 - 0.5, 1/k): 1, 1/2, 1/2, 1/2
    expected = 4.0
    for value in values[1:]:
        expected += 0.5 * (value - expected)
    np.testing.assert_allclose(average.published(_weights(0.0)).trainable[0], [expected])


def test_restore_continues_bit_for_bit():
    rng = np.random.default_rng(0)
    models = [rng.normal(size=(3, 2)).astype(np.float32) for _ in range(6)]
    straight = ModelAverage(start=2, decay=0.7)
    for round_num, model in enumerate(models, start=1):
        straight.update(round_num, [model])
    first = ModelAverage(start=2, decay=0.7)
    for round_num, model in enumerate(models[:3], start=1):
        first.update(round_num, [model])
    saved_meta = first.to_dict()
    saved_model = first.published(_weights(0.0)).trainable
    resumed = ModelAverage(start=2, decay=0.7)
    resumed.restore(saved_meta, saved_model)
    for round_num, model in enumerate(models[3:], start=4):
        resumed.update(round_num, [model])
    final = resumed.published(_weights(0.0)).trainable[0]
    np.testing.assert_array_equal(final, straight.published(_weights(0.0)).trainable[0])


@pytest.mark.parametrize("start, decay", [(0, 1.0), (1, 0.0), (1, 1.5)])
def test_rejects_settings_without_meaning(start, decay):
    with pytest.raises(ValueError):
        ModelAverage(start, decay)


def test_the_suffix_is_the_last_rounds_and_at_least_the_last_one():
    assert suffix_start(20, 0.25) == 16
    assert suffix_start(20, 1.0) == 1
    assert suffix_start(2, 0.25) == 2
    with pytest.raises(ValueError):
        suffix_start(20, 0.0)
