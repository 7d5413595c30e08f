import itertools
import os

import pytest

from secure_agg.shamir import (
    MAX_SECRET_BYTES,
    PRIME,
    SHARE_BYTES,
    reconstruct,
    share,
    share_from_bytes,
    share_to_bytes,
)


def _interpolate(points: dict[int, int], at: int) -> int:
    """Reference Lagrange interpolation over GF(PRIME), points keyed by x."""
    total = 0
    for xj, yj in points.items():
        term = yj
        for xm in points:
            if xm != xj:
                term = term * (at - xm) * pow(xj - xm, -1, PRIME) % PRIME
        total = (total + term) % PRIME
    return total


def test_prime_is_the_mersenne_prime_and_holds_a_64_byte_secret():
    assert PRIME == 2**521 - 1
    assert SHARE_BYTES == 66
    assert int.from_bytes(b"\x01" + b"\xff" * MAX_SECRET_BYTES, "big") < PRIME


def test_any_threshold_of_the_shares_rebuild_the_secret():
    secret = os.urandom(32)
    holders = [0, 3, 4, 9, 11, 12, 20]
    shares = share(secret, 4, holders)
    assert sorted(shares) == holders
    for subset in itertools.combinations(holders, 4):
        assert reconstruct({h: shares[h] for h in subset}, 4) == secret
    assert reconstruct(shares, 4) == secret  # more than t also works


def test_large_threshold_with_scattered_holders():
    secret = os.urandom(32)
    holders = [3 * h + h % 7 for h in range(120)]
    shares = share(secret, 61, holders)
    for start in (0, 30, 59):
        subset = holders[start : start + 61]
        assert reconstruct({h: shares[h] for h in subset}, 61) == secret


def test_threshold_one_and_threshold_all():
    secret = b"\x07" * 32
    assert all(reconstruct({h: v}, 1) == secret for h, v in share(secret, 1, [5, 6]).items())
    shares = share(secret, 5, range(5))
    assert reconstruct(shares, 5) == secret


def test_fewer_than_threshold_shares_are_refused():
    shares = share(os.urandom(32), 3, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="2 shares cannot rebuild a secret of threshold 3"):
        reconstruct({1: shares[1], 2: shares[2]}, 3)


def test_threshold_minus_one_shares_fit_every_secret():
    """Any t-1 shares, plus one forged share, rebuild any secret we like: they fix nothing."""
    t = 5
    true_secret, other_secret = os.urandom(32), os.urandom(32)
    shares = share(true_secret, t, range(10))
    known = {h: shares[h] for h in range(t - 1)}
    # The polynomial through the t-1 known points and (0, encoding of other_secret):
    points = {h + 1: v for h, v in known.items()}
    points[0] = int.from_bytes(b"\x01" + other_secret, "big")
    forged = _interpolate(points, at=9 + 1)  # its value at holder 9
    assert reconstruct({**known, 9: forged}, t) == other_secret
    assert reconstruct({**known, 9: shares[9]}, t) == true_secret


def test_shares_of_the_same_secret_differ_between_calls():
    secret = os.urandom(32)
    assert share(secret, 3, range(5)) != share(secret, 3, range(5))


@pytest.mark.parametrize(
    "secret", [b"", b"\x00", b"\x00" * 32, b"\x00\x00ab", b"\xff" * 64, os.urandom(32)]
)
def test_bytes_round_trip_including_leading_zeros(secret):
    assert reconstruct(share(secret, 2, [0, 1, 2]), 2) == secret


def test_invalid_arguments():
    with pytest.raises(ValueError, match="at most 64"):
        share(b"x" * 65, 2, [0, 1])
    with pytest.raises(ValueError, match="distinct"):
        share(b"x", 2, [0, 0, 1])
    with pytest.raises(ValueError, match="distinct non-negative"):
        share(b"x", 1, [-1])
    with pytest.raises(ValueError, match="threshold"):
        share(b"x", 3, [0, 1])
    with pytest.raises(ValueError, match="threshold"):
        share(b"x", 0, [0, 1])


def test_share_bytes_round_trip_and_range():
    for value in (0, 1, PRIME - 1, int.from_bytes(os.urandom(65), "big") % PRIME):
        encoded = share_to_bytes(value)
        assert len(encoded) == SHARE_BYTES
        assert share_from_bytes(encoded) == value
    with pytest.raises(ValueError):
        share_to_bytes(PRIME)
    with pytest.raises(ValueError):
        share_from_bytes(PRIME.to_bytes(SHARE_BYTES, "big"))
    with pytest.raises(ValueError):
        share_from_bytes(b"\x00" * 65)
