"""Shamir t-out-of-n secret sharing of short byte strings over GF(2**521 - 1).

The secret is the constant term of a random polynomial of degree t - 1; holder h gets its value
at x = h + 1 (x = 0 would be the secret itself). Any t shares determine the polynomial by
Lagrange interpolation; any t - 1 are consistent with every secret, so they reveal nothing.

The field is the Mersenne prime 2**521 - 1 (prime, and large enough that a 32-byte key, or
anything up to 64 bytes, is one field element). A byte string is encoded as the integer of
b"\\x01" + secret: the marker byte keeps leading zero bytes and the length. (A check that the
marker survives catches only some mixed-up shares; callers that know the secret's length should
check it too.) Coefficients come from `secrets`.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping, Sequence

PRIME = 2**521 - 1
SHARE_BYTES = (PRIME.bit_length() + 7) // 8  # 66: a share (field element) as fixed-width bytes
MAX_SECRET_BYTES = 64  # marker + 64 bytes = 520 bits < 521
_MARKER = b"\x01"


def share(secret: bytes, threshold: int, holders: Sequence[int]) -> dict[int, int]:
    """Shares of `secret` for `holders` (distinct ids >= 0), any `threshold` of which rebuild it."""
    if len(secret) > MAX_SECRET_BYTES:
        raise ValueError(f"secret is {len(secret)} bytes; at most {MAX_SECRET_BYTES} fit")
    holders = list(holders)
    if len(set(holders)) != len(holders) or any(h < 0 for h in holders):
        raise ValueError(f"holders must be distinct non-negative ids, got {holders}")
    if not 1 <= threshold <= len(holders):
        raise ValueError(f"threshold must be in [1, {len(holders)}] holders, got {threshold}")
    coefficients = [int.from_bytes(_MARKER + bytes(secret), "big")]
    coefficients += [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    return {h: _evaluate(coefficients, h + 1) for h in holders}


def reconstruct(shares: Mapping[int, int], threshold: int) -> bytes:
    """The secret from at least `threshold` shares {holder: share} (the lowest holders are used)."""
    if threshold < 1:
        raise ValueError(f"threshold must be at least 1, got {threshold}")
    if len(shares) < threshold:
        raise ValueError(f"{len(shares)} shares cannot rebuild a secret of threshold {threshold}")
    used = sorted(shares)[:threshold]
    if used[0] < 0:
        raise ValueError(f"holder ids are non-negative, got {used[0]}")
    weights = _lagrange_weights_at_zero(tuple(h + 1 for h in used))
    value = sum(w * (shares[h] % PRIME) for w, h in zip(weights, used, strict=True)) % PRIME
    encoded = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if not encoded.startswith(_MARKER):
        raise ValueError("shares are inconsistent: they do not rebuild an encoded secret")
    return encoded[1:]


def share_to_bytes(value: int) -> bytes:
    """A share as SHARE_BYTES big-endian bytes, for the wire."""
    if not 0 <= value < PRIME:
        raise ValueError("a share is a field element in [0, 2**521 - 1)")
    return value.to_bytes(SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    """Inverse of `share_to_bytes`."""
    if len(data) != SHARE_BYTES:
        raise ValueError(f"a share is {SHARE_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise ValueError("a share is a field element in [0, 2**521 - 1)")
    return value


def _evaluate(coefficients: list[int], x: int) -> int:
    result = 0
    for c in reversed(coefficients):  # Horner
        result = (result * x + c) % PRIME
    return result


@functools.lru_cache(maxsize=1024)
def _lagrange_weights_at_zero(xs: tuple[int, ...]) -> tuple[int, ...]:
    """w_j = prod_{m != j} x_m / (x_m - x_j): p(0) = sum_j w_j p(x_j) for deg p < len(xs).

    Cached: a server rebuilding many secrets from the same responders reuses the weights.
    """
    weights = []
    for j, xj in enumerate(xs):
        numerator, denominator = 1, 1
        for m, xm in enumerate(xs):
            if m != j:
                numerator = numerator * xm % PRIME
                denominator = denominator * (xm - xj) % PRIME
        weights.append(numerator * pow(denominator, -1, PRIME) % PRIME)
    return tuple(weights)
