"""SecAgg+: the modular sum of client vectors, with the server learning nothing else.

Bonawitz et al., CCS 2017 ("Practical Secure Aggregation for Privacy-Preserving Machine
Learning", Fig. 4), with the sparse neighbour graph of Bell et al., CCS 2020 (SecAgg+). All
parties run in this process, but each uses only the bytes it was sent, and every message is
counted. Rounds:

    0. AdvertiseKeys        each client sends two X25519 public keys (c: sealing, s: masking);
                            the server gives each client its neighbours' keys.
    1. ShareKeys            each client Shamir-shares its self-mask seed b_i and its mask key
                            s_sk_i (threshold t) among its neighbours, sealed per holder.
    2. MaskedInputCollection  y_i = x_i + PRG(b_i) + sum_j +-PRG(s_ij) mod M, bit-packed.
    3. Unmasking            survivors reveal b-shares of neighbours that uploaded and s_sk-shares
                            of neighbours that did not; the server rebuilds those secrets,
                            removes every mask that does not cancel, and has sum_i x_i mod M.

Threat model: honest-but-curious server and clients. Bonawitz's ConsistencyCheck round (against
an *active* server telling clients different dropout stories) is skipped. Requiring t > k/2
(`graph.effective_parameters`) still means a client's neighbours, each answering once with one
kind of share, can never hand over t of both kinds; but a lying server colluding with clients is
outside what this code defends against.

Beyond the paper, the server aborts before any share is revealed when the uploaders split into
groups that share no pair masks (possible on a sparse graph under heavy dropout): unmasking
would then reveal each group's sum, not just the total.

Cohorts of 0 or 1 abort (`SecAggAbort`): the sum of one input is that input, and an empty
cohort has no dimension and nothing to sum; the caller skips the round either way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from secure_agg.client import Client
from secure_agg.errors import SecAggAbort
from secure_agg.graph import effective_parameters, neighbour_sets
from secure_agg.messages import SERVER, Message
from secure_agg.modular import modulus
from secure_agg.packing import packed_size
from secure_agg.server import Server

__all__ = [
    "Dropouts",
    "ProtocolCost",
    "SecAggAbort",
    "SecureSumResult",
    "secure_sum",
]

SESSION_BYTES = 16
_T = TypeVar("_T")


def _client_set(indices: Iterable[int]) -> frozenset[int]:
    return frozenset(int(i) for i in indices)


@dataclass(frozen=True)
class Dropouts:
    """Clients that go silent before a step; each client drops at most once.

    A client that drops before unmasking still had its input summed: it only sends no shares.
    """

    before_share_keys: frozenset[int] = field(default_factory=frozenset)  # step 1
    before_upload: frozenset[int] = field(default_factory=frozenset)  # step 2
    before_unmasking: frozenset[int] = field(default_factory=frozenset)  # step 3

    def __post_init__(self) -> None:
        for name in ("before_share_keys", "before_upload", "before_unmasking"):
            object.__setattr__(self, name, _client_set(getattr(self, name)))
        stages = (self.before_share_keys, self.before_upload, self.before_unmasking)
        if sum(map(len, stages)) != len(frozenset().union(*stages)):
            raise ValueError("a client can drop only once; the dropout sets overlap")

    def alive(self, clients: int) -> tuple[list[int], list[int], list[int]]:
        """Clients still present at steps 1, 2 and 3."""
        everyone = set().union(self.before_share_keys, self.before_upload, self.before_unmasking)
        if any(not 0 <= i < clients for i in everyone):
            raise ValueError(f"dropout indices must lie in [0, {clients})")
        step1 = [i for i in range(clients) if i not in self.before_share_keys]
        step2 = [i for i in step1 if i not in self.before_upload]
        step3 = [i for i in step2 if i not in self.before_unmasking]
        return step1, step2, step3


@dataclass(frozen=True)
class ProtocolCost:
    """What the protocol cost; bytes are means and maxima over every client of the cohort."""

    upload_bytes_mean: float
    upload_bytes_max: int
    download_bytes_mean: float
    download_bytes_max: int
    expansion: float  # mean bytes uploaded per uploader / ceil(dim * bits / 8)
    client_seconds: float  # compute per client, summed over its steps, mean over the cohort
    server_seconds: float


@dataclass(frozen=True)
class SecureSumResult:
    total: np.ndarray  # uint64, values in [0, 2**bits)
    uploaded: tuple[int, ...]  # sorted: whose inputs are in the total
    neighbours: int  # k actually used
    threshold: int  # t actually used
    cost: ProtocolCost
    transcript: tuple[Message, ...] | None  # every message the server sent or received


def secure_sum(
    inputs: Sequence[np.ndarray],
    *,
    bits: int,
    neighbours: int | None,
    threshold: int,
    dropouts: Dropouts = Dropouts(),
    min_survivors: int = 1,
    graph_rng: np.random.Generator | None = None,
    keep_transcript: bool = False,
    expected_clients: int | None = None,
) -> SecureSumResult:
    """Sum of the inputs of clients that uploaded, mod 2**bits, by running SecAgg+ on them.

    inputs: one vector per client, integers in [0, 2**bits), all the same length; read one at a
        time, when that client uploads (a lazy Sequence keeps memory at O(dim)).
    neighbours, threshold: k (even, or None for all) and t as configured; adapted to the cohort by
        `effective_parameters` (`expected_clients` is the cohort t refers to when k is None).
    min_survivors: abort unless at least this many clients upload.
    graph_rng: the public randomness of the neighbour graph (fresh OS entropy if None).

    Raises SecAggAbort when the protocol cannot finish safely; never returns a partial sum.
    """
    modulus(bits)
    if min_survivors < 1:
        raise ValueError(f"min_survivors must be at least 1, got {min_survivors}")
    clients = len(inputs)
    alive1, alive2, alive3 = dropouts.alive(clients)
    if clients < 2:
        raise SecAggAbort(f"a cohort of {clients} clients cannot hide an input; need at least 2")
    if clients < min_survivors:
        raise SecAggAbort(f"a cohort of {clients} clients is below min_survivors {min_survivors}")
    k, t = effective_parameters(clients, neighbours, threshold, expected_clients=expected_clients)
    dimension = _dimension(inputs[0])
    graph = neighbour_sets(clients, k, graph_rng or np.random.default_rng())
    session = os.urandom(SESSION_BYTES)

    network = _Network(clients, keep_transcript)
    clock = _Clock(clients)
    server = Server(
        session=session,
        graph=graph,
        threshold=t,
        bits=bits,
        dimension=dimension,
        min_survivors=min_survivors,
    )
    parties = [
        Client(
            i,
            session=session,
            neighbours=graph[i],
            threshold=t,
            bits=bits,
            dimension=dimension,
        )
        for i in range(clients)
    ]

    for i in range(clients):
        keys = clock.client(i, parties[i].advertise_keys)
        clock.server(server.receive_public_keys, i, network.up(0, i, keys))

    directories = clock.server(server.key_directories)
    for i in alive1:
        reply = clock.client(i, parties[i].share_keys, network.down(1, i, directories[i]))
        clock.server(server.receive_sealed_shares, i, network.up(1, i, reply))

    forwarded = clock.server(server.forwarded_shares)
    for i in alive2:
        x = inputs[i]  # fetched outside the clock: producing the input is not protocol work
        upload = clock.client(i, parties[i].masked_input, network.down(2, i, forwarded[i]), x)
        del x
        clock.server(server.receive_masked_input, i, network.up(2, i, upload))
        del upload

    requests = clock.server(server.unmasking_requests)
    for i in alive3:
        reply = clock.client(i, parties[i].unmasking_shares, network.down(3, i, requests[i]))
        clock.server(server.receive_revealed_shares, i, network.up(3, i, reply))

    total = clock.server(server.result)
    uploaders = tuple(alive2)
    cost = ProtocolCost(
        upload_bytes_mean=float(network.uploaded.mean()),
        upload_bytes_max=int(network.uploaded.max()),
        download_bytes_mean=float(network.downloaded.mean()),
        download_bytes_max=int(network.downloaded.max()),
        expansion=float(network.uploaded[list(uploaders)].mean()) / packed_size(dimension, bits)
        if dimension
        else float("nan"),
        client_seconds=float(clock.client_seconds.mean()),
        server_seconds=clock.server_seconds,
    )
    transcript = tuple(network.transcript) if network.transcript is not None else None
    return SecureSumResult(total, uploaders, k, t, cost, transcript)


class _Network:
    """Carries bytes between the parties, counting them (and recording them, if asked)."""

    def __init__(self, clients: int, keep: bool) -> None:
        self.uploaded = np.zeros(clients, np.int64)
        self.downloaded = np.zeros(clients, np.int64)
        self.transcript: list[Message] | None = [] if keep else None

    def up(self, step: int, sender: int, payload: bytes) -> bytes:
        return self._carry(Message(step, sender, SERVER, bytes(payload)), self.uploaded, sender)

    def down(self, step: int, receiver: int, payload: bytes) -> bytes:
        return self._carry(
            Message(step, SERVER, receiver, bytes(payload)), self.downloaded, receiver
        )

    def _carry(self, message: Message, counter: np.ndarray, client: int) -> bytes:
        counter[client] += len(message.payload)
        if self.transcript is not None:
            self.transcript.append(message)
        return message.payload


class _Clock:
    """Compute time per party: each client's steps, and the server's."""

    def __init__(self, clients: int) -> None:
        self.client_seconds = np.zeros(clients)
        self.server_seconds = 0.0

    def client(self, index: int, step: Callable[..., _T], *args: object) -> _T:
        start = time.perf_counter()
        try:
            return step(*args)
        finally:
            self.client_seconds[index] += time.perf_counter() - start

    def server(self, step: Callable[..., _T], *args: object) -> _T:
        start = time.perf_counter()
        try:
            return step(*args)
        finally:
            self.server_seconds += time.perf_counter() - start


def _dimension(first: np.ndarray) -> int:
    shape = np.shape(first)
    if len(shape) != 1:
        raise ValueError(f"each input must be a vector, got shape {shape}")
    return shape[0]
