import os

import pytest

from secure_agg import messages
from secure_agg.messages import SEALED_PAIR_BYTES, Secret
from secure_agg.shamir import PRIME


def test_public_keys_round_trip():
    c, s = os.urandom(32), os.urandom(32)
    assert messages.decode_public_keys(messages.encode_public_keys(c, s)) == (c, s)
    with pytest.raises(ValueError, match="64 bytes"):
        messages.decode_public_keys(c)
    with pytest.raises(ValueError, match="32 bytes"):
        messages.encode_public_keys(c[:31], s)


def test_key_directory_round_trip_and_size():
    keys = {7: (os.urandom(32), os.urandom(32)), 2: (os.urandom(32), os.urandom(32))}
    payload = messages.encode_key_directory(keys)
    assert len(payload) == 2 * (4 + 64)
    assert messages.decode_key_directory(payload) == keys
    with pytest.raises(ValueError, match="multiple of 68"):
        messages.decode_key_directory(payload[:-1])
    swapped = payload[68:] + payload[:68]  # ids out of order
    with pytest.raises(ValueError, match="sorted and distinct"):
        messages.decode_key_directory(swapped)


def test_sealed_round_trip():
    sealed = {3: os.urandom(SEALED_PAIR_BYTES), 1: os.urandom(SEALED_PAIR_BYTES)}
    payload = messages.encode_sealed(sealed)
    assert len(payload) == 2 * (4 + SEALED_PAIR_BYTES) and SEALED_PAIR_BYTES == 160
    assert messages.decode_sealed(payload) == sealed
    assert messages.decode_sealed(b"") == {}
    with pytest.raises(ValueError, match="160 bytes"):
        messages.encode_sealed({1: b"short"})


def test_share_pair_and_associated_data():
    pair = (PRIME - 1, 12345)
    assert messages.decode_share_pair(messages.encode_share_pair(*pair)) == pair
    session = os.urandom(16)
    ad = messages.share_associated_data(session, 1, 2)
    assert session in ad
    assert ad != messages.share_associated_data(session, 2, 1)


def test_ids_round_trip_and_validation():
    assert messages.decode_ids(messages.encode_ids({5, 1, 300})) == [1, 5, 300]
    assert messages.decode_ids(b"") == []
    with pytest.raises(ValueError, match="multiple of 4"):
        messages.decode_ids(b"\x00" * 5)
    with pytest.raises(ValueError, match="sorted and distinct"):
        messages.decode_ids(b"\x02\x00\x00\x00\x01\x00\x00\x00")


def test_revealed_round_trip_and_validation():
    shares = [(4, Secret.SELF_MASK_SEED, 99), (9, Secret.MASK_KEY, PRIME - 2)]
    payload = messages.encode_revealed(shares)
    assert len(payload) == 2 * (4 + 1 + 66)
    assert messages.decode_revealed(payload) == shares
    with pytest.raises(ValueError, match="multiple of 71"):
        messages.decode_revealed(payload[:-1])
    unknown_kind = payload[:4] + b"\x07" + payload[5:]
    with pytest.raises(ValueError):
        messages.decode_revealed(unknown_kind)
