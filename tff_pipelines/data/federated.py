"""`build_federated_data`: test split, standardisation and partition of one `Dataset`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tff_pipelines.data.dataset import CLASSIFICATION, Dataset
from tff_pipelines.data.errors import DataError
from tff_pipelines.data.partition import group_by_client
from tff_pipelines.data.partition import partition as assign_owners
from tff_pipelines.data.seeding import rng_for
from tff_pipelines.data.split import keep_every_group_in_train, train_test_split
from tff_pipelines.data.standardize import Standardizer

REGRESSION_HISTOGRAM_BINS = 10


@dataclass(frozen=True, eq=False)
class FederatedData:
    """Per-client training arrays plus a centralised test set, ready for the run loop.

    `standardizer` is None when features were left raw; otherwise the exported model must
    apply it to serving inputs. `target_standardizer` is set when regression targets were
    standardised for training: the clients' targets are standardised, the test targets are not,
    and evaluation and export map the model's output back to the original units with it.
    `partition` names the scheme that produced `clients`.
    """

    clients: list[tuple[np.ndarray, np.ndarray]]
    test: tuple[np.ndarray, np.ndarray]
    task: str
    num_classes: int
    image_shape: tuple[int, ...] | None
    input_dim: int
    name: str
    partition: str = "iid"
    standardizer: Standardizer | None = None
    target_standardizer: Standardizer | None = None

    @property
    def num_clients(self) -> int:
        return len(self.clients)

    def client_sizes(self) -> np.ndarray:
        return np.array([len(y) for _, y in self.clients], dtype=np.int64)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description for reports: sizes, and label histograms for train and test."""
        sizes = self.client_sizes()
        train_y = np.concatenate([y for _, y in self.clients])
        return {
            "name": self.name,
            "task": self.task,
            "partition": self.partition,
            "clients": self.num_clients,
            "train_size": int(sizes.sum()),
            "test_size": len(self.test[1]),
            "examples_per_client": {
                "min": int(sizes.min()),
                "median": float(np.median(sizes)),
                "max": int(sizes.max()),
            },
            "label_histogram": self._label_histogram(train_y, self.test[1]),
        }

    def _label_histogram(self, train_y: np.ndarray, test_y: np.ndarray) -> dict[str, list]:
        if self.task == CLASSIFICATION:
            return {
                "train": np.bincount(train_y, minlength=self.num_classes).tolist(),
                "test": np.bincount(test_y, minlength=self.num_classes).tolist(),
            }
        edges = np.histogram_bin_edges(train_y, bins=REGRESSION_HISTOGRAM_BINS)
        return {
            "edges": edges.tolist(),
            "train": np.histogram(train_y, bins=edges)[0].tolist(),
            "test": np.histogram(np.clip(test_y, edges[0], edges[-1]), bins=edges)[0].tolist(),
        }


def build_federated_data(
    dataset: Dataset,
    *,
    clients: int,
    partition: str = "iid",
    dirichlet_alpha: float = 0.5,
    shards_per_client: int = 2,
    test_fraction: float = 0.2,
    standardize: bool = True,
    standardize_target: bool = False,
    seed: int = 0,
) -> FederatedData:
    """Split off a test set, standardise with train statistics, partition train over clients.

    The test split is stratified for classification. For the natural partition, a client id
    whose examples all fell into the test split gets one of them back, so every id stays a
    client. Partitions that would leave a client empty move one example to it from the largest
    client (see `fill_empty_clients`). Standardisation statistics (of the features, and of a
    regression target with `standardize_target`) are computed centrally over all training
    examples: a simulation convenience that is NOT covered by the DP guarantee.
    """
    scheme = partition
    is_classification = dataset.task == CLASSIFICATION
    if standardize_target and is_classification:
        raise DataError(
            f"data.standardize_target: {dataset.name} is a classification dataset; only "
            "regression targets can be standardised"
        )
    train, test = train_test_split(
        dataset.y, test_fraction, rng_for(seed, "split"), stratify=is_classification
    )
    train_ids = None
    if scheme == "natural" and dataset.client_ids is not None:
        train, test = keep_every_group_in_train(train, test, dataset.client_ids)
        train_ids = dataset.client_ids[train]
    owner = assign_owners(
        dataset.y[train],
        clients,
        scheme,
        rng_for(seed, "partition"),
        client_ids=train_ids,
        dirichlet_alpha=dirichlet_alpha,
        shards_per_client=shards_per_client,
        is_classification=is_classification,
    )
    x_train, x_test = dataset.x[train], dataset.x[test]
    standardizer = Standardizer.fit(x_train) if standardize else None
    if standardizer is not None:
        x_train, x_test = standardizer(x_train), standardizer(x_test)
    y_train = dataset.y[train]
    target_standardizer = Standardizer.fit(y_train) if standardize_target else None
    if target_standardizer is not None:
        y_train = target_standardizer(y_train)
    client_indices = group_by_client(owner, clients)
    order = np.concatenate(client_indices)
    boundaries = np.cumsum([len(i) for i in client_indices])[:-1]
    return FederatedData(
        clients=list(
            zip(
                np.split(x_train[order], boundaries),
                np.split(y_train[order], boundaries),
                strict=True,
            )
        ),
        test=(x_test, dataset.y[test]),
        task=dataset.task,
        num_classes=dataset.num_classes,
        image_shape=dataset.image_shape,
        input_dim=dataset.input_dim,
        name=dataset.name,
        partition=scheme,
        standardizer=standardizer,
        target_standardizer=target_standardizer,
    )
