import numpy as np
import pytest

from tff_pipelines.data import DataError, load_source

BUILTINS = [
    # name, rows, features, task, classes, image shape
    ("mnist5k", 5000, 784, "classification", 10, (28, 28, 1)),
    ("digits", 1797, 64, "classification", 10, (8, 8, 1)),
    ("boston", 506, 13, "regression", 0, None),
    ("pima", 532, 7, "classification", 2, None),
    ("breast_cancer", 569, 30, "classification", 2, None),
]


@pytest.mark.parametrize(("name", "rows", "features", "task", "classes", "image"), BUILTINS)
def test_builtin_shapes_and_task(name, rows, features, task, classes, image):
    ds = load_source(name)
    assert ds.name == name
    assert ds.x.shape == (rows, features) and ds.x.dtype == np.float32
    assert ds.y.shape == (rows,)
    assert ds.task == task and ds.num_classes == classes and ds.image_shape == image
    assert len(ds.feature_names) == features
    assert np.isfinite(ds.x).all()
    if task == "classification":
        assert ds.y.dtype == np.int32
        assert set(np.unique(ds.y)) == set(range(classes))
    else:
        assert ds.y.dtype == np.float32


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_image_pixels_scaled_to_unit_interval(name):
    ds = load_source(name)
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0


def test_mnist5k_is_balanced_and_pima_labels_match_r():
    assert np.bincount(load_source("mnist5k").y).tolist() == [500] * 10
    pima = load_source("pima")
    # MASS: Pima.tr has 68 "Yes" of 200, Pima.te has 109 "Yes" of 332.
    assert int(pima.y.sum()) == 68 + 109
    assert pima.feature_names == ["npreg", "glu", "bp", "skin", "bmi", "ped", "age"]


def test_boston_target_is_medv():
    ds = load_source("boston")
    assert ds.feature_names[-1] == "LSTAT"
    assert ds.y[0] == pytest.approx(24.0)  # first row of the UCI file
    assert ds.y.min() >= 5.0 and ds.y.max() <= 50.0


def test_examples_caps_rows_with_a_seeded_subsample():
    full = load_source("boston")
    a = load_source("boston", examples=100, seed=3)
    b = load_source("boston", examples=100, seed=3)
    c = load_source("boston", examples=100, seed=4)
    assert a.x.shape == (100, 13)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    rows = {tuple(r) for r in full.x.tolist()}
    assert all(tuple(r) in rows for r in a.x.tolist())
    assert load_source("boston", examples=10_000).x.shape == full.x.shape


def test_synthetic_classification_is_deterministic_and_learnable():
    a = load_source("synthetic", examples=4000, dim=5, classes=3, seed=1)
    b = load_source("synthetic", examples=4000, dim=5, classes=3, seed=1)
    c = load_source("synthetic", examples=4000, dim=5, classes=3, seed=2)
    assert a.x.shape == (4000, 5) and a.num_classes == 3 and a.task == "classification"
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert np.bincount(a.y, minlength=3).min() > 100
    # The labels follow a linear teacher: least squares on one-hot labels beats chance clearly.
    design = np.hstack([a.x, np.ones((4000, 1), np.float32)])
    coef, *_ = np.linalg.lstsq(design[:3000], np.eye(3)[a.y[:3000]], rcond=None)
    accuracy = (np.argmax(design[3000:] @ coef, axis=1) == a.y[3000:]).mean()
    assert accuracy > 0.6


def test_synthetic_regression_has_a_linear_signal():
    ds = load_source("synthetic", examples=5000, dim=8, classes=0)
    assert ds.task == "regression" and ds.num_classes == 0 and ds.y.dtype == np.float32
    design = np.hstack([ds.x, np.ones((5000, 1), np.float32)])
    coef, *_ = np.linalg.lstsq(design, ds.y, rcond=None)
    r_squared = 1 - np.var(ds.y - design @ coef) / np.var(ds.y)
    assert r_squared > 0.6


def test_synthetic_default_size_and_invalid_classes():
    assert load_source("synthetic").x.shape == (10_000, 20)
    with pytest.raises(DataError, match="classes"):
        load_source("synthetic", classes=1)


def test_unknown_source_lists_choices():
    with pytest.raises(DataError, match=r"unknown data source 'cifar'.*mnist5k.*csv"):
        load_source("cifar")


def test_options_that_do_not_apply_are_rejected():
    with pytest.raises(DataError, match="label only apply to csv/npz"):
        load_source("pima", label="type")
    with pytest.raises(DataError, match="needs a path"):
        load_source("csv")
    with pytest.raises(DataError, match="regression dataset"):
        load_source("boston", task="classification")
    with pytest.raises(DataError, match="task must be one of"):
        load_source("boston", task="ranking")
    with pytest.raises(DataError, match="examples must be a positive integer"):
        load_source("boston", examples=0)
