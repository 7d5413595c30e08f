"""User datasets: a CSV file with named columns, or an .npz file with named arrays.

Every error names the file and the column/key at fault and lists what the file does contain.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from tff_pipelines.data.dataset import Dataset
from tff_pipelines.data.errors import DataError
from tff_pipelines.data.labels import encode_labels

DEFAULT_CSV_LABEL = "label"
DEFAULT_NPZ_FEATURES = "x"
DEFAULT_NPZ_LABEL = "y"


def _as_names(features: list[str] | str | None) -> list[str] | None:
    if features is None:
        return None
    names = [features] if isinstance(features, str) else list(features)
    if not names:
        raise DataError("features must name at least one column/key")
    if len(set(names)) != len(names):
        raise DataError(f"features lists a name twice: {names}")
    return names


def _check_file(path: str | Path, kind: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{kind} file {str(path)!r} does not exist")
    return path


def _require(path: Path, what: str, wanted: list[str], available: list[str]) -> None:
    missing = [name for name in wanted if name not in available]
    if missing:
        raise DataError(
            f"{path}: no {what} {', '.join(repr(m) for m in missing)}; "
            f"the file has: {', '.join(repr(a) for a in available)}"
        )


def _check_finite(path: Path, names: list[str], columns: list[np.ndarray]) -> None:
    pairs = zip(names, columns, strict=True)
    bad = [name for name, column in pairs if not np.isfinite(column).all()]
    if bad:
        raise DataError(f"{path}: missing or non-finite values in {', '.join(map(repr, bad))}")


def load_csv(
    path: str | Path,
    *,
    features: list[str] | str | None,
    label: str | None,
    client_key: str | None,
    task: str,
) -> Dataset:
    """Features default to every column except the label and the client key."""
    import pandas as pd  # slow import: only for csv

    path = _check_file(path, "csv")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot be read as CSV ({error})") from error
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    label = label or DEFAULT_CSV_LABEL
    names = _as_names(features)
    _require(path, "label column", [label], columns)
    if client_key is not None:
        _require(path, "client_key column", [client_key], columns)
    reserved = {label, client_key}
    if names is None:
        names = [c for c in columns if c not in reserved]
        if not names:
            raise DataError(f"{path}: no feature columns left besides {sorted(reserved - {None})}")
    _require(path, "feature column", names, columns)
    if reserved & set(names):
        raise DataError(f"{path}: {sorted(reserved & set(names))} is both a feature and label/key")
    is_numeric = pd.api.types.is_numeric_dtype  # bool columns count as numeric here
    non_numeric = [name for name in names if not is_numeric(frame[name])]
    if non_numeric:
        examples = ", ".join(f"{n!r} (e.g. {frame[n].iloc[0]!r})" for n in non_numeric)
        raise DataError(f"{path}: feature columns must be numeric; not numeric: {examples}")
    feature_columns = [frame[name].to_numpy(np.float64) for name in names]
    _check_finite(path, names, feature_columns)
    client_ids = None
    if client_key is not None:
        if frame[client_key].isna().any():
            raise DataError(f"{path}: client_key column {client_key!r} has missing values")
        client_ids = frame[client_key].to_numpy()
    encoded = encode_labels(frame[label].to_numpy(), task, f"{path} column {label!r}")
    return Dataset(
        name=path.stem,
        x=np.stack(feature_columns, axis=1).astype(np.float32),
        y=encoded.y,
        task=encoded.task,
        num_classes=encoded.num_classes,
        feature_names=names,
        client_ids=client_ids,
        class_names=encoded.class_names,
    )


def load_npz(
    path: str | Path,
    *,
    features: list[str] | str | None,
    label: str | None,
    client_key: str | None,
    task: str,
) -> Dataset:
    """Feature arrays are flattened per example; one 3-D/4-D array keeps its image shape.

    A list of feature keys is concatenated column-wise (each flattened per example).
    """
    path = _check_file(path, "npz")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: cannot be read as .npz ({error})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: is a single .npy array, not an .npz archive of named arrays")
    with archive:
        keys = list(archive.files)
        names = _as_names(features) or [DEFAULT_NPZ_FEATURES]
        label = label or DEFAULT_NPZ_LABEL
        _require(path, "feature key", names, keys)
        _require(path, "label key", [label], keys)
        if client_key is not None:
            _require(path, "client_key key", [client_key], keys)
        try:
            arrays = {key: archive[key] for key in {*names, label, client_key} - {None}}
        except ValueError as error:  # object arrays need pickle, which we never enable
            message = f"{path}: holds object arrays, which are never unpickled ({error})"
            raise DataError(message) from error
    count = len(arrays[label])
    wrong = {k: a.shape for k, a in arrays.items() if a.ndim == 0 or a.shape[0] != count}
    if wrong:
        raise DataError(f"{path}: every array needs {count} rows like {label!r}; got {wrong}")
    blocks, feature_names = [], []
    for name in names:
        array = arrays[name]
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise DataError(f"{path}: feature key {name!r} is not numeric ({array.dtype})")
        block = array.reshape(count, -1).astype(np.float32)
        _check_finite(path, [name], [block])
        blocks.append(block)
        feature_names += [f"{name}_{i}" for i in range(block.shape[1])]
    image_shape = None
    if len(names) == 1 and arrays[names[0]].ndim in (3, 4):
        image_shape = arrays[names[0]].shape[1:]
        image_shape = (*image_shape, 1) if len(image_shape) == 2 else tuple(image_shape)
    encoded = encode_labels(arrays[label], task, f"{path} key {label!r}")
    return Dataset(
        name=path.stem,
        x=np.concatenate(blocks, axis=1),
        y=encoded.y,
        task=encoded.task,
        num_classes=encoded.num_classes,
        image_shape=image_shape,
        feature_names=feature_names,
        client_ids=None if client_key is None else arrays[client_key],
        class_names=encoded.class_names,
    )
