import numpy as np
import pytest
import tensorflow as tf

from secure_agg.modular import centre, centre_np, modular_sum_np, modulus, wrap, wrap_np

INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max


def _edge_values(bits: int) -> np.ndarray:
    m = 2**bits
    values = [0, 1, -1, m // 2 - 1, m // 2, -(m // 2), -(m // 2) - 1, m - 1, m, -m, 3 * m + 5]
    values += [INT64_MIN, INT64_MAX, INT64_MIN + 1]
    return np.array([v for v in values if INT64_MIN <= v <= INT64_MAX], np.int64)


def test_modulus():
    assert modulus(1) == 2
    assert modulus(16) == 65536
    assert modulus(62) == 2**62
    for bad in (0, 63, -3):
        with pytest.raises(ValueError, match="bits"):
            modulus(bad)
    with pytest.raises(TypeError):
        modulus(8.0)


@pytest.mark.parametrize("bits", [1, 2, 8, 20, 32, 61, 62])
def test_wrap_and_centre_land_in_their_ranges_and_agree_mod_m(bits):
    m = 2**bits
    rng = np.random.default_rng(bits)
    z = np.concatenate([_edge_values(bits), rng.integers(INT64_MIN, INT64_MAX, 1000)])
    wrapped, centred = wrap_np(z, bits), centre_np(z, bits)
    assert wrapped.dtype == centred.dtype == np.int64
    assert np.all((wrapped >= 0) & (wrapped < m))
    assert np.all((centred >= -(m // 2)) & (centred < m // 2))
    exact = [int(v) % m for v in z]  # Python integers: no overflow
    assert [int(v) for v in wrapped] == exact
    assert [int(v) % m for v in centred] == exact


@pytest.mark.parametrize("bits", [1, 2, 8, 20, 32, 61, 62])
def test_tf_matches_numpy(bits):
    rng = np.random.default_rng(100 + bits)
    z = np.concatenate([_edge_values(bits), rng.integers(INT64_MIN, INT64_MAX, 1000)])
    np.testing.assert_array_equal(wrap(tf.constant(z), bits).numpy(), wrap_np(z, bits))
    np.testing.assert_array_equal(centre(tf.constant(z), bits).numpy(), centre_np(z, bits))
    assert wrap(tf.constant(z), bits).dtype == centre(tf.constant(z), bits).dtype == tf.int64


def test_centre_uses_tffs_half_open_range():
    # M/2 itself maps to -M/2: the range is [-M/2, M/2), not (-M/2, M/2].
    np.testing.assert_array_equal(
        centre_np(np.array([128, 127, -128, 255]), 8), [-128, 127, -128, -1]
    )
    np.testing.assert_array_equal(
        centre(tf.constant([128, 127, -128, 255]), 8), [-128, 127, -128, -1]
    )
    np.testing.assert_array_equal(centre_np(np.array([0, 1, 2, 3, -1]), 1), [0, -1, 0, -1, -1])


@pytest.mark.parametrize("bits", [1, 3, 8, 16, 62])
def test_centre_inverts_wrap_on_the_centred_range(bits):
    m = 2**bits
    if bits <= 16:
        x = np.arange(-(m // 2), m // 2, dtype=np.int64)
    else:
        x = np.concatenate(
            [
                np.random.default_rng(0).integers(-(m // 2), m // 2, 10_000),
                [-(m // 2), m // 2 - 1, -1, 0, 1],
            ]
        ).astype(np.int64)
    np.testing.assert_array_equal(centre_np(wrap_np(x, bits), bits), x)
    np.testing.assert_array_equal(centre(wrap(tf.constant(x), bits), bits).numpy(), x)


def test_tf_ops_trace_into_a_graph_and_accept_narrow_integers():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
    def encode_decode(z):
        return centre(wrap(z, 12), 12)

    z = tf.constant([-5000, -2048, 2047, 2048, 7], tf.int32)
    np.testing.assert_array_equal(encode_decode(z).numpy(), [-904, -2048, 2047, -2048, 7])


def test_non_integer_inputs_are_refused():
    with pytest.raises(TypeError, match="integer"):
        wrap(tf.constant([1.5]), 8)
    with pytest.raises(TypeError, match="integer"):
        wrap(tf.constant([1], tf.uint64), 8)
    with pytest.raises(TypeError, match="integer"):
        wrap_np(np.array([1.5]), 8)
    with pytest.raises(TypeError, match="integer"):
        centre_np(np.array([2**63], np.uint64), 8)
    with pytest.raises(ValueError, match="bits"):
        wrap_np(np.array([1]), 63)


def _exact_sum_mod(vectors: np.ndarray, m: int) -> list[int]:
    return [sum(int(v) for v in column) % m for column in vectors.T]


@pytest.mark.parametrize("bits", range(1, 63))
def test_modular_sum_equals_integer_sum_mod_m(bits):
    m = 2**bits
    rng = np.random.default_rng(bits)
    # Inputs span the whole int64 range (negative and beyond M) so a naive int64 sum overflows.
    vectors = rng.integers(INT64_MIN, INT64_MAX, size=(37, 20), endpoint=True)
    vectors[0, :3] = [INT64_MAX, INT64_MIN, -1]
    total = modular_sum_np(vectors, bits)
    assert total.dtype == np.int64
    assert total.shape == (20,)
    assert [int(v) for v in total] == _exact_sum_mod(vectors, m)


@pytest.mark.parametrize("bits", [8, 32, 62])
def test_modular_sum_with_many_clients_of_already_wrapped_values(bits):
    m = 2**bits
    rng = np.random.default_rng(1000 + bits)
    # 1000 clients each sending values near M - 1: the clear sum is ~1000·2**62 at 62 bits.
    vectors = m - 1 - rng.integers(0, min(m, 1000), size=(1000, 16))
    total = modular_sum_np(vectors, bits)
    assert [int(v) for v in total] == _exact_sum_mod(vectors, m)


def test_modular_sum_recovers_a_small_signed_sum_after_centring():
    rng = np.random.default_rng(5)
    updates = rng.integers(-50, 50, size=(200, 1000))  # |sum| <= 10_000 < 2**15
    sent = wrap_np(updates, 16)
    np.testing.assert_array_equal(centre_np(modular_sum_np(sent, 16), 16), updates.sum(axis=0))


def test_modular_sum_shapes():
    np.testing.assert_array_equal(modular_sum_np(np.zeros((0, 3), np.int64), 8), [0, 0, 0])
    np.testing.assert_array_equal(modular_sum_np(np.array([200, 100, -1]), 8), 43)
    matrix = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(modular_sum_np(matrix, 4), (matrix[0] + matrix[1]) % 16)
    with pytest.raises(ValueError, match="client axis"):
        modular_sum_np(np.int64(3), 8)
