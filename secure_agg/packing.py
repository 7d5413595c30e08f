"""Values in Z_M, M = 2**bits, as the bytes that travel: exactly ceil(length * bits / 8) of them.

Bit packing is what makes an upload cost `bits` per coordinate instead of a whole machine word;
without it, 16-bit SecAgg would upload 4x more than it needs. Layout: value 0 fills the lowest
bits of byte 0, little-endian throughout, so byte-aligned widths (8, 16, 32) are plain
little-endian arrays and take a fast path.

In memory, values live in the narrowest unsigned word that holds `bits` (`word_dtype`): sums of
such words wrap modulo 2**width, a multiple of M, so one reduction at the end is exact.
"""

from __future__ import annotations

import numpy as np

from secure_agg.modular import modulus


def word_dtype(bits: int) -> np.dtype:
    """Narrowest of uint8/16/32/64 that holds values in [0, 2**bits); little-endian."""
    modulus(bits)  # validates bits
    for width in (8, 16, 32, 64):
        if bits <= width:
            return np.dtype(f"<u{width // 8}")
    raise AssertionError("unreachable: bits <= 62")


def packed_size(length: int, bits: int) -> int:
    """Bytes of `length` packed values: ceil(length * bits / 8)."""
    if length < 0:
        raise ValueError(f"length must be non-negative, got {length}")
    modulus(bits)
    return -(-length * bits // 8)


def pack(values: np.ndarray, bits: int) -> bytes:
    """Values in [0, 2**bits) (any unsigned or non-negative integer dtype) to packed bytes."""
    word = word_dtype(bits)
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"expected a vector, got shape {values.shape}")
    if values.dtype.kind not in "ui":
        raise TypeError(f"expected integers, got {values.dtype}")
    if values.size and (values.min() < 0 or int(values.max()) >= modulus(bits)):
        raise ValueError(f"values must lie in [0, 2**{bits})")
    words = values.astype(word, copy=False)
    if bits == 8 * word.itemsize:
        return words.tobytes()
    # One row of bits per value, lowest bit first; keep the low `bits` of each row.
    rows = np.unpackbits(words.view(np.uint8).reshape(-1, word.itemsize), axis=1, bitorder="little")
    return np.packbits(rows[:, :bits], bitorder="little").tobytes()


def unpack(data: bytes, length: int, bits: int) -> np.ndarray:
    """Inverse of `pack`, as `word_dtype(bits)` values; rejects a wrong size or non-zero padding."""
    word = word_dtype(bits)
    if len(data) != packed_size(length, bits):
        raise ValueError(
            f"{length} values of {bits} bits take {packed_size(length, bits)} bytes, "
            f"got {len(data)}"
        )
    if bits == 8 * word.itemsize:
        return np.frombuffer(data, word).copy()
    stream = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
    if stream[length * bits :].any():
        raise ValueError("padding bits after the last value must be zero")
    rows = np.zeros((length, 8 * word.itemsize), np.uint8)
    rows[:, :bits] = stream[: length * bits].reshape(length, bits)
    return np.packbits(rows, axis=1, bitorder="little").reshape(-1).view(word).copy()
