"""`load_source`: one entry point from a spec's data section to a `Dataset`."""

from __future__ import annotations

import dataclasses

import numpy as np

from tff_pipelines.data.builtin import BUILTIN_SOURCES
from tff_pipelines.data.dataset import TASKS, Dataset
from tff_pipelines.data.errors import DataError
from tff_pipelines.data.files import load_csv, load_npz
from tff_pipelines.data.labels import AUTO
from tff_pipelines.data.seeding import rng_for
from tff_pipelines.data.synthetic import synthetic

FILE_SOURCES = {"csv": load_csv, "npz": load_npz}
SOURCES = (*BUILTIN_SOURCES, "synthetic", *FILE_SOURCES)
SYNTHETIC_DEFAULT_EXAMPLES = 10_000


def load_source(
    source: str,
    *,
    path: str | None = None,
    features: list[str] | str | None = None,
    label: str | None = None,
    client_key: str | None = None,
    task: str = AUTO,
    examples: int | None = None,
    dim: int = 20,
    classes: int = 2,
    seed: int = 0,
) -> Dataset:
    """Load `source` (a built-in name, "synthetic", "csv" or "npz") as a `Dataset`.

    `examples` is the row count for synthetic (default SYNTHETIC_DEFAULT_EXAMPLES) and a cap
    for every other source: a seeded uniform subsample that keeps the original row order.
    File defaults: csv label column "label", features every other column but `client_key`;
    npz features key "x", label key "y". Options that do not apply to the source are rejected
    rather than silently ignored.
    """
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; choose one of {', '.join(SOURCES)}")
    if task not in (AUTO, *TASKS):
        raise DataError(f"task must be one of {(AUTO, *TASKS)}, got {task!r}")
    if examples is not None and (isinstance(examples, bool) or examples < 1):
        raise DataError(f"examples must be a positive integer, got {examples!r}")
    if source in FILE_SOURCES:
        if path is None:
            raise DataError(f"data source {source!r} needs a path")
        dataset = FILE_SOURCES[source](
            path, features=features, label=label, client_key=client_key, task=task
        )
        return _subsample(dataset, examples, seed)
    given = {"path": path, "features": features, "label": label, "client_key": client_key}
    unused = [name for name, value in given.items() if value is not None]
    if unused:
        raise DataError(f"{', '.join(unused)} only apply to csv/npz sources, not {source!r}")
    if source == "synthetic":
        count = SYNTHETIC_DEFAULT_EXAMPLES if examples is None else examples
        dataset = synthetic(examples=count, dim=dim, classes=classes, seed=seed)
    else:
        dataset = _subsample(BUILTIN_SOURCES[source](), examples, seed)
    if task not in (AUTO, dataset.task):
        raise DataError(f"{source!r} is a {dataset.task} dataset; task {task!r} does not fit")
    return dataset


def _subsample(dataset: Dataset, examples: int | None, seed: int) -> Dataset:
    if examples is None or examples >= dataset.num_examples:
        return dataset
    rng = rng_for(seed, "subsample")
    keep = np.sort(rng.choice(dataset.num_examples, size=examples, replace=False))
    return dataclasses.replace(
        dataset,
        x=dataset.x[keep],
        y=dataset.y[keep],
        client_ids=None if dataset.client_ids is None else dataset.client_ids[keep],
    )
