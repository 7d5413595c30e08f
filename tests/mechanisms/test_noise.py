import math

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from mechanisms import noise

P_VALUE_FLOOR = 1e-4  # fixed seeds: a pass or a fail is reproducible, never flaky
SAMPLES = 40_000


def _seed(*values: int) -> tf.Tensor:
    return tf.constant(values, tf.int64)


# The samplers run inside traced computations (eager while-loops would only slow the tests down),
# traced once each.
_SHAPE, _SEED = tf.TensorSpec([None], tf.int64), tf.TensorSpec([2], tf.int64)
_traced_discrete_gaussian = tf.function(
    noise.discrete_gaussian, input_signature=[_SHAPE, tf.TensorSpec([], tf.int64), _SEED]
)
_traced_skellam = tf.function(
    noise.skellam, input_signature=[_SHAPE, tf.TensorSpec([], tf.float64), _SEED]
)


def _discrete_gaussian(shape: list[int], sigma: int, seed: tf.Tensor) -> tf.Tensor:
    return _traced_discrete_gaussian(
        tf.constant(shape, tf.int64), tf.constant(sigma, tf.int64), seed
    )


def _skellam(shape: list[int], mean: float, seed: tf.Tensor) -> tf.Tensor:
    return _traced_skellam(tf.constant(shape, tf.int64), tf.constant(mean, tf.float64), seed)


def _discrete_gaussian_pmf(sigma: float, half_width: int) -> tuple[np.ndarray, np.ndarray]:
    support = np.arange(-half_width, half_width + 1)
    weights = np.exp(-(support.astype(np.float64) ** 2) / (2 * sigma**2))
    return support, weights / weights.sum()


def _skellam_pmf(mean: float) -> tuple[np.ndarray, np.ndarray]:
    half_width = int(12 * math.sqrt(2 * mean)) + 20
    support = np.arange(-half_width, half_width + 1)
    pmf = scipy.stats.skellam.pmf(support, mean, mean)
    return support, pmf / pmf.sum()


def _chi_square_p_value(
    samples: np.ndarray, support: np.ndarray, pmf: np.ndarray, max_bins: int = 40
) -> float:
    """Goodness of fit on near-equiprobable bins of the exact pmf; tails merge into end bins."""
    cdf = np.cumsum(pmf)
    cuts = np.unique(np.searchsorted(cdf, np.linspace(0, 1, max_bins + 1)[1:-1]))
    # Bin i holds support values up to and including support[cuts[i]].
    upper = support[cuts]
    expected = len(samples) * np.diff(np.concatenate([[0.0], cdf[cuts], [1.0]]))
    observed = np.bincount(np.searchsorted(upper, samples), minlength=len(expected))
    assert expected.min() >= 5, expected.min()
    return scipy.stats.chisquare(observed, expected).pvalue


def _sample_discrete_gaussian(sigma: int, seed: tf.Tensor, count: int = SAMPLES) -> np.ndarray:
    return _discrete_gaussian([count], sigma, seed).numpy()


@pytest.mark.parametrize("sigma", [1, 3, 50, 2000, 10**6])
def test_discrete_gaussian_matches_exact_pmf_and_not_a_wrong_scale(sigma):
    samples = _sample_discrete_gaussian(sigma, _seed(11, sigma))
    half_width = 8 * sigma + 10
    assert np.abs(samples).max() < half_width
    assert _chi_square_p_value(samples, *_discrete_gaussian_pmf(sigma, half_width)) > P_VALUE_FLOOR
    # The test has power: 5% off in scale is rejected.
    wrong = _discrete_gaussian_pmf(1.05 * sigma, half_width)
    assert _chi_square_p_value(samples, *wrong) < P_VALUE_FLOOR


def test_discrete_gaussian_at_the_largest_supported_scale():
    sigma = noise.MAX_DISCRETE_GAUSSIAN_SCALE
    samples = _sample_discrete_gaussian(sigma, _seed(5, 5), count=20_000).astype(np.float64)
    # Compared with the continuous Gaussian: at this scale the two differ by far less than
    # sampling error.
    assert scipy.stats.kstest(samples / sigma, "norm").pvalue > P_VALUE_FLOOR


