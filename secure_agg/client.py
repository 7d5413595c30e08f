"""One SecAgg+ client: a state machine that only knows what it was sent.

Each step takes the server's message as bytes and returns the reply as bytes. The client's
secrets (two X25519 private keys, the self-mask seed b_i, its input) never leave it except as
Shamir shares sealed for one neighbour each, and, in the last step, single shares of neighbours'
secrets. It checks what it can: messages parse, only its public neighbours appear, enough of them
remain for the threshold, and it never reveals both shares (b and s_sk) of the same neighbour,
which together would unmask that neighbour's input.
"""

from __future__ import annotations

import os

import numpy as np

from secure_agg import crypto, messages, shamir
from secure_agg.errors import SecAggAbort
from secure_agg.masking import add_mask, pair_seed, pair_sign
from secure_agg.messages import Secret
from secure_agg.modular import modulus
from secure_agg.packing import pack, word_dtype
from secure_agg.prg import SEED_BYTES


class Client:
    def __init__(
        self,
        index: int,
        *,
        session: bytes,
        neighbours: frozenset[int],
        threshold: int,
        bits: int,
        dimension: int,
    ) -> None:
        if index in neighbours:
            raise ValueError(f"client {index} cannot be its own neighbour")
        self.index = index
        self._session = session
        self._neighbours = neighbours
        self._threshold = threshold
        self._bits = bits
        self._dimension = dimension
        self._c_key = crypto.new_private_key()  # agrees the keys that seal shares
        self._s_key = crypto.new_private_key()  # agrees the pair-mask seeds
        self._directory: dict[int, tuple[bytes, bytes]] = {}
        self._share_keys: dict[int, bytes] = {}
        self._self_mask_seed: bytes | None = None
        self._sealed: dict[int, bytes] = {}  # neighbour -> its shares for me, still sealed
        self._revealed: dict[int, Secret] = {}

    def advertise_keys(self) -> bytes:
        """Step 0: both public keys."""
        return messages.encode_public_keys(
            crypto.public_bytes(self._c_key), crypto.public_bytes(self._s_key)
        )

    def share_keys(self, directory: bytes) -> bytes:
        """Step 1: share b_i and s_sk_i among the neighbours in the directory, sealed per holder."""
        if self._directory:
            raise SecAggAbort(f"client {self.index}: asked to share its keys twice")
        keys = messages.decode_key_directory(directory)
        strangers = set(keys) - self._neighbours
        if strangers:
            raise SecAggAbort(f"client {self.index}: keys of non-neighbours {sorted(strangers)}")
        own = (crypto.public_bytes(self._c_key), crypto.public_bytes(self._s_key))
        all_keys = [key for pair in [own, *keys.values()] for key in pair]
        if len(set(all_keys)) != len(all_keys):
            raise SecAggAbort(f"client {self.index}: public keys are not all distinct")
        self._require(len(keys), "advertised keys")
        self._directory = keys
        self._self_mask_seed = os.urandom(SEED_BYTES)
        holders = sorted(keys)
        b_shares = shamir.share(self._self_mask_seed, self._threshold, holders)
        s_shares = shamir.share(crypto.private_bytes(self._s_key), self._threshold, holders)
        sealed = {}
        for holder in holders:
            plaintext = messages.encode_share_pair(b_shares[holder], s_shares[holder])
            sealed[holder] = crypto.seal(
                self._share_key(holder),
                plaintext,
                messages.share_associated_data(self._session, self.index, holder),
            )
        return messages.encode_sealed(sealed)

    def masked_input(self, forwarded: bytes, x: np.ndarray) -> bytes:
        """Step 2: x_i + PRG(b_i) + sum over neighbours that shared of +-PRG(s_ij), packed."""
        if self._self_mask_seed is None:
            raise SecAggAbort(f"client {self.index}: asked to upload before sharing keys")
        sealed = messages.decode_sealed(forwarded)
        unknown = set(sealed) - set(self._directory)
        if unknown:
            raise SecAggAbort(f"client {self.index}: shares from unknown clients {sorted(unknown)}")
        self._require(len(sealed), "sent shares")
        self._sealed = sealed

        masked = self._as_words(x)
        add_mask(masked, self._self_mask_seed, 1, self._bits)
        self._self_mask_seed = None  # shared already; no longer needed here
        for j in sorted(sealed):
            seed = pair_seed(self._s_key, self.index, self._directory[j][1], j, self._session)
            add_mask(masked, seed, pair_sign(self.index, j), self._bits)
        masked &= masked.dtype.type(modulus(self._bits) - 1)
        return pack(masked, self._bits)

    def unmasking_shares(self, uploaded: bytes) -> bytes:
        """Step 3: per neighbour that shared, its b-share if it uploaded, else its s_sk-share."""
        uploaded_ids = set(messages.decode_ids(uploaded))
        unknown = uploaded_ids - set(self._sealed)
        if unknown:
            raise SecAggAbort(
                f"client {self.index}: told that {sorted(unknown)} uploaded, but they never "
                f"shared keys with it"
            )
        revealed = []
        for j in sorted(self._sealed):
            kind = Secret.SELF_MASK_SEED if j in uploaded_ids else Secret.MASK_KEY
            if self._revealed.setdefault(j, kind) != kind:
                raise SecAggAbort(
                    f"client {self.index}: asked for both secrets of client {j}; that would "
                    f"unmask its input"
                )
            try:
                plaintext = crypto.open_sealed(
                    self._share_key(j),
                    self._sealed[j],
                    messages.share_associated_data(self._session, j, self.index),
                )
            except ValueError as error:
                raise SecAggAbort(f"client {self.index}: shares from client {j}: {error}") from None
            b_share, s_share = messages.decode_share_pair(plaintext)
            revealed.append((j, kind, b_share if kind == Secret.SELF_MASK_SEED else s_share))
        return messages.encode_revealed(revealed)

    def _share_key(self, peer: int) -> bytes:
        """The key sealing shares between this client and `peer` (agreed once, kept)."""
        if peer not in self._share_keys:
            self._share_keys[peer] = crypto.agree(
                self._c_key, self._directory[peer][0], session=self._session, purpose=b"share-seal"
            )
        return self._share_keys[peer]

    def _require(self, count: int, what: str) -> None:
        if count < self._threshold:
            raise SecAggAbort(
                f"client {self.index}: only {count} of its {len(self._neighbours)} neighbours "
                f"{what}; threshold is {self._threshold}"
            )

    def _as_words(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape != (self._dimension,):
            raise ValueError(
                f"client {self.index}: input shape {x.shape}, expected ({self._dimension},)"
            )
        if x.dtype.kind not in "ui":
            raise ValueError(f"client {self.index}: input must be integers, got {x.dtype}")
        if x.size and (x.min() < 0 or int(x.max()) >= modulus(self._bits)):
            raise ValueError(f"client {self.index}: input values must lie in [0, 2**{self._bits})")
        return x.astype(word_dtype(self._bits))
