import numpy as np

from tff_pipelines.data import Standardizer


def test_fit_on_train_and_constant_feature_scale_one():
    train = np.array([[1.0, 5.0], [3.0, 5.0]], np.float32)
    scaler = Standardizer.fit(train)
    np.testing.assert_allclose(scaler.mean, [2.0, 5.0])
    np.testing.assert_allclose(scaler.scale, [1.0, 1.0])
    out = scaler(np.array([[4.0, 7.0]], np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[2.0, 2.0]])


def test_near_constant_rounding_does_not_blow_up():
    train = np.full((1000, 1), 0.1, np.float32)
    np.testing.assert_array_equal(Standardizer.fit(train).scale, [1.0])