@pytest.mark.parametrize("mean", [0.5, 6.0, 1000.0, 1e7])
def test_skellam_matches_exact_pmf_and_not_a_wrong_mean(mean):
    samples = _skellam([SAMPLES], mean, _seed(13, int(mean))).numpy()
    assert _chi_square_p_value(samples, *_skellam_pmf(mean)) > P_VALUE_FLOOR
    assert _chi_square_p_value(samples, *_skellam_pmf(1.1 * mean)) < P_VALUE_FLOOR


def test_skellam_variance_at_a_large_mean():
    mean = 1e9
    samples = _skellam([SAMPLES], mean, _seed(2, 9)).numpy().astype(np.float64)
    # Sample variance of 40k draws has relative standard error sqrt(2/40k) ≈ 0.7%.
    assert samples.var() / (2 * mean) == pytest.approx(1.0, abs=0.03)
    assert abs(samples.mean()) < 5 * math.sqrt(2 * mean / SAMPLES)


@pytest.mark.parametrize(
    "sample",
    [
        lambda seed: _discrete_gaussian([3, 4], 7, seed),
        lambda seed: _skellam([3, 4], 7.5, seed),
        lambda seed: noise.randomized_round(tf.fill([3, 4], 0.5), seed),
    ],
    ids=["discrete_gaussian", "skellam", "randomized_round"],
)
def test_same_seed_same_output_and_int64_of_the_requested_shape(sample):
    first = sample(_seed(1, 2))
    assert first.dtype == tf.int64
    assert tuple(first.shape) == (3, 4)
    np.testing.assert_array_equal(first.numpy(), sample(_seed(1, 2)).numpy())
    assert not np.array_equal(first.numpy(), sample(_seed(1, 3)).numpy())
    assert not np.array_equal(first.numpy(), sample(_seed(2, 2)).numpy())


def test_scale_must_be_an_integer():
    with pytest.raises(TypeError):
        noise.discrete_gaussian([3], 2.5, _seed(1, 1))
    # Any integer dtype will do.
    assert noise.discrete_gaussian([3], tf.constant(0, tf.int32), _seed(1, 1)).dtype == tf.int64


def test_zero_scale_and_zero_mean_give_zeros():
    np.testing.assert_array_equal(_discrete_gaussian([5], 0, _seed(1, 1)).numpy(), 0)
    np.testing.assert_array_equal(noise.discrete_gaussian([5], 0, _seed(1, 1)).numpy(), 0)
    np.testing.assert_array_equal(_skellam([5], 0.0, _seed(1, 1)).numpy(), 0)


@pytest.mark.parametrize("count", [1, 2, 3, 17])
def test_few_coordinates(count):
    for sigma in (1, 40):
        samples = _discrete_gaussian([count], sigma, _seed(count, sigma)).numpy()
        assert samples.shape == (count,)
        assert np.abs(samples).max() < 10 * sigma


def test_empty_shape_gives_an_empty_tensor():
    assert tuple(_discrete_gaussian([0], 3, _seed(1, 1)).shape) == (0,)
    assert tuple(_discrete_gaussian([2, 0], 3, _seed(1, 1)).shape) == (2, 0)


