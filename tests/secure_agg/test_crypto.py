import os

import pytest

from secure_agg.crypto import (
    KEY_BYTES,
    SEAL_OVERHEAD,
    agree,
    new_private_key,
    open_sealed,
    private_bytes,
    private_key_from_bytes,
    public_bytes,
    seal,
)


def test_agreement_is_symmetric_and_bound_to_session_and_purpose():
    a, b, c = new_private_key(), new_private_key(), new_private_key()
    session = os.urandom(16)
    key = agree(a, public_bytes(b), session=session, purpose=b"p")
    assert len(key) == KEY_BYTES
    assert key == agree(b, public_bytes(a), session=session, purpose=b"p")
    assert key != agree(a, public_bytes(b), session=os.urandom(16), purpose=b"p")
    assert key != agree(a, public_bytes(b), session=session, purpose=b"q")
    assert key != agree(a, public_bytes(c), session=session, purpose=b"p")


def test_low_order_peer_key_is_refused():
    with pytest.raises(ValueError):
        agree(new_private_key(), bytes(32), session=b"s", purpose=b"p")


def test_private_key_bytes_round_trip():
    key = new_private_key()
    raw = private_bytes(key)
    assert len(raw) == KEY_BYTES
    assert public_bytes(private_key_from_bytes(raw)) == public_bytes(key)
    assert len(public_bytes(key)) == KEY_BYTES


def test_seal_round_trip_and_random_nonce():
    key, message, ad = os.urandom(32), b"two shares", b"from 1 to 2"
    sealed = seal(key, message, ad)
    assert len(sealed) == len(message) + SEAL_OVERHEAD
    assert message not in sealed
    assert open_sealed(key, sealed, ad) == message
    assert seal(key, message, ad) != sealed


def test_open_fails_on_wrong_key_associated_data_or_tampering():
    key, ad = os.urandom(32), b"from 1 to 2"
    sealed = seal(key, b"two shares", ad)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for args in ((os.urandom(32), sealed, ad), (key, sealed, b"from 1 to 3"), (key, tampered, ad)):
        with pytest.raises(ValueError, match="authentication failed"):
            open_sealed(*args)
    with pytest.raises(ValueError, match="at least"):
        open_sealed(key, sealed[:10], ad)
