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
import math
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


# The last weights computed: a server rebuilds many secrets from holder sets that differ by one
# holder (every client's own share is missing from its set), and a swap costs O(t), not O(t^2).
_recent: tuple[tuple[int, ...], tuple[int, ...]] | None = None


@functools.lru_cache(maxsize=1024)
def _lagrange_weights_at_zero(xs: tuple[int, ...]) -> tuple[int, ...]:
    """w_j = prod_{m != j} x_m / (x_m - x_j): p(0) = sum_j w_j p(x_j) for deg p < len(xs).

    Cached; derived in O(t) from the previous set when the two differ by one x, else computed.
    """
    global _recent
    base = _recent
    weights = _swapped_weights(base, xs) if base is not None else None
    if weights is None:
        weights = _direct_weights(xs)
    _recent = (xs, weights)
    return weights


def _direct_weights(xs: tuple[int, ...]) -> tuple[int, ...]:
    """O(t^2), but the x are small, so each product is exact machine-word arithmetic reduced
    once, and the t inversions are batched into one."""
    numerator = math.prod(xs) % PRIME
    denominators = [xj * math.prod(xm - xj for xm in xs if xm != xj) % PRIME for xj in xs]
    return tuple(numerator * inverse % PRIME for inverse in _batch_inverse(denominators))


def _swapped_weights(
    base: tuple[tuple[int, ...], tuple[int, ...]], xs: tuple[int, ...]
) -> tuple[int, ...] | None:
    """Weights for xs from those of a set with one x replaced (a out, b in); None otherwise.

    For a kept x_j: w'_j = w_j * (x_a - x_j) / x_a * x_b / (x_b - x_j); w'_b from scratch.
    """
    base_xs, base_weights = base
    removed, added = set(base_xs) - set(xs), set(xs) - set(base_xs)
    if len(base_xs) != len(xs) or len(removed) != 1 or len(added) != 1:
        return None
    (a,), (b,) = removed, added
    kept = [(x, w) for x, w in zip(base_xs, base_weights, strict=True) if x != a]
    b_denominator = math.prod(x - b for x in xs if x != b) % PRIME
    inverses = _batch_inverse([a] + [b - x for x, _ in kept] + [b_denominator])
    inverse_a, inverse_b_denominator = inverses[0], inverses[-1]
    weights = {
        x: w * (a - x) * b % PRIME * inverse_a * inverse % PRIME
        for (x, w), inverse in zip(kept, inverses[1:-1], strict=True)
    }
    weights[b] = math.prod(x for x in xs if x != b) % PRIME * inverse_b_denominator % PRIME
    return tuple(weights[x] for x in xs)


def _batch_inverse(values: list[int]) -> list[int]:
    """Inverses mod PRIME of non-zero values with one modular exponentiation (Montgomery)."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % PRIME)
    running = pow(prefix[-1], -1, PRIME)  # 1 / (v_0 ... v_{n-1})
    inverses = [0] * len(values)
    for j in range(len(values) - 1, -1, -1):
        inverses[j] = running * prefix[j] % PRIME
        running = running * values[j] % PRIME
    return inverses
