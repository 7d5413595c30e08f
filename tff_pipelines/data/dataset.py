"""`Dataset`: one centralised table of examples, before any federated split."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tff_pipelines.data.errors import DataError

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Examples as a flat float32 matrix plus labels; checked on construction.

    `x` is always 2-D so every consumer handles one layout; models that want images reshape
    with `image_shape`. `client_ids` (one per example) is what a `natural` partition groups by.
    `class_names[k]` is the original label value encoded as class `k` (None for regression).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    task: str
    num_classes: int
    image_shape: tuple[int, ...] | None = None
    feature_names: list[str] = field(default_factory=list)
    client_ids: np.ndarray | None = None
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise DataError(f"{self.name}: task must be one of {TASKS}, got {self.task!r}")
        if self.x.ndim != 2 or self.x.dtype != np.float32:
            raise DataError(
                f"{self.name}: x must be float32 [n, f], got {self.x.dtype} {self.x.shape}"
            )
        n, num_features = self.x.shape
        if self.y.shape != (n,):
            raise DataError(f"{self.name}: y must have shape ({n},), got {self.y.shape}")
        if self.task == CLASSIFICATION:
            self._check_classification_labels()
        else:
            if self.y.dtype != np.float32 or self.num_classes != 0:
                raise DataError(f"{self.name}: regression needs float32 y and num_classes 0")
        if self.feature_names and len(self.feature_names) != num_features:
            raise DataError(
                f"{self.name}: {len(self.feature_names)} feature names for {num_features} features"
            )
        if self.image_shape is not None and math.prod(self.image_shape) != num_features:
            raise DataError(
                f"{self.name}: image_shape {self.image_shape} does not hold {num_features} features"
            )
        if self.client_ids is not None and self.client_ids.shape != (n,):
            raise DataError(f"{self.name}: client_ids must have shape ({n},)")

    def _check_classification_labels(self) -> None:
        if self.y.dtype != np.int32:
            raise DataError(f"{self.name}: classification needs int32 y, got {self.y.dtype}")
        if self.num_classes < 2:
            raise DataError(f"{self.name}: classification needs >= 2 classes")
        if self.y.size and (self.y.min() < 0 or self.y.max() >= self.num_classes):
            raise DataError(f"{self.name}: labels must lie in [0, {self.num_classes})")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise DataError(
                f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes"
            )

    @property
    def num_examples(self) -> int:
        return int(self.x.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.x.shape[1])
