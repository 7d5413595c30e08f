"""The masks: what a client adds to its input and what the server takes off again.

A client's upload is x_i + PRG(b_i) + sum_j sign(i, j) PRG(s_ij) mod M over its neighbours j
that shared keys. The pair term cancels between i and j when both upload (signs are opposite);
the server removes PRG(b_i) of every uploader and the pair terms of every neighbour that
dropped after sharing keys. Both sides derive s_ij from the same X25519 agreement, bound to the
session and to the (unordered) pair, so a seed never repeats across pairs or runs.
"""

from __future__ import annotations

import struct

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from secure_agg.crypto import agree
from secure_agg.prg import mask_words


def pair_seed(
    own_key: X25519PrivateKey, own_index: int, peer_public: bytes, peer_index: int, session: bytes
) -> bytes:
    """s_ij: the same 32 bytes for (i, j) and (j, i), from either side's private key."""
    low, high = sorted((own_index, peer_index))
    purpose = b"pair-mask" + struct.pack("<II", low, high)
    return agree(own_key, peer_public, session=session, purpose=purpose)


def pair_sign(own_index: int, peer_index: int) -> int:
    """+1 for the lower index of the pair, -1 for the higher: the two masks cancel in the sum."""
    if own_index == peer_index:
        raise ValueError(f"client {own_index} cannot be its own neighbour")
    return 1 if own_index < peer_index else -1


def add_mask(accumulator: np.ndarray, seed: bytes, sign: int, bits: int) -> None:
    """accumulator += sign * PRG(seed), in place, modulo 2**width (reduce mod M at the end)."""
    words = mask_words(seed, accumulator.size, bits)
    if words.dtype != accumulator.dtype:
        raise TypeError(f"accumulator must be {words.dtype}, got {accumulator.dtype}")
    if sign == 1:
        accumulator += words
    elif sign == -1:
        accumulator -= words  # unsigned wrap-around: exact modulo 2**width
    else:
        raise ValueError(f"sign must be +1 or -1, got {sign}")
