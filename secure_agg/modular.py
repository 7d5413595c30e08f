"""Arithmetic in Z_M, M = 2**bits: what secure aggregation computes on, as TF ops and in NumPy.

Clients send integer vectors wrapped into [0, M); secure aggregation returns their sum mod M; the
server maps it to the centred representative in [-M/2, M/2) (TFF's convention), which equals the
true integer sum whenever that lies in the range, and is off by a multiple of M otherwise.

In simulation the modular secure sum is computed in the clear (a plain sum, then mod M). That is
exactly the result a real secure aggregation returns; what SecAgg adds is that the server sees
nothing else (no individual client vector).

bits is at most 62 so that every value in [0, M) and the sum of two of them fit in int64 without
overflow. TensorFlow is imported inside the TF functions only, so the NumPy references load
without it.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

MAX_BITS = 62


def modulus(bits: int) -> int:
    """M = 2**bits, for 1 <= bits <= 62."""
    bits = operator.index(bits)
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in [1, {MAX_BITS}] (int64 arithmetic), got {bits}")
    return 2**bits


def wrap(z: tf.Tensor, bits: int) -> tf.Tensor:
    """Representative of z mod M in [0, M), as int64: what a client sends."""
    import tensorflow as tf

    return tf.math.floormod(_int64_tensor(z), tf.constant(modulus(bits), tf.int64))


def centre(total: tf.Tensor, bits: int) -> tf.Tensor:
    """Representative of total mod M in [-M/2, M/2), as int64: what the server decodes."""
    import tensorflow as tf

    m = modulus(bits)
    # Wrap first, then shift the top half down: adding M/2 before the mod could overflow int64.
    wrapped = wrap(total, bits)
    return tf.where(wrapped >= m // 2, wrapped - m, wrapped)


def wrap_np(z: np.ndarray, bits: int) -> np.ndarray:
    """NumPy reference of `wrap`."""
    return np.mod(_int64_array(z), np.int64(modulus(bits)))


def centre_np(total: np.ndarray, bits: int) -> np.ndarray:
    """NumPy reference of `centre`."""
    m = modulus(bits)
    wrapped = wrap_np(total, bits)
    return np.where(wrapped >= m // 2, wrapped - m, wrapped)


def modular_sum_np(vectors: np.ndarray, bits: int) -> np.ndarray:
    """Sum over axis 0 (the clients) mod M, exact, in [0, M).

    A plain int64 sum of many 62-bit values overflows. Two's-complement wrap-around would happen to
    give the right answer mod M (M divides 2**64), but signed overflow is not a documented NumPy
    guarantee, so rows are added pairwise and reduced after every addition instead: two values
    below M <= 2**62 sum to below 2**63, so no intermediate ever overflows.
    """
    m = np.int64(modulus(bits))
    partial = wrap_np(vectors, bits)
    if partial.ndim == 0:
        raise ValueError("vectors must have a leading client axis, got a scalar")
    if partial.shape[0] == 0:
        return np.zeros(partial.shape[1:], np.int64)
    while partial.shape[0] > 1:
        half = partial.shape[0] // 2
        paired = np.mod(partial[:half] + partial[half : 2 * half], m)
        partial = np.concatenate([paired, partial[2 * half :]], axis=0)
    return partial[0]


def _int64_tensor(z: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    z = tf.convert_to_tensor(z)
    if z.dtype not in (tf.int8, tf.int16, tf.int32, tf.int64, tf.uint8, tf.uint16, tf.uint32):
        raise TypeError(f"expected an integer tensor that fits in int64, got {z.dtype.name}")
    return tf.cast(z, tf.int64)


def _int64_array(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z)
    if not (np.issubdtype(z.dtype, np.signedinteger) or (z.dtype.kind == "u" and z.itemsize < 8)):
        raise TypeError(f"expected an integer array that fits in int64, got {z.dtype}")
    return z.astype(np.int64)
