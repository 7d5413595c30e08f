"""The pseudorandom generator that turns a 32-byte seed into a mask vector in Z_M.

ChaCha20 keystream under the seed as key. The nonce is fixed (zero) because every seed keys
exactly one stream: self-mask seeds are fresh random bytes and pair seeds are derived per
(session, pair), so a (key, nonce) pair never repeats. Words are taken in the narrowest dtype that
holds `bits` and only their low bits are kept: M is a power of two, so the result is exactly
uniform on Z_M whenever the keystream is uniform (no rejection sampling, no modulo bias).
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from secure_agg.modular import modulus
from secure_agg.packing import word_dtype

SEED_BYTES = 32
_NONCE = bytes(16)  # 4-byte block counter starting at 0, then a 12-byte nonce of zeros


def mask_words(seed: bytes, length: int, bits: int) -> np.ndarray:
    """Raw keystream as `word_dtype(bits)` words, uniform mod 2**width, NOT reduced mod M.

    For callers that add many masks: words wrap modulo 2**width, a multiple of M, so reducing
    once at the end (`& (M - 1)`) gives the same result as `expand_mask` each time, with less
    memory traffic.
    """
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
        raise ValueError(f"seed must be {SEED_BYTES} bytes")
    if length < 0:
        raise ValueError(f"length must be non-negative, got {length}")
    word = word_dtype(bits)
    encryptor = Cipher(algorithms.ChaCha20(bytes(seed), _NONCE), mode=None).encryptor()
    stream = encryptor.update(bytes(length * word.itemsize))
    return np.frombuffer(stream, word)


def expand_mask(seed: bytes, length: int, bits: int) -> np.ndarray:
    """`length` values uniform in [0, 2**bits), as uint64, determined by `seed` (32 bytes)."""
    low_bits = np.uint64(modulus(bits) - 1)
    return mask_words(seed, length, bits).astype(np.uint64) & low_bits
