"""A synthetic task with a known teacher, so a model can actually learn it at any size."""

from __future__ import annotations

import numpy as np

from tff_pipelines.data.dataset import CLASSIFICATION, REGRESSION, Dataset
from tff_pipelines.data.errors import DataError
from tff_pipelines.data.seeding import rng_for

LOGIT_SCALE = 5.0
"""Std of the teacher's logits; Bayes accuracy is then ~0.92 for 2 classes, ~0.78 for 10."""
REGRESSION_NOISE = 0.5
"""Noise standard deviation against a signal of variance ~1: R^2 of the teacher is about 0.8."""


def synthetic(*, examples: int, dim: int, classes: int, seed: int) -> Dataset:
    """`examples` rows of N(0, I) features labelled by a random linear teacher plus noise.

    classes >= 2: labels are drawn from softmax(x @ W + b) (Gumbel-max), so the best possible
    accuracy is high but below 1. classes == 0: y = x @ w + b + N(0, REGRESSION_NOISE^2).
    """
    if examples < 1 or dim < 1:
        raise DataError(f"synthetic needs examples >= 1 and dim >= 1, got {examples}, {dim}")
    if classes == 1 or classes < 0:
        raise DataError(f"synthetic classes must be 0 (regression) or >= 2, got {classes}")
    rng = rng_for(seed, "synthetic")
    x = rng.standard_normal((examples, dim), dtype=np.float32)
    names = [f"x{i}" for i in range(dim)]
    if classes == 0:
        weights = rng.standard_normal(dim, dtype=np.float32) / np.float32(np.sqrt(dim))
        bias = rng.standard_normal(dtype=np.float32)
        noise = rng.standard_normal(examples, dtype=np.float32) * np.float32(REGRESSION_NOISE)
        return Dataset(
            name="synthetic",
            x=x,
            y=(x @ weights + bias + noise).astype(np.float32),
            task=REGRESSION,
            num_classes=0,
            feature_names=names,
        )
    scale = np.float32(LOGIT_SCALE / np.sqrt(dim))
    weights = rng.standard_normal((dim, classes), dtype=np.float32) * scale
    bias = rng.standard_normal(classes, dtype=np.float32)
    logits = x @ weights + bias
    logits += rng.gumbel(size=logits.shape).astype(np.float32)
    return Dataset(
        name="synthetic",
        x=x,
        y=np.argmax(logits, axis=1).astype(np.int32),
        task=CLASSIFICATION,
        num_classes=classes,
        feature_names=names,
        class_names=[str(k) for k in range(classes)],
    )
