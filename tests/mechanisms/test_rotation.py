import math

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from mechanisms.rotation import MAX_PADDED_DIMENSION, padded_dimension, rotate, unrotate

KINDS = ["hadamard", "dft"]
SEED = tf.constant([20240611, 7], tf.int64)


def _vector(dim: int, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).normal(size=dim), tf.float32)


def _signs(dim: int, kind: str, seed: tf.Tensor) -> np.ndarray:
    """The diagonal of D, read back through an independent inverse T⁻¹ of the transform T.

    Without padding, rotate(1) = T·D·1 = T·diag(D), so T⁻¹·rotate(1) = diag(D).
    """
    padded = padded_dimension(dim, kind)
    assert padded == dim
    ones = np.ones(dim, np.float32)
    rotated = rotate(tf.constant(ones), seed, kind).numpy()
    if kind == "hadamard":
        return scipy.linalg.hadamard(padded) @ rotated / math.sqrt(padded)
    half = padded // 2
    values = np.fft.ifft(rotated[:half] + 1j * rotated[half:]) * math.sqrt(half)
    return np.concatenate([values.real, values.imag])


@pytest.mark.parametrize(
    ("dim", "kind", "expected"),
    [
        (1, "hadamard", 1),
        (2, "hadamard", 2),
        (3, "hadamard", 4),
        (1024, "hadamard", 1024),
        (1025, "hadamard", 2048),
        (25450, "hadamard", 32768),
        (1, "dft", 2),
        (2, "dft", 2),
        (3, "dft", 4),
        (25450, "dft", 25450),
        (25451, "dft", 25452),
    ],
)
def test_padded_dimension(dim, kind, expected):
    assert padded_dimension(dim, kind) == expected


def test_padded_dimension_refuses_bad_sizes_and_kinds():
    with pytest.raises(ValueError, match="dimension 0"):
        padded_dimension(0, "hadamard")
    with pytest.raises(ValueError, match="MAX_PADDED_DIMENSION"):
        padded_dimension(MAX_PADDED_DIMENSION + 1, "hadamard")
    with pytest.raises(ValueError, match="MAX_PADDED_DIMENSION"):
        padded_dimension(MAX_PADDED_DIMENSION + 1, "dft")
    assert padded_dimension(MAX_PADDED_DIMENSION, "hadamard") == MAX_PADDED_DIMENSION
    with pytest.raises(ValueError, match="unknown rotation 'haar'"):
        padded_dimension(4, "haar")
    with pytest.raises(TypeError):
        padded_dimension(4.0, "dft")


@pytest.mark.parametrize("dim", [1, 2, 4, 8, 64])
def test_hadamard_matches_dense_matrix_times_signs(dim):
    x = _vector(dim, seed=dim)
    signs = _signs(dim, "hadamard", SEED)
    np.testing.assert_allclose(np.abs(signs), 1.0, atol=1e-5)
    dense = scipy.linalg.hadamard(dim) @ (np.sign(signs) * x.numpy()) / math.sqrt(dim)
    np.testing.assert_allclose(rotate(x, SEED, "hadamard").numpy(), dense, atol=1e-5)


def test_hadamard_pads_with_zeros_before_rotating():
    x = _vector(5)
    padded = np.concatenate([x.numpy(), np.zeros(3, np.float32)])
    np.testing.assert_allclose(
        rotate(x, SEED, "hadamard").numpy(),
        rotate(tf.constant(padded), SEED, "hadamard").numpy(),
        atol=1e-6,
    )


@pytest.mark.parametrize("dim", [2, 6, 10])
def test_dft_matches_numpy_fft_of_signed_complex_halves(dim):
    x = _vector(dim, seed=dim).numpy()
    signs = np.sign(_signs(dim, "dft", SEED))
    half = dim // 2
    signed = signs * x
    spectrum = np.fft.fft(signed[:half] + 1j * signed[half:]) / math.sqrt(half)
    expected = np.concatenate([spectrum.real, spectrum.imag])
    np.testing.assert_allclose(rotate(tf.constant(x), SEED, "dft").numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dim", [1, 2, 3, 5, 8, 1000, 25450])
def test_round_trip_recovers_input_and_preserves_norm(kind, dim):
    x = _vector(dim, seed=dim)
    rotated = rotate(x, SEED, kind)
    assert rotated.dtype == tf.float32
    assert rotated.shape == [padded_dimension(dim, kind)]
    assert np.linalg.norm(rotated.numpy()) == pytest.approx(np.linalg.norm(x.numpy()), rel=1e-5)
    back = unrotate(rotated, SEED, kind, dim)
    assert back.shape == [dim]
    np.testing.assert_allclose(back.numpy(), x.numpy(), rtol=0, atol=2e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_signs_vary_per_coordinate(kind):
    signs = np.sign(_signs(1024, kind, SEED))
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert 0.45 < np.mean(signs > 0) < 0.55  # 1024 fair coins: 6 standard deviations wide


@pytest.mark.parametrize("kind", KINDS)
def test_rotation_is_a_function_of_the_seed(kind):
    x = _vector(1000)
    first = rotate(x, SEED, kind).numpy()
    np.testing.assert_array_equal(first, rotate(x, SEED, kind).numpy())
    other = rotate(x, tf.constant([20240611, 8], tf.int64), kind).numpy()
    assert not np.allclose(first, other, atol=1e-3)
    # The wrong seed does not invert the rotation.
    wrong = unrotate(rotate(x, SEED, kind), SEED + 1, kind, 1000).numpy()
    assert not np.allclose(wrong, x.numpy(), atol=1e-3)


def test_hadamard_spreads_a_spike_evenly():
    spike = tf.one_hot(0, 25450, dtype=tf.float32)
    rotated = rotate(spike, SEED, "hadamard").numpy()
    np.testing.assert_allclose(np.abs(rotated), 1 / math.sqrt(32768), rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_works_inside_tf_function_with_a_tensor_seed(kind):
    dim = 300

    @tf.function
    def round_trip(x, seed):
        return unrotate(rotate(x, seed, kind), seed, kind, dim)

    spec = tf.TensorSpec([dim], tf.float32)
    concrete = round_trip.get_concrete_function(spec, tf.TensorSpec([2], tf.int64))
    x = _vector(dim)
    for seed in ([1, 2], [3, 4]):
        out = concrete(x, tf.constant(seed, tf.int64))
        np.testing.assert_allclose(out.numpy(), x.numpy(), atol=2e-6)
    eager = rotate(x, tf.constant([1, 2], tf.int64), kind).numpy()
    graph = tf.function(lambda x, s: rotate(x, s, kind))(x, tf.constant([1, 2], tf.int64))
    np.testing.assert_allclose(graph.numpy(), eager, atol=1e-6)


def test_rejects_inputs_it_cannot_rotate():
    with pytest.raises(TypeError, match="float32"):
        rotate(tf.zeros([4], tf.float64), SEED, "hadamard")
    with pytest.raises(ValueError, match="1-D"):
        rotate(tf.zeros([2, 2]), SEED, "hadamard")
    with pytest.raises(ValueError, match="static length"):
        tf.function(lambda x: rotate(x, SEED, "dft")).get_concrete_function(
            tf.TensorSpec([None], tf.float32)
        )
    with pytest.raises(TypeError, match="seed"):
        rotate(tf.zeros([4]), tf.constant([1.0, 2.0]), "hadamard")
    with pytest.raises(ValueError, match="produces 8"):
        unrotate(tf.zeros([4]), SEED, "hadamard", dim=5)
