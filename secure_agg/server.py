"""The SecAgg+ server: routes sealed shares, sums masked uploads, unmasks only the total.

Honest but curious: it follows the protocol and sees every message, but can decrypt nothing
addressed to a client. It keeps one running sum of uploads (O(dim) memory for any cohort) and,
before asking for any share, checks that unmasking can succeed and would reveal only the total:
enough uploads (`min_survivors`), enough live neighbours around every secret it must rebuild,
and uploaders that form one connected group on the neighbour graph. (With SecAgg+'s sparse
graph, two groups of uploaders that share no pair masks would each have their sum revealed.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from secure_agg import crypto, messages, shamir
from secure_agg.errors import SecAggAbort
from secure_agg.graph import connected_components
from secure_agg.masking import add_mask, pair_seed, pair_sign
from secure_agg.messages import Secret
from secure_agg.modular import modulus
from secure_agg.packing import unpack, word_dtype
from secure_agg.prg import SEED_BYTES


class Server:
    def __init__(
        self,
        *,
        session: bytes,
        graph: Sequence[frozenset[int]],
        threshold: int,
        bits: int,
        dimension: int,
        min_survivors: int,
    ) -> None:
        self._session = session
        self._graph = graph
        self._threshold = threshold
        self._bits = bits
        self._dimension = dimension
        self._min_survivors = min_survivors
        self._keys: dict[int, tuple[bytes, bytes]] = {}  # advertised: (c_pk, s_pk)
        self._mailbox: dict[int, dict[int, bytes]] = {}  # receiver -> sender -> sealed pair
        self._sharers: set[int] = set()  # sent their shares (alive after step 1)
        self._uploaders: set[int] = set()
        self._sum = np.zeros(dimension, word_dtype(bits))
        self._responders: set[int] = set()
        self._revealed: dict[Secret, dict[int, dict[int, int]]] = {s: {} for s in Secret}

    # Step 0 -> 1
    def receive_public_keys(self, sender: int, payload: bytes) -> None:
        self._check_new(sender, self._keys, "public keys")
        self._keys[sender] = messages.decode_public_keys(payload)

    def key_directories(self) -> dict[int, bytes]:
        """For each client that advertised: its advertised neighbours' public keys."""
        return {
            i: messages.encode_key_directory({j: self._keys[j] for j in self._live_neighbours(i)})
            for i in self._keys
        }

    # Step 1 -> 2
    def receive_sealed_shares(self, sender: int, payload: bytes) -> None:
        self._check_new(sender, self._sharers, "shares")
        if sender not in self._keys:
            raise SecAggAbort(f"client {sender} sent shares without advertising keys")
        sealed = messages.decode_sealed(payload)
        expected = self._live_neighbours(sender)
        if set(sealed) != expected:
            raise SecAggAbort(
                f"client {sender} sealed shares for {sorted(sealed)}, expected its advertised "
                f"neighbours {sorted(expected)}"
            )
        for receiver, item in sealed.items():
            self._mailbox.setdefault(receiver, {})[sender] = item
        self._sharers.add(sender)

    def forwarded_shares(self) -> dict[int, bytes]:
        """For each client that shared: the sealed shares its neighbours sent it."""
        return {i: messages.encode_sealed(self._mailbox.get(i, {})) for i in self._sharers}

    # Step 2 -> 3
    def receive_masked_input(self, sender: int, payload: bytes) -> None:
        self._check_new(sender, self._uploaders, "a masked input")
        if sender not in self._sharers:
            raise SecAggAbort(f"client {sender} uploaded without sharing its keys")
        self._sum += unpack(payload, self._dimension, self._bits)  # wraps mod 2**width
        self._uploaders.add(sender)

    def unmasking_requests(self) -> dict[int, bytes]:
        """For each uploader: which of its neighbours uploaded. Aborts unless unmasking is safe."""
        uploaded = self._uploaders
        if len(uploaded) < self._min_survivors:
            raise SecAggAbort(
                f"only {len(uploaded)} clients uploaded; at least {self._min_survivors} needed"
            )
        groups = connected_components(self._graph, uploaded)
        if len(groups) > 1:
            sizes = sorted((len(g) for g in groups), reverse=True)
            raise SecAggAbort(
                f"the {len(uploaded)} clients that uploaded form {len(groups)} groups with no "
                f"pair masks between them (sizes {sizes}); unmasking would reveal each group's sum"
            )
        for i, _ in self._secrets_to_rebuild():
            self._check_rebuildable(i, self._graph[i] & uploaded, "are left to answer")
        return {i: messages.encode_ids(self._graph[i] & uploaded) for i in uploaded}

    # Step 3 -> result
    def receive_revealed_shares(self, sender: int, payload: bytes) -> None:
        self._check_new(sender, self._responders, "revealed shares")
        if sender not in self._uploaders:
            raise SecAggAbort(f"client {sender} answered the unmasking step without uploading")
        for about, kind, value in messages.decode_revealed(payload):
            expected = Secret.SELF_MASK_SEED if about in self._uploaders else Secret.MASK_KEY
            if about not in self._graph[sender] or about not in self._sharers or kind != expected:
                raise SecAggAbort(f"client {sender} revealed an unrequested share of {about}")
            shares = self._revealed[kind].setdefault(about, {})
            if sender in shares:
                raise SecAggAbort(f"client {sender} revealed two shares of client {about}")
            shares[sender] = value
        self._responders.add(sender)

    def result(self) -> np.ndarray:
        """Sum of the uploaders' inputs mod M, as uint64; aborts if a needed secret is missing."""
        needed = list(self._secrets_to_rebuild())
        for i, kind in needed:  # all checks before any work
            self._check_rebuildable(i, set(self._revealed[kind].get(i, {})), "answered")
        for i, kind in needed:
            secret = self._rebuild(i, kind)
            if kind == Secret.SELF_MASK_SEED:
                add_mask(self._sum, secret, -1, self._bits)
                continue
            key = crypto.private_key_from_bytes(secret)
            if crypto.public_bytes(key) != self._keys[i][1]:
                raise SecAggAbort(f"client {i}: rebuilt mask key does not match its public key")
            for j in self._graph[i] & self._uploaders:  # j added sign(j, i) * PRG(s_ji)
                seed = pair_seed(key, i, self._keys[j][1], j, self._session)
                add_mask(self._sum, seed, -pair_sign(j, i), self._bits)
        total = self._sum & self._sum.dtype.type(modulus(self._bits) - 1)
        return total.astype(np.uint64)

    def _secrets_to_rebuild(self) -> list[tuple[int, Secret]]:
        """s_sk_i of every sharer that did not upload but whose neighbours did (they masked with
        it), then b_i of every uploader."""
        dropped = sorted(
            i for i in self._sharers - self._uploaders if self._graph[i] & self._uploaders
        )
        return [(i, Secret.MASK_KEY) for i in dropped] + [
            (i, Secret.SELF_MASK_SEED) for i in sorted(self._uploaders)
        ]

    def _check_rebuildable(
        self, client: int, holders: set[int] | frozenset[int], verb: str
    ) -> None:
        if len(holders) < self._threshold:
            status = "uploaded" if client in self._uploaders else "dropped"
            raise SecAggAbort(
                f"client {client} {status} and only {len(holders)} of its neighbours {verb}; "
                f"threshold is {self._threshold}"
            )

    def _rebuild(self, client: int, kind: Secret) -> bytes:
        try:
            secret = shamir.reconstruct(self._revealed[kind][client], self._threshold)
        except ValueError as error:
            raise SecAggAbort(f"client {client}: cannot rebuild its {kind.name}: {error}") from None
        if len(secret) != SEED_BYTES:
            raise SecAggAbort(f"client {client}: rebuilt {kind.name} has {len(secret)} bytes")
        return secret

    def _live_neighbours(self, client: int) -> set[int]:
        return {j for j in self._graph[client] if j in self._keys}

    def _check_new(self, sender: int, seen: set[int] | dict[int, object], what: str) -> None:
        if not 0 <= sender < len(self._graph):
            raise SecAggAbort(f"message from unknown client {sender}")
        if sender in seen:
            raise SecAggAbort(f"client {sender} sent {what} twice")