def test_scale_and_mean_may_be_computed_in_graph():
    @tf.function
    def sample(variance, seed):
        sigma = tf.cast(tf.round(tf.sqrt(variance)), tf.int64)
        return (
            noise.discrete_gaussian([20_000], sigma, seed),
            noise.skellam([20_000], variance / 2, seed),
        )

    for variance in (100.0, 10_000.0):
        gaussian, skellam = sample(tf.constant(variance, tf.float64), _seed(4, 4))
        for draws in (gaussian, skellam):
            assert draws.numpy().std() == pytest.approx(math.sqrt(variance), rel=0.03)
    assert sample.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda: _discrete_gaussian([3], -1, _seed(1, 1)),
        lambda: _discrete_gaussian([3], noise.MAX_DISCRETE_GAUSSIAN_SCALE + 1, _seed(1, 1)),
        lambda: _skellam([3], -0.5, _seed(1, 1)),
        lambda: _skellam([3], float("nan"), _seed(1, 1)),
        lambda: noise.randomized_round(tf.constant([float("inf")]), _seed(1, 1)),
    ],
    ids=["negative scale", "scale too large", "negative mean", "nan mean", "infinite input"],
)
def test_rejects_bad_arguments(call):
    with pytest.raises(tf.errors.InvalidArgumentError):
        call()


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_randomized_round_is_unbiased_and_only_rounds_down_or_up(dtype):
    x = np.array([0.3, -1.7, 2.5, -0.5, 1e6 + 0.25, 7.0], np.float64)
    repeats = 50_000
    rounded = noise.randomized_round(tf.constant(np.tile(x, repeats), dtype), _seed(8, 8)).numpy()
    rounded = rounded.reshape(repeats, len(x))
    assert rounded.dtype == np.int64
    assert np.all((rounded == np.floor(x)) | (rounded == np.ceil(x)))
    fraction = x - np.floor(x)
    standard_error = np.sqrt(fraction * (1 - fraction) / repeats)
    assert np.all(np.abs(rounded.mean(axis=0) - x) <= 5 * standard_error + 1e-12)
    np.testing.assert_array_equal(rounded[:, -1], 7)  # integers stay put


def test_exact_bernoulli_exp_neg_building_block():
    # exp(-γ) for γ = (a₀/b₀)·(a₁/b₁)/c, and the law of runs already known to reach step 3.
    count = 200_000
    gamma = (3 / 7) * (5 / 6) / 2
    fractions = tf.constant([[3, 5, 7, 6]] * count, tf.int64)
    ones = tf.ones([count], tf.int64)
    exp_neg = tf.function(noise._exp_neg_continue)
    kept = exp_neg(ones, 2 * ones, fractions, _seed(3, 1)).numpy()
    standard_error = math.sqrt(math.exp(-gamma) * (1 - math.exp(-gamma)) / count)
    assert abs(kept.mean() - math.exp(-gamma)) < 5 * standard_error

    # Given K ≥ 3: P(K = k) ∝ γ^(k-1)/(k-1)! - γ^k/k!, k ≥ 3; odd K means "keep".
    tail = {
        k: gamma ** (k - 1) / math.factorial(k - 1) - gamma**k / math.factorial(k)
        for k in range(3, 30)
    }
    p_odd = sum(p for k, p in tail.items() if k % 2) / sum(tail.values())
    kept = exp_neg(3 * ones, 2 * ones, fractions, _seed(3, 2)).numpy()
    standard_error = math.sqrt(p_odd * (1 - p_odd) / count)
    assert abs(kept.mean() - p_odd) < 5 * standard_error


def test_runs_of_exp_neg_one_are_geometric_and_respect_their_limit():
    count = 200_000
    exp_neg_one_runs = tf.function(noise._exp_neg_one_runs)
    runs = exp_neg_one_runs(tf.fill([count], tf.constant(10**6, tf.int64)), _seed(6, 1)).numpy()
    support = np.arange(0, 60)
    pmf = np.exp(-support) * (1 - math.exp(-1))
    assert _chi_square_p_value(runs, support, pmf / pmf.sum(), max_bins=12) > P_VALUE_FLOOR

    limits = np.tile([0, 1, 2, 3], count // 4)
    runs = exp_neg_one_runs(tf.constant(limits, tf.int64), _seed(6, 2)).numpy()
    assert np.all(runs <= limits)
    for limit in (1, 2, 3):
        reached = (runs[limits == limit] == limit).mean()
        expected = math.exp(-limit)
        standard_error = math.sqrt(expected * (1 - expected) / (count // 4))
        assert abs(reached - expected) < 5 * standard_error
