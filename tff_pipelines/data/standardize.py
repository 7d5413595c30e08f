"""Standardisation of features (and of regression targets) with training statistics only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Standardizer:
    """x -> (x - mean) / scale per feature; scale is the train std, or 1 for a constant feature.

    Kept so the exported model can apply the same transform to raw serving inputs.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        mean = x.mean(axis=0, dtype=np.float64)
        std = x.std(axis=0, dtype=np.float64)
        constant = x.max(axis=0) == x.min(axis=0)  # exact, unlike a rounded std of 1e-17
        scale = np.where(constant | (std == 0), 1.0, std)
        return cls(mean=mean.astype(np.float32), scale=scale.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale).astype(np.float32)

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Back to the original units: how a model trained on standardised targets is read."""
        return (z * self.scale + self.mean).astype(np.float32)
