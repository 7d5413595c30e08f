import os

import numpy as np
import pytest

from secure_agg.crypto import new_private_key, public_bytes
from secure_agg.masking import add_mask, pair_seed, pair_sign
from secure_agg.prg import expand_mask


def test_pair_seed_is_the_same_from_both_sides_and_bound_to_the_pair():
    a, b = new_private_key(), new_private_key()
    session = os.urandom(16)
    seed = pair_seed(a, 3, public_bytes(b), 8, session)
    assert seed == pair_seed(b, 8, public_bytes(a), 3, session)
    assert seed != pair_seed(a, 3, public_bytes(b), 9, session)
    assert seed != pair_seed(a, 3, public_bytes(b), 8, os.urandom(16))


def test_pair_signs_are_opposite():
    assert pair_sign(2, 5) == 1 and pair_sign(5, 2) == -1
    with pytest.raises(ValueError):
        pair_sign(4, 4)


@pytest.mark.parametrize("bits", [1, 8, 13, 16, 32, 62])
def test_masks_with_opposite_signs_cancel_mod_m(bits):
    dtype = next(np.dtype(f"<u{w // 8}") for w in (8, 16, 32, 64) if bits <= w)
    m = np.uint64(2**bits - 1)
    x = np.arange(100, dtype=dtype) & dtype.type(2**bits - 1)
    seed = os.urandom(32)
    y = x.copy()
    add_mask(y, seed, 1, bits)
    np.testing.assert_array_equal(
        y.astype(np.uint64) & m, (x.astype(np.uint64) + expand_mask(seed, 100, bits)) & m
    )
    add_mask(y, seed, -1, bits)
    np.testing.assert_array_equal(y, x)


def test_add_mask_rejects_a_wrong_accumulator_or_sign():
    with pytest.raises(TypeError, match="uint16"):
        add_mask(np.zeros(4, np.uint64), os.urandom(32), 1, 16)
    with pytest.raises(ValueError, match="sign"):
        add_mask(np.zeros(4, np.uint16), os.urandom(32), 2, 16)
