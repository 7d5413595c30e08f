"""Random rotations that flatten a vector before integer rounding (DDG, Skellam, SMM).

A rotation shared by the clients and the server (one int64[2] seed per round) spreads the mass of
any vector evenly over the coordinates, so a per-coordinate clip or modulus rarely bites and the
rounding error is spread out. Both rotations are unitary, so L2 norms (and hence sensitivity) are
unchanged, and the server undoes them exactly after the secure sum.

- "hadamard": x ↦ H·D·x/√d', d' the next power of two; fast Walsh–Hadamard transform, O(d' log d').
- "dft": x ↦ F·D·x/√(d'/2), d' the next even number; the padded real vector is read as d'/2
  complex numbers (first half real parts, second half imaginary parts). Less padding than Hadamard.

D is a diagonal of independent ±1 signs, one per padded coordinate. Everything is built from TF ops
and stateless random ops, so it traces into TFF client and server computations.
"""

from __future__ import annotations

import math
import operator
from typing import Literal

import tensorflow as tf

Rotation = Literal["hadamard", "dft"]
ROTATIONS: tuple[Rotation, ...] = ("hadamard", "dft")

# 2**26 float32 coordinates are 256 MiB per vector; the transform holds a few such copies, every
# simulated client holds its own, and the integer vectors sent to secure aggregation are int64
# (twice as big). Past this a model belongs to a different kind of system than a simulation.
MAX_PADDED_DIMENSION = 2**26


def padded_dimension(dim: int, kind: Rotation) -> int:
    """Length after zero padding: the size the transform needs (a power of two, or even)."""
    dim = operator.index(dim)
    _check_kind(kind)
    if dim < 1:
        raise ValueError(f"cannot rotate a vector of dimension {dim}: need at least 1 coordinate")
    padded = 1 << (dim - 1).bit_length() if kind == "hadamard" else max(2, dim + dim % 2)
    if padded > MAX_PADDED_DIMENSION:
        raise ValueError(
            f"dimension {dim} pads to {padded} for a {kind} rotation, above the limit "
            f"MAX_PADDED_DIMENSION = {MAX_PADDED_DIMENSION} (memory)"
        )
    return padded


def rotate(x: tf.Tensor, seed: tf.Tensor, kind: Rotation) -> tf.Tensor:
    """Zero-pads x: float32[dim] to d' and applies the seeded unitary rotation; float32[d']."""
    x = _static_vector(x, "x")
    padded = padded_dimension(x.shape[0], kind)
    x = tf.pad(x, [[0, padded - x.shape[0]]])
    x = x * _random_signs(padded, seed)
    if kind == "hadamard":
        return _fast_walsh_hadamard(x) / math.sqrt(padded)
    return _unitary_dft(x)


def unrotate(y: tf.Tensor, seed: tf.Tensor, kind: Rotation, dim: int) -> tf.Tensor:
    """Inverse of `rotate` for the same seed and kind, truncated back to the first `dim` values."""
    y = _static_vector(y, "y")
    padded = padded_dimension(dim, kind)
    if y.shape[0] != padded:
        raise ValueError(
            f"y has {y.shape[0]} coordinates but a {kind} rotation of dimension {dim} "
            f"produces {padded}"
        )
    if kind == "hadamard":
        # H is symmetric and H·H = d'·I, so the transform is its own inverse up to scale.
        x = _fast_walsh_hadamard(y) / math.sqrt(padded)
    else:
        x = _inverse_unitary_dft(y)
    return (x * _random_signs(padded, seed))[:dim]


def _check_kind(kind: str) -> None:
    if kind not in ROTATIONS:
        raise ValueError(f"unknown rotation {kind!r}; expected one of {ROTATIONS}")


def _static_vector(x: tf.Tensor, name: str) -> tf.Tensor:
    """Padding sizes are Python ints, so the length must be known when the graph is traced."""
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        raise TypeError(f"{name} must be float32, got {x.dtype.name}")
    if x.shape.rank != 1 or x.shape[0] is None:
        raise ValueError(f"{name} must be a 1-D tensor of static length, got shape {x.shape}")
    return x


def _random_signs(size: int, seed: tf.Tensor) -> tf.Tensor:
    """Independent ±1 per coordinate (not one global sign), a pure function of the seed."""
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise TypeError(f"seed must be an integer tensor of shape [2], got {seed.dtype.name}")
    seed = tf.ensure_shape(tf.cast(seed, tf.int64), [2])
    bits = tf.random.stateless_uniform([size], seed=seed, minval=0, maxval=2, dtype=tf.int32)
    return tf.cast(2 * bits - 1, tf.float32)


def _fast_walsh_hadamard(x: tf.Tensor) -> tf.Tensor:
    """H·x, H the Sylvester-ordered Hadamard matrix (unnormalised), in log2(d') butterfly passes."""
    size = x.shape[0]
    half = 1
    while half < size:
        # Pair coordinate i with i + half inside each block of 2·half: (a, b) ↦ (a + b, a − b).
        blocks = tf.reshape(x, [-1, 2, half])
        a, b = blocks[:, 0, :], blocks[:, 1, :]
        x = tf.reshape(tf.stack([a + b, a - b], axis=1), [size])
        half *= 2
    return x


def _unitary_dft(x: tf.Tensor) -> tf.Tensor:
    """F·x/√(d'/2), computed in complex128 so that the server's inverse is exact to float32.

    TF 2.14's CPU complex64 FFT loses precision with length: a round trip of 12725 unit normals is
    off by ~3e-3 and of 2**19 by ~7e-3 (float32 resolution is ~1e-7); complex128 is good to ~1e-11.
    """
    half = x.shape[0] // 2
    x = tf.cast(x, tf.float64)
    spectrum = tf.signal.fft(tf.complex(x[:half], x[half:])) / math.sqrt(half)
    return tf.cast(tf.concat([tf.math.real(spectrum), tf.math.imag(spectrum)], axis=0), tf.float32)


def _inverse_unitary_dft(y: tf.Tensor) -> tf.Tensor:
    half = y.shape[0] // 2
    y = tf.cast(y, tf.float64)
    # tf.signal.ifft divides by `half`; multiplying by sqrt(half) leaves the unitary inverse.
    values = tf.signal.ifft(tf.complex(y[:half], y[half:])) * math.sqrt(half)
    return tf.cast(tf.concat([tf.math.real(values), tf.math.imag(values)], axis=0), tf.float32)
