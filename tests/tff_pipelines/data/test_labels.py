import numpy as np
import pytest

from tff_pipelines.data import DataError
from tff_pipelines.data.labels import encode_labels


def test_auto_rules():
    assert encode_labels(np.array([3, 1, 3]), "auto", "w").class_names == ["1", "3"]
    assert encode_labels(np.array([True, False]), "auto", "w").num_classes == 2
    assert encode_labels(np.array([0.0, 1.0]), "auto", "w").task == "regression"
    assert encode_labels(np.arange(101), "auto", "w").task == "regression"
    with pytest.raises(DataError, match="101 distinct values"):
        encode_labels(np.array([f"c{i}" for i in range(101)]), "auto", "w")


def test_errors_carry_location():
    with pytest.raises(DataError, match=r"f\.csv column 'y': classification needs >= 2"):
        encode_labels(np.array([1, 1]), "classification", "f.csv column 'y'")
    with pytest.raises(DataError, match="missing values"):
        encode_labels(np.array(["a", None], dtype=object), "auto", "w")
    with pytest.raises(DataError, match="non-finite"):
        encode_labels(np.array([1.0, np.nan]), "regression", "w")
