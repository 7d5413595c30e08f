"""Key agreement and authenticated encryption: the protocol's only contact with `cryptography`.

Every derived key is bound to the session (HKDF salt) and to its purpose (HKDF info), so a key
agreed for encrypting shares never doubles as a mask seed, and nothing carries over between runs.
Sealed messages are nonce || ChaCha20-Poly1305 ciphertext; the associated data names sender,
receiver and session, so the server cannot replay one client's shares to another.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32  # X25519 public and private keys, derived keys, seeds
NONCE_BYTES = 12
TAG_BYTES = 16
SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES
_LABEL = b"tff-pipelines/secagg/"


def new_private_key() -> X25519PrivateKey:
    """A fresh X25519 key (from the OS's CSPRNG)."""
    return X25519PrivateKey.generate()


def public_bytes(key: X25519PrivateKey) -> bytes:
    """The 32 raw bytes of the public key."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_bytes(key: X25519PrivateKey) -> bytes:
    """The 32 raw bytes of the private key: what is secret-shared so the server can unmask."""
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def private_key_from_bytes(data: bytes) -> X25519PrivateKey:
    """Inverse of `private_bytes`."""
    return X25519PrivateKey.from_private_bytes(data)


def agree(
    private_key: X25519PrivateKey, peer_public: bytes, *, session: bytes, purpose: bytes
) -> bytes:
    """32-byte key shared by the two parties: HKDF-SHA256 of their X25519 secret.

    Raises ValueError for a malformed or low-order peer key (all-zero shared secret).
    """
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=session, info=_LABEL + purpose
    ).derive(shared)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """nonce || ciphertext-with-tag under a random 96-bit nonce."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """Inverse of `seal`; ValueError if the ciphertext, key or associated data do not match."""
    if len(sealed) < SEAL_OVERHEAD:
        raise ValueError(f"a sealed message is at least {SEAL_OVERHEAD} bytes, got {len(sealed)}")
    try:
        return ChaCha20Poly1305(key).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data
        )
    except InvalidTag:
        raise ValueError(
            "authentication failed: wrong key, associated data or ciphertext"
        ) from None
