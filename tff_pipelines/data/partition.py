"""Assigning training examples to clients.

Every scheme returns an *owner* array (client index per example), so "each example belongs to
exactly one client" holds by construction; `group_by_client` turns owners into index lists.
"""

from __future__ import annotations

import heapq

import numpy as np

from tff_pipelines.data.errors import DataError

PARTITIONS = ("iid", "dirichlet", "shards", "natural")


def _check_counts(num_examples: int, clients: int) -> None:
    if isinstance(clients, bool) or not isinstance(clients, int | np.integer) or clients < 1:
        raise DataError(f"clients must be a positive integer, got {clients!r}")
    if num_examples < clients:
        raise DataError(
            f"{num_examples} training examples cannot give each of {clients} clients one example"
        )


def iid_partition(num_examples: int, clients: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffle, then deal out contiguous blocks whose sizes differ by at most one."""
    _check_counts(num_examples, clients)
    sizes = np.full(clients, num_examples // clients)
    sizes[: num_examples % clients] += 1
    owner = np.empty(num_examples, dtype=np.int64)
    owner[rng.permutation(num_examples)] = np.repeat(np.arange(clients), sizes)
    return owner


def dirichlet_partition(
    labels: np.ndarray, clients: int, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """Label skew: each class is split over clients in proportions drawn from Dir(alpha).

    Small alpha concentrates each class on few clients; large alpha approaches iid. Clients
    left empty are then topped up by `fill_empty_clients`.
    """
    _check_counts(len(labels), clients)
    if not alpha > 0:
        raise DataError(f"dirichlet_alpha must be > 0, got {alpha!r}")
    owner = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        proportions = rng.dirichlet(np.full(clients, float(alpha)))
        cuts = np.round(np.cumsum(proportions)[:-1] * len(members)).astype(np.int64)
        counts = np.diff(np.concatenate([[0], np.minimum(cuts, len(members)), [len(members)]]))
        owner[members] = np.repeat(np.arange(clients), counts)
    return fill_empty_clients(owner, clients)


def shard_partition(
    labels: np.ndarray, clients: int, shards_per_client: int, rng: np.random.Generator
) -> np.ndarray:
    """Sort by label, cut into clients * shards_per_client equal shards, deal shards at random.

    Ties in the label are broken randomly, so a shard is a random sample of its label(s).
    """
    _check_counts(len(labels), clients)
    if isinstance(shards_per_client, bool) or shards_per_client < 1:
        raise DataError(f"shards_per_client must be a positive integer, got {shards_per_client!r}")
    shuffled = rng.permutation(len(labels))
    by_label = shuffled[np.argsort(labels[shuffled], kind="stable")]
    num_shards = clients * shards_per_client
    shard_sizes = np.full(num_shards, len(labels) // num_shards)
    shard_sizes[: len(labels) % num_shards] += 1
    shard_owner = rng.permutation(num_shards) % clients
    owner = np.empty(len(labels), dtype=np.int64)
    owner[by_label] = np.repeat(shard_owner, shard_sizes)
    return fill_empty_clients(owner, clients)


def natural_partition(client_ids: np.ndarray | None, clients: int) -> np.ndarray:
    """One client per distinct id, numbered in sorted id order."""
    if client_ids is None:
        raise DataError("partition 'natural' needs per-example client ids (set client_key)")
    distinct, owner = np.unique(client_ids, return_inverse=True)
    if len(distinct) != clients:
        raise DataError(
            f"partition 'natural' found {len(distinct)} distinct client ids but clients={clients}; "
            f"set clients: {len(distinct)}"
        )
    _check_counts(len(client_ids), clients)
    return owner.astype(np.int64)


def fill_empty_clients(owner: np.ndarray, clients: int) -> np.ndarray:
    """Give each empty client one example taken from the currently largest client.

    Deterministic: the donor is the largest client (lowest index on ties) and it gives its
    last-listed example; empty clients are filled in index order. Needs len(owner) >= clients.
    """
    sizes = np.bincount(owner, minlength=clients)
    empty = np.flatnonzero(sizes == 0)
    if empty.size == 0:
        return owner
    _check_counts(len(owner), clients)
    owner = owner.copy()
    order = np.argsort(owner, kind="stable")
    ends = np.cumsum(sizes)
    heap = [(-int(size), int(client)) for client, size in enumerate(sizes) if size > 1]
    heapq.heapify(heap)
    for receiver in empty:
        negative_size, donor = heapq.heappop(heap)
        ends[donor] -= 1
        owner[order[ends[donor]]] = receiver
        if -negative_size - 1 > 1:
            heapq.heappush(heap, (negative_size + 1, donor))
    return owner


def group_by_client(owner: np.ndarray, clients: int) -> list[np.ndarray]:
    """Example indices per client, each in increasing order."""
    order = np.argsort(owner, kind="stable")
    return np.split(order, np.cumsum(np.bincount(owner, minlength=clients))[:-1])


def partition(
    labels: np.ndarray,
    clients: int,
    scheme: str,
    rng: np.random.Generator,
    *,
    client_ids: np.ndarray | None = None,
    dirichlet_alpha: float = 0.5,
    shards_per_client: int = 2,
    is_classification: bool = True,
) -> np.ndarray:
    """Owner array for `scheme`; dirichlet needs class labels, natural needs client ids."""
    if scheme == "iid":
        return iid_partition(len(labels), clients, rng)
    if scheme == "dirichlet":
        if not is_classification:
            raise DataError("partition 'dirichlet' skews class labels: it needs classification")
        return dirichlet_partition(labels, clients, dirichlet_alpha, rng)
    if scheme == "shards":
        return shard_partition(labels, clients, shards_per_client, rng)
    if scheme == "natural":
        return natural_partition(client_ids, clients)
    raise DataError(f"unknown partition {scheme!r}; choose one of {', '.join(PARTITIONS)}")
