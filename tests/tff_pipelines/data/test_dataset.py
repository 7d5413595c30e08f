import numpy as np
import pytest

from tff_pipelines.data import DataError, Dataset


def make(**overrides):
    fields = {
        "name": "d",
        "x": np.zeros((4, 6), np.float32),
        "y": np.array([0, 1, 0, 1], np.int32),
        "task": "classification",
        "num_classes": 2,
    }
    return Dataset(**(fields | overrides))


def test_valid_dataset_properties():
    ds = make(image_shape=(2, 3, 1))
    assert ds.num_examples == 4 and ds.input_dim == 6


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"x": np.zeros((4, 2, 3), np.float32)}, "float32"),
        ({"x": np.zeros((4, 6))}, "float32"),
        ({"y": np.array([0, 1, 0], np.int32)}, "shape"),
        ({"y": np.array([0, 1, 0, 2], np.int32)}, r"\[0, 2\)"),
        ({"y": np.zeros(4, np.float32), "task": "regression"}, "num_classes 0"),
        ({"image_shape": (28, 28, 1)}, "image_shape"),
        ({"feature_names": ["a"]}, "feature names"),
        ({"client_ids": np.zeros(3)}, "client_ids"),
        ({"task": "ranking"}, "task"),
    ],
)
def test_invalid_datasets_rejected(overrides, message):
    with pytest.raises(DataError, match=message):
        make(**overrides)
