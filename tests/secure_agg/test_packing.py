import numpy as np
import pytest

from secure_agg.packing import pack, packed_size, unpack, word_dtype


@pytest.mark.parametrize("bits", range(1, 63))
@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 1001])
def test_round_trip_in_exactly_ceil_length_bits_over_8_bytes(bits, length):
    rng = np.random.default_rng(bits * 10_000 + length)
    values = rng.integers(0, 2**bits, length, dtype=np.int64)
    if length:
        values[0] = 2**bits - 1  # the extremes
        values[-1] = 0
    data = pack(values, bits)
    assert isinstance(data, bytes)
    assert len(data) == packed_size(length, bits) == -(-length * bits // 8)
    restored = unpack(data, length, bits)
    assert restored.dtype == word_dtype(bits)
    np.testing.assert_array_equal(restored.astype(np.int64), values)


def test_layout_is_little_endian_lowest_bits_first():
    assert pack(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1) == b"\x0d\x01"
    assert pack(np.array([0x1, 0x2]), 4) == b"\x21"
    assert pack(np.array([0xABC, 0x123]), 12) == b"\xbc\x3a\x12"
    assert pack(np.array([0x0102], np.uint64), 16) == b"\x02\x01"


def test_accepts_unsigned_and_signed_dtypes():
    for dtype in (np.uint8, np.uint16, np.uint64, np.int32, np.int64):
        assert pack(np.array([3, 5], dtype), 3) == pack(np.array([3, 5]), 3)


def test_word_dtype_is_the_narrowest_unsigned_word():
    assert [word_dtype(b).itemsize for b in (1, 8, 9, 16, 17, 32, 33, 62)] == [
        1,
        1,
        2,
        2,
        4,
        4,
        8,
        8,
    ]
    assert all(word_dtype(b).kind == "u" for b in (1, 62))
    with pytest.raises(ValueError):
        word_dtype(63)


def test_rejects_values_out_of_range_and_bad_shapes():
    with pytest.raises(ValueError, match=r"\[0, 2\*\*4\)"):
        pack(np.array([16]), 4)
    with pytest.raises(ValueError, match=r"\[0, 2\*\*4\)"):
        pack(np.array([-1]), 4)
    with pytest.raises(ValueError, match="vector"):
        pack(np.zeros((2, 2), np.int64), 4)
    with pytest.raises(TypeError, match="integers"):
        pack(np.array([1.0]), 4)


def test_unpack_rejects_wrong_size_and_nonzero_padding():
    with pytest.raises(ValueError, match="take 2 bytes"):
        unpack(b"\x00", 3, 5)
    with pytest.raises(ValueError, match="take 2 bytes"):
        unpack(b"\x00\x00\x00", 3, 5)
    with pytest.raises(ValueError, match="padding"):
        unpack(b"\x00\x80", 3, 5)  # bit 15 is past 3 * 5 bits
    np.testing.assert_array_equal(unpack(b"\xff\x7f", 3, 5), [31, 31, 31])
