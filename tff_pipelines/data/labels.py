"""Turning a raw label column into (task, encoded labels, class count) — shared by csv and npz."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tff_pipelines.data.dataset import CLASSIFICATION, REGRESSION
from tff_pipelines.data.errors import DataError

AUTO = "auto"
MAX_AUTO_CLASSES = 100
"""`task="auto"` treats an integer/string/bool label with at most this many values as classes."""


@dataclass(frozen=True)
class EncodedLabels:
    y: np.ndarray
    task: str
    num_classes: int
    class_names: list[str] | None


def encode_labels(raw: np.ndarray, task: str, where: str) -> EncodedLabels:
    """Encode `raw` for `task` ("auto", "classification" or "regression").

    auto: classification when the label is integer, bool or string with <= MAX_AUTO_CLASSES
    distinct values; otherwise regression (float labels are always regression under auto, even
    if every value happens to be whole — say task="classification" to force classes). Classes
    are the distinct values in sorted order, mapped to 0..k-1; `class_names` keeps the originals.
    `where` (file and column) is put into every error message.
    """
    if task not in (AUTO, CLASSIFICATION, REGRESSION):
        raise DataError(f"task must be 'auto', 'classification' or 'regression', got {task!r}")
    raw = np.asarray(raw)
    if raw.ndim != 1:
        raise DataError(f"{where}: label must be one value per example, got shape {raw.shape}")
    kind = _label_kind(raw, where)
    if task == AUTO:
        task = _infer_task(raw, kind, where)
    if task == REGRESSION:
        if kind == "string":
            raise DataError(f"{where}: regression needs a numeric label, found strings")
        y = raw.astype(np.float32)
        if not np.all(np.isfinite(y)):
            raise DataError(f"{where}: label has missing or non-finite values")
        return EncodedLabels(y=y, task=REGRESSION, num_classes=0, class_names=None)
    return _encode_classes(raw, kind, where)


def _label_kind(raw: np.ndarray, where: str) -> str:
    if raw.dtype == bool or np.issubdtype(raw.dtype, np.integer):
        return "integer"
    if np.issubdtype(raw.dtype, np.floating):
        return "float"
    if raw.dtype.kind in "USO":
        if raw.dtype.kind == "O" and not all(isinstance(v, str) for v in raw):
            raise DataError(f"{where}: label has missing values or mixes strings with other types")
        return "string"
    raise DataError(f"{where}: unsupported label dtype {raw.dtype}")


def _infer_task(raw: np.ndarray, kind: str, where: str) -> str:
    if kind == "float":
        return REGRESSION
    distinct = len(np.unique(raw))
    if distinct <= MAX_AUTO_CLASSES:
        return CLASSIFICATION
    if kind == "string":
        raise DataError(
            f"{where}: string label has {distinct} distinct values (> {MAX_AUTO_CLASSES}); "
            "set task='classification' explicitly if that many classes is intended"
        )
    return REGRESSION


def _encode_classes(raw: np.ndarray, kind: str, where: str) -> EncodedLabels:
    if kind == "float":
        if not np.all(np.isfinite(raw)):
            raise DataError(f"{where}: label has missing or non-finite values")
        if not np.all(raw == np.round(raw)):
            raise DataError(f"{where}: classification needs whole-number labels, found fractions")
        raw = raw.astype(np.int64)
    if kind == "string":
        raw = raw.astype(str)
    classes, y = np.unique(raw, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{where}: classification needs >= 2 distinct labels, found {len(classes)}")
    return EncodedLabels(
        y=y.astype(np.int32),
        task=CLASSIFICATION,
        num_classes=len(classes),
        class_names=[str(c) for c in classes.tolist()],
    )
