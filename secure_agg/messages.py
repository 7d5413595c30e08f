"""Wire formats: every message between a client and the server is bytes, so its size is real.

Fixed-width little-endian records, no framing beyond what a message needs (the channel itself
says who sent it, as the authenticated channels of Bonawitz et al. do). Decoders reject any
size or content that does not parse exactly, so a malformed message fails loudly.

    step 0  client -> server   public keys            c_pk (32) || s_pk (32)
    step 1  server -> client   key directory          [id u32, c_pk, s_pk] per neighbour
    step 1  client -> server   sealed shares          [receiver u32, sealed (160)] per neighbour
    step 2  server -> client   forwarded shares       [sender u32, sealed (160)] per neighbour
    step 2  client -> server   masked input           packed, ceil(dim * bits / 8) bytes
    step 3  server -> client   uploaded neighbours    [id u32]
    step 3  client -> server   revealed shares        [about u32, kind u8, share (66)]

A sealed message holds one neighbour's pair of shares: b-share || s_sk-share (66 bytes each).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from secure_agg.crypto import KEY_BYTES, SEAL_OVERHEAD
from secure_agg.shamir import SHARE_BYTES, share_from_bytes, share_to_bytes

SERVER = -1  # sender or receiver id of the server in a transcript
SEALED_PAIR_BYTES = SEAL_OVERHEAD + 2 * SHARE_BYTES
_ID = struct.Struct("<I")


class Secret(enum.IntEnum):
    """Which of a client's two shared secrets a revealed share belongs to."""

    SELF_MASK_SEED = 0  # b_i: revealed when client i uploaded
    MASK_KEY = 1  # s_sk_i: revealed when client i dropped before uploading


@dataclass(frozen=True)
class Message:
    """One message as it crossed the network, for transcripts."""

    step: int
    sender: int
    receiver: int
    payload: bytes


def encode_public_keys(c_public: bytes, s_public: bytes) -> bytes:
    _check_key(c_public)
    _check_key(s_public)
    return c_public + s_public


def decode_public_keys(payload: bytes) -> tuple[bytes, bytes]:
    _check_size(payload, 2 * KEY_BYTES, "public keys")
    return payload[:KEY_BYTES], payload[KEY_BYTES:]


def encode_key_directory(keys: Mapping[int, tuple[bytes, bytes]]) -> bytes:
    return b"".join(_ID.pack(i) + encode_public_keys(*keys[i]) for i in sorted(keys))


def decode_key_directory(payload: bytes) -> dict[int, tuple[bytes, bytes]]:
    return {
        i: decode_public_keys(record)
        for i, record in _records(payload, 2 * KEY_BYTES, "key directory")
    }


def encode_sealed(sealed: Mapping[int, bytes]) -> bytes:
    """{peer: sealed pair}; the peer is the receiver on the way in, the sender on the way out."""
    for peer, item in sealed.items():
        _check_size(item, SEALED_PAIR_BYTES, f"sealed shares for {peer}")
    return b"".join(_ID.pack(peer) + sealed[peer] for peer in sorted(sealed))


def decode_sealed(payload: bytes) -> dict[int, bytes]:
    return dict(_records(payload, SEALED_PAIR_BYTES, "sealed shares"))


def encode_share_pair(self_mask_share: int, mask_key_share: int) -> bytes:
    return share_to_bytes(self_mask_share) + share_to_bytes(mask_key_share)


def decode_share_pair(plaintext: bytes) -> tuple[int, int]:
    _check_size(plaintext, 2 * SHARE_BYTES, "share pair")
    return share_from_bytes(plaintext[:SHARE_BYTES]), share_from_bytes(plaintext[SHARE_BYTES:])


def share_associated_data(session: bytes, sender: int, receiver: int) -> bytes:
    """Binds a sealed share pair to its session, sender and receiver."""
    return b"shares" + session + _ID.pack(sender) + _ID.pack(receiver)


def encode_ids(ids: Iterable[int]) -> bytes:
    return b"".join(_ID.pack(i) for i in sorted(ids))


def decode_ids(payload: bytes) -> list[int]:
    if len(payload) % _ID.size:
        raise ValueError(f"an id list is a multiple of {_ID.size} bytes, got {len(payload)}")
    ids = [i for (i,) in _ID.iter_unpack(payload)]
    if ids != sorted(set(ids)):
        raise ValueError("ids must be sorted and distinct")
    return ids


def encode_revealed(shares: Sequence[tuple[int, Secret, int]]) -> bytes:
    """[(about, which secret, share)]."""
    return b"".join(
        _ID.pack(about) + bytes([kind]) + share_to_bytes(value) for about, kind, value in shares
    )


def decode_revealed(payload: bytes) -> list[tuple[int, Secret, int]]:
    size = _ID.size + 1 + SHARE_BYTES
    if len(payload) % size:
        raise ValueError(f"revealed shares are a multiple of {size} bytes, got {len(payload)}")
    result = []
    for offset in range(0, len(payload), size):
        (about,) = _ID.unpack_from(payload, offset)
        kind = Secret(payload[offset + _ID.size])  # ValueError if unknown
        result.append(
            (about, kind, share_from_bytes(payload[offset + _ID.size + 1 : offset + size]))
        )
    return result


def _records(payload: bytes, body: int, what: str) -> list[tuple[int, bytes]]:
    size = _ID.size + body
    if len(payload) % size:
        raise ValueError(f"{what}: a multiple of {size} bytes expected, got {len(payload)}")
    records = [
        (_ID.unpack_from(payload, offset)[0], payload[offset + _ID.size : offset + size])
        for offset in range(0, len(payload), size)
    ]
    ids = [i for i, _ in records]
    if ids != sorted(set(ids)):
        raise ValueError(f"{what}: ids must be sorted and distinct")
    return records


def _check_key(key: bytes) -> None:
    _check_size(key, KEY_BYTES, "public key")


def _check_size(data: bytes, size: int, what: str) -> None:
    if len(data) != size:
        raise ValueError(f"{what}: {size} bytes expected, got {len(data)}")
