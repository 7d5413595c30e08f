import numpy as np
import pytest

from tff_pipelines.data import DataError, load_source


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(
        "age,height,city,label,user\n"
        "30,1.8,paris,yes,u1\n"
        "40,1.6,rome,no,u2\n"
        "50,1.7,oslo,yes,u1\n"
        "60,1.9,rome,maybe,u3\n"
    )
    return path


def test_csv_named_features_string_labels_sorted(csv_file):
    ds = load_source("csv", path=str(csv_file), features=["age", "height"], label="label")
    assert ds.name == "people"
    assert ds.x.dtype == np.float32 and ds.x.shape == (4, 2)
    np.testing.assert_allclose(ds.x[:, 0], [30, 40, 50, 60])
    assert ds.task == "classification" and ds.num_classes == 3
    assert ds.class_names == ["maybe", "no", "yes"]
    assert ds.y.tolist() == [2, 1, 2, 0]
    assert ds.client_ids is None


def test_csv_default_features_exclude_label_and_client_key(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label,user\n1,2,0,x\n3,4,1,y\n5,6,1,x\n")
    ds = load_source("csv", path=str(path), client_key="user")
    assert ds.feature_names == ["a", "b"]
    assert ds.client_ids.tolist() == ["x", "y", "x"]
    assert ds.num_classes == 2


def test_csv_non_numeric_feature_is_named(csv_file):
    with pytest.raises(DataError, match=r"not numeric: 'city'"):
        load_source("csv", path=str(csv_file), label="label", client_key="user")


def test_csv_missing_column_names_file_and_lists_columns(csv_file):
    with pytest.raises(DataError) as error:
        load_source("csv", path=str(csv_file), features=["age", "weight"], label="label")
    message = str(error.value)
    assert "people.csv" in message and "'weight'" in message
    assert "'age', 'height', 'city', 'label', 'user'" in message
    with pytest.raises(DataError, match=r"no label column 'target'.*'age'"):
        load_source("csv", path=str(csv_file), features="age", label="target")
    with pytest.raises(DataError, match=r"no client_key column 'who'"):
        load_source("csv", path=str(csv_file), features="age", label="label", client_key="who")


def test_csv_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"csv file '.*nowhere.csv' does not exist"):
        load_source("csv", path=str(tmp_path / "nowhere.csv"))


def test_csv_missing_feature_value_is_named(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("a,b,label\n1,,0\n2,3,1\n")
    with pytest.raises(DataError, match=r"non-finite values in 'b'"):
        load_source("csv", path=str(path))


def test_csv_task_auto_float_label_is_regression_and_many_ints_too(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,label\n" + "".join(f"{i},{i * 0.5}\n" for i in range(10)))
    assert load_source("csv", path=str(path)).task == "regression"
    path.write_text("a,label\n" + "".join(f"{i},{i}\n" for i in range(101)))
    assert load_source("csv", path=str(path)).task == "regression"
    path.write_text("a,label\n" + "".join(f"{i},{i}\n" for i in range(100)))
    assert load_source("csv", path=str(path)).num_classes == 100


def test_csv_explicit_task_overrides_auto(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,label\n1,1.0\n2,2.0\n3,1.0\n")
    ds = load_source("csv", path=str(path), task="classification")
    assert ds.num_classes == 2 and ds.y.tolist() == [0, 1, 0] and ds.class_names == ["1", "2"]
    path.write_text("a,label\n1,1.5\n2,2.0\n")
    with pytest.raises(DataError, match="whole-number"):
        load_source("csv", path=str(path), task="classification")
    path.write_text("a,label\n1,x\n2,y\n")
    with pytest.raises(DataError, match="regression needs a numeric label"):
        load_source("csv", path=str(path), task="regression")


def test_csv_examples_cap_keeps_client_ids_aligned(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("a,label,user\n" + "".join(f"{i},{i % 2},{i}\n" for i in range(50)))
    ds = load_source("csv", path=str(path), client_key="user", examples=10, seed=1)
    assert ds.x.shape == (10, 1)
    np.testing.assert_array_equal(ds.x[:, 0].astype(int), ds.client_ids)


def test_npz_images_keep_shape_and_flatten(tmp_path):
    path = tmp_path / "imgs.npz"
    images = np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3)
    np.savez(path, x=images, y=np.array([0, 1, 0, 1, 2]))
    ds = load_source("npz", path=str(path))
    assert ds.x.shape == (5, 12) and ds.image_shape == (4, 3, 1)
    np.testing.assert_array_equal(ds.x[1], images[1].ravel())
    assert ds.num_classes == 3
    np.savez(path, x=np.zeros((5, 4, 4, 3)), y=np.arange(5.0))
    ds = load_source("npz", path=str(path))
    assert ds.image_shape == (4, 4, 3) and ds.task == "regression"


def test_npz_named_keys_and_client_ids(tmp_path):
    path = tmp_path / "tab.npz"
    np.savez(path, a=np.ones((4, 2)), b=np.zeros(4), target=[1, 0, 1, 0], who=[7, 7, 8, 9])
    ds = load_source("npz", path=str(path), features=["a", "b"], label="target", client_key="who")
    assert ds.x.shape == (4, 3) and ds.image_shape is None
    assert ds.feature_names == ["a_0", "a_1", "b_0"]
    assert ds.client_ids.tolist() == [7, 7, 8, 9]


def test_npz_errors_name_file_key_and_list_keys(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, features=np.ones((3, 2)), y=np.array([0, 1, 0]))
    expected = r"bad\.npz: no feature key 'x'; the file has: 'features', 'y'"
    with pytest.raises(DataError, match=expected):
        load_source("npz", path=str(path))
    with pytest.raises(DataError, match=r"no label key 'label'"):
        load_source("npz", path=str(path), features="features", label="label")
    with pytest.raises(DataError, match=r"npz file '.*missing.npz' does not exist"):
        load_source("npz", path=str(tmp_path / "missing.npz"))
    np.savez(path, x=np.ones((3, 2)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="needs 2 rows"):
        load_source("npz", path=str(path))
