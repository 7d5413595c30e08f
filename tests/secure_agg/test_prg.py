import os

import numpy as np
import pytest

from secure_agg.prg import expand_mask, mask_words

BITS = [1, 5, 8, 12, 16, 31, 32, 33, 62]


@pytest.mark.parametrize("bits", BITS)
def test_range_length_and_dtype(bits):
    mask = expand_mask(os.urandom(32), 5000, bits)
    assert mask.dtype == np.uint64 and mask.shape == (5000,)
    assert int(mask.max()) < 2**bits
    # 5000 uniform draws reach the top half of the range (false failure 2**-5000).
    assert int(mask.max()) >= 2 ** (bits - 1)


def test_deterministic_per_seed_and_different_across_seeds():
    seed = os.urandom(32)
    np.testing.assert_array_equal(expand_mask(seed, 1000, 16), expand_mask(seed, 1000, 16))
    other = bytes([seed[0] ^ 1]) + seed[1:]
    # Two independent 16-bit streams agree in a coordinate with probability 2**-16.
    assert np.mean(expand_mask(seed, 1000, 16) == expand_mask(other, 1000, 16)) < 0.01


def test_longer_masks_extend_shorter_ones():
    seed = os.urandom(32)
    np.testing.assert_array_equal(expand_mask(seed, 10, 33), expand_mask(seed, 100, 33)[:10])
    assert expand_mask(seed, 0, 8).shape == (0,)


@pytest.mark.parametrize(("narrow", "wide"), [(5, 8), (12, 16), (20, 32), (33, 62)])
def test_narrower_bits_keep_the_low_bits_of_the_same_words(narrow, wide):
    seed = os.urandom(32)
    np.testing.assert_array_equal(
        expand_mask(seed, 500, narrow), expand_mask(seed, 500, wide) & np.uint64(2**narrow - 1)
    )


@pytest.mark.parametrize("bits", BITS)
def test_mask_words_reduce_to_the_mask(bits):
    seed = os.urandom(32)
    words = mask_words(seed, 300, bits)
    assert words.dtype.itemsize * 8 == next(w for w in (8, 16, 32, 64) if bits <= w)
    np.testing.assert_array_equal(
        words.astype(np.uint64) & np.uint64(2**bits - 1), expand_mask(seed, 300, bits)
    )


@pytest.mark.parametrize("seed", [b"", os.urandom(16), os.urandom(31), os.urandom(33), "x" * 32])
def test_rejects_seeds_that_are_not_32_bytes(seed):
    with pytest.raises(ValueError, match="32 bytes"):
        expand_mask(seed, 10, 8)


def test_rejects_bad_bits_and_length():
    with pytest.raises(ValueError, match="bits"):
        expand_mask(os.urandom(32), 10, 63)
    with pytest.raises(ValueError, match="length"):
        expand_mask(os.urandom(32), -1, 8)
