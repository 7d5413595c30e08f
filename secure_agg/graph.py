"""Who masks with whom: the public neighbour graph of SecAgg+ and the (k, t) a cohort can use.

Original SecAgg pairs every client with every other (complete graph): O(n) work and messages
per client, O(n^2) for the server. SecAgg+ (Bell et al., CCS 2020) pairs each client with k
neighbours only; with k = O(log n) on a random graph the sum stays hidden while the per-client
cost is O(log n). Here the graph is the Harary graph H(k, n) on a random ring order: every
client is paired with the k/2 nearest clients on either side, so it is exactly k-regular. The
graph is public, so a seeded NumPy generator is fine for it (and only for it).
"""

from __future__ import annotations

from collections.abc import Sequence, Set

import numpy as np

from secure_agg.parameters import threshold_problem


def neighbour_sets(clients: int, k: int | None, rng: np.random.Generator) -> list[frozenset[int]]:
    """Neighbours of each client: complete if k is None or k >= clients - 1, else H(k, n)."""
    if clients < 0:
        raise ValueError(f"clients must be non-negative, got {clients}")
    if k is None or k >= clients - 1:
        everyone = frozenset(range(clients))
        return [everyone - {i} for i in range(clients)]
    if k < 2 or k % 2:
        raise ValueError(
            f"k = {k} neighbours out of {clients - 1}: an incomplete graph needs an even k >= 2 "
            f"(k/2 neighbours on each side of the ring)"
        )
    ring = rng.permutation(clients)
    position = np.empty(clients, np.int64)
    position[ring] = np.arange(clients)
    offsets = [d for d in range(1, k // 2 + 1)] + [-d for d in range(1, k // 2 + 1)]
    return [
        frozenset(int(ring[(position[i] + d) % clients]) for d in offsets) for i in range(clients)
    ]


def effective_parameters(
    clients: int,
    neighbours: int | None,
    threshold: int,
    *,
    expected_clients: int | None = None,
) -> tuple[int, int]:
    """(k_eff, t_eff) for a cohort of `clients`, from the configured k and t.

    A cohort may be too small for k neighbours (Poisson sampling): then the graph is complete,
    k_eff = clients - 1, and t shrinks in proportion, never to k_eff / 2 or below. For
    `neighbours=None` (all) t refers to the neighbours of a cohort of `expected_clients`
    (default: this cohort) and scales to the actual cohort, up or down, by the same rule.

    t must exceed k/2: otherwise two disjoint halves of a neighbourhood could each rebuild one
    secret of the same client, and a server that told them different stories about who dropped
    would learn both the self-mask seed and the mask key of that client, hence its input.
    """
    if clients < 2:
        raise ValueError(f"secure aggregation needs at least 2 clients, got {clients}")
    if neighbours is None:
        reference = clients if expected_clients is None else expected_clients
        if reference < 2:
            raise ValueError(f"expected_clients must be at least 2, got {reference}")
        k, k_eff = reference - 1, clients - 1
    else:
        if expected_clients is not None:
            raise ValueError("expected_clients applies only to neighbours=None (all)")
        if neighbours < 1:
            raise ValueError(f"neighbours must be at least 1 or None (all), got {neighbours}")
        k, k_eff = neighbours, min(neighbours, clients - 1)
    problem = threshold_problem(k, threshold)
    if problem is not None:
        raise ValueError(f"threshold {threshold} {problem}")
    if k_eff == k:
        return k_eff, threshold
    return k_eff, max(k_eff // 2 + 1, -(-threshold * k_eff // k))  # ceil, in integers


def connected_components(
    neighbours: Sequence[frozenset[int]], members: Set[int]
) -> list[frozenset[int]]:
    """Connected components of the graph restricted to `members`.

    Pair masks between uploaders cancel only within a component, so unmasking reveals one sum per
    component: the total is all the server learns only if there is exactly one.
    """
    unvisited = set(members)
    components = []
    while unvisited:
        start = unvisited.pop()
        component, frontier = {start}, [start]
        while frontier:
            for j in neighbours[frontier.pop()] & unvisited:
                unvisited.discard(j)
                component.add(j)
                frontier.append(j)
        components.append(frozenset(component))
    return components
