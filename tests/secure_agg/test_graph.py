import numpy as np
import pytest

from secure_agg.graph import connected_components, effective_parameters, neighbour_sets


@pytest.mark.parametrize(("clients", "k"), [(5, 2), (10, 4), (11, 8), (40, 6), (100, 14), (9, 6)])
def test_harary_graph_is_k_regular_symmetric_and_loop_free(clients, k):
    graph = neighbour_sets(clients, k, np.random.default_rng(clients * k))
    assert len(graph) == clients
    for i, nbrs in enumerate(graph):
        assert len(nbrs) == k
        assert i not in nbrs
        assert all(0 <= j < clients and i in graph[j] for j in nbrs)
    assert len(connected_components(graph, set(range(clients)))) == 1


def test_graph_is_a_ring_with_k_over_2_neighbours_on_each_side():
    clients = 12
    graph = neighbour_sets(clients, 4, np.random.default_rng(3))
    # Recover the ring order: on H(4, n), clients adjacent on the ring have 2 common neighbours,
    # clients two apart have 1.
    order = [0]
    while len(order) < clients:
        current = order[-1]
        order.append(
            next(
                j
                for j in sorted(graph[current])
                if j not in order and len(graph[current] & graph[j]) == 2
            )
        )
    for p, client in enumerate(order):
        assert graph[client] == {order[(p + d) % clients] for d in (-2, -1, 1, 2)}


def test_graph_depends_on_the_public_seed_only():
    a = neighbour_sets(30, 6, np.random.default_rng(7))
    b = neighbour_sets(30, 6, np.random.default_rng(7))
    c = neighbour_sets(30, 6, np.random.default_rng(8))
    assert a == b
    assert a != c


@pytest.mark.parametrize(("clients", "k"), [(6, None), (6, 5), (6, 8), (7, 6), (2, 1), (1, None)])
def test_complete_when_k_is_none_or_at_least_clients_minus_one(clients, k):
    graph = neighbour_sets(clients, k, np.random.default_rng(0))
    assert graph == [frozenset(range(clients)) - {i} for i in range(clients)]


@pytest.mark.parametrize(("clients", "k"), [(10, 3), (10, 7), (20, 1), (10, 0)])
def test_odd_or_tiny_k_with_an_incomplete_graph_is_rejected(clients, k):
    with pytest.raises(ValueError, match="even k >= 2"):
        neighbour_sets(clients, k, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("clients", "neighbours", "threshold", "expected"),
    [
        (10, 4, 3, (4, 3)),  # room for k: unchanged
        (100, 14, 8, (14, 8)),
        (5, 8, 5, (4, 3)),  # complete graph: max(4 // 2 + 1, ceil(5 * 4 / 8))
        (5, 8, 8, (4, 4)),  # t = k stays "all neighbours"
        (3, 8, 5, (2, 2)),
        (2, 8, 5, (1, 1)),
        (9, 8, 6, (8, 6)),  # k = clients - 1 exactly: unchanged
        (10, None, 6, (9, 6)),  # all, t relative to this cohort
        (10, 9, 5, (9, 5)),  # odd k is fine when it makes the graph complete
    ],
)
def test_effective_parameters(clients, neighbours, threshold, expected):
    assert effective_parameters(clients, neighbours, threshold) == expected


@pytest.mark.parametrize(
    ("clients", "expected"),
    [(21, (20, 11)), (11, (10, 6)), (3, (2, 2)), (41, (40, 22))],
)
def test_all_neighbours_scales_t_from_the_expected_cohort(clients, expected):
    # t = 11 of the 20 neighbours of an expected cohort of 21, in smaller and larger cohorts.
    assert effective_parameters(clients, None, 11, expected_clients=21) == expected


def test_effective_threshold_always_a_majority_of_the_neighbourhood():
    for clients in range(2, 60):
        for k in (2, 4, 8, 16, 32, None):
            reference = k if k is not None else 30
            for t in range(reference // 2 + 1, reference + 1):
                expected = 31 if k is None else None
                k_eff, t_eff = effective_parameters(clients, k, t, expected_clients=expected)
                assert k_eff == (clients - 1 if k is None else min(k, clients - 1))
                assert k_eff // 2 < t_eff <= k_eff


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((10, 4, 2), {}, "must exceed half"),  # t = k/2 is not a majority
        ((10, 4, 5), {}, "cannot exceed"),
        ((10, None, 4), {}, "must exceed half"),  # k = 9: needs t >= 5
        ((1, 4, 3), {}, "at least 2 clients"),
        ((0, None, 1), {}, "at least 2 clients"),
        ((10, 0, 1), {}, "neighbours must be at least 1"),
        ((10, 4, 3), {"expected_clients": 20}, "only to neighbours=None"),
        ((10, None, 1), {"expected_clients": 1}, "expected_clients"),
    ],
)
def test_effective_parameters_rejects(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        effective_parameters(*args, **kwargs)


def test_connected_components_of_a_restricted_graph():
    ring = [frozenset({(i - 1) % 8, (i + 1) % 8}) for i in range(8)]
    assert connected_components(ring, set(range(8))) == [frozenset(range(8))]
    parts = connected_components(ring, {0, 1, 2, 4, 5, 7})
    assert sorted(map(sorted, parts)) == [[0, 1, 2, 7], [4, 5]]
    assert connected_components(ring, set()) == []
    assert connected_components(ring, {3}) == [frozenset({3})]
