"""Integer noise for distributed DP, sampled in-graph from stateless seeds.

`discrete_gaussian` is exact: every accept/reject decision is a Bernoulli with a rational
parameter decided on int64 integers, so the output law is exactly P(x) ∝ exp(-x²/(2σ²)) on Z, given
uniform random bits. Why, bottom up:

1. Bernoulli(a/n). For u uniform on [0, 2⁶³) and block = ⌊(2⁶³-1)/n⌋, the event u < n·block has a
   probability that depends on n alone, and given it, u // block is uniform on [0, n) and
   "u < a·block" is Bernoulli(a/n). A draw outside the n blocks is redrawn, or, where every
   proposal makes that same draw, rejects the proposal: a rejection with a fixed probability,
   independent of everything else, leaves the accepted law unchanged.
2. Bernoulli(exp(-γ)), γ ∈ [0, 1]: Canonne–Kamath–Steinke (CKS) 2020, Algorithm 1. Draw
   Bernoulli(γ/k) for k = 1, 2, … until one fails at k = K; P(K > j) = γʲ/j!, so
   P(K odd) = Σ_j (-γ)ʲ/j! = exp(-γ). Each Bernoulli(γ/k) is an AND of rational Bernoullis.
   For γ = 1 the first j steps succeed with probability 1/j!, so one uniform z on [0, 16!) gives
   K exactly through its rank among the integers 16!/j! (and the loop goes on if K > 16).
3. exp(-(a+b)) = exp(-a)·exp(-b): independent Bernoullis AND-ed; exp(-m·γ) is m successes.
4. The proposal is CKS Algorithm 2 with t = σ+1: U uniform on [0, t) kept with probability
   exp(-U/t), V = successes in a row of Bernoulli(exp(-1)), X = U + t·V, a random sign, and
   (negative sign, X = 0) discarded. Then P(Y = y) ∝ exp(-|y|/t).
5. CKS Algorithm 3 keeps Y with probability exp(-(|Y| - σ²/t)²/(2σ²)). With M = σ·t and
   e = |Y|·t - σ² = q·M + r (0 ≤ r < M; for e < 0, q = 0 and r = -e), the exponent is
   (q + r/M)²/2 = q²/2 + q·(r/M) + (r/M)²/2: exp(-1) ⌊q²/2⌋ times and exp(-1/2) if q is odd,
   exp(-r/M) q times, and exp(-(r/M)²/2), whose K-loop steps are Bernoulli(r/M) AND
   Bernoulli(r/M) AND Bernoulli(1/(2k)). For σ ≤ 2³⁰ every integer stays below 2⁶³ (M < 2⁶¹).

Vectorisation. A round draws proposals for the coordinates still missing one; each coordinate
keeps its first accepted proposal, which is what retrying one at a time would give. In a round,
five draws that every proposal makes settle U, the sign and most of exp(-U/t) and
exp(-(r/M)²/2); V and exp(-⌊q²/2⌋) are runs in a loop over the live proposals only; every factor
still undecided then finishes in one shared loop. Loops only ever touch undecided runs, and a
draw is assigned to a run only by what happened before it was made, so runs stay independent.

`skellam` uses TF's Poisson sampler: Knuth's product method below rate 10 and Hörmann's PTRS
above, in double precision for float64 rates. It is not exact: PTRS's log-acceptance test
subtracts terms of size λ·log λ, so its rounding error is about λ·log(λ)·2⁻⁵³ (≈ 2e-6 at
λ = 1e9, ≈ 2e-9 at λ = 1e6), a relative pmf error of the same size. Each sample may use at most
256 Philox calls (TF's reservation); PTRS accepts with probability ≥ 0.75, so exceeding it has
probability < 0.25²⁵⁶.

`randomized_round` compares x - ⌊x⌋ with a float64 uniform on a 2⁻⁵² grid, so P(round up) is
x - ⌊x⌋ rounded up to a multiple of 2⁻⁵²: unbiased to within 2⁻⁵² per coordinate.

All randomness comes from `tf.random.stateless_*` keyed by an int64[2] seed (Philox), split with
`stateless_fold_in`: same seed, same output. Fine for simulation; a deployment that claims privacy
must feed the seeds from a cryptographic source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

MAX_DISCRETE_GAUSSIAN_SCALE = 2**30
"""Largest σ for `discrete_gaussian`: keeps 2·σ·(σ+1) and (σ + V)·(σ+1) below 2⁶³."""

_INT64_MAX = 2**63 - 1
_MAX_RUN = 2**16
"""Cap on V, P(V ≥ 2¹⁶) = exp(-65536): reaching it raises instead of risking overflow."""
_MIN_PROPOSALS_PER_ROUND = 8192
_MAX_PROPOSALS_PER_COORDINATE = 32
"""When few coordinates are left, each gets several proposals (up to 32: all fail with
probability about 0.52³² ≈ 1e-9) so that the last rounds finish at once."""

_TABLE_DEPTH = 16
_TABLE_PERIOD = math.factorial(_TABLE_DEPTH)  # < 2⁴⁵: a redraw has probability < 2⁻¹⁸
_TABLE_BLOCK = _INT64_MAX // _TABLE_PERIOD
_TABLE_LIMIT = _TABLE_PERIOD * _TABLE_BLOCK
# u < block·16!/j! ⟺ the first j steps of the exp(-1) K-loop succeed; ascending for searchsorted.
_TABLE_THRESHOLDS = sorted(
    _TABLE_BLOCK * (_TABLE_PERIOD // math.factorial(j)) for j in range(1, _TABLE_DEPTH + 1)
)

Shape = tf.Tensor | Sequence[int]
Seed = tf.Tensor | Sequence[int]


@tf.autograph.experimental.do_not_convert
def discrete_gaussian(shape: Shape, scale: int | tf.Tensor, seed: Seed) -> tf.Tensor:
    """Exact discrete Gaussian, int64: P(x) ∝ exp(-x²/(2·scale²)); scale 0 gives zeros."""
    sigma = tf.convert_to_tensor(scale)
    if not sigma.dtype.is_integer:
        raise TypeError(f"discrete_gaussian scale must be an integer, got {sigma.dtype.name}")
    sigma = tf.cast(sigma, tf.int64)
    seed = tf.cast(seed, tf.int64)
    shape = tf.cast(shape, tf.int64)
    checks = [
        tf.debugging.assert_non_negative(sigma, message="discrete_gaussian scale must be >= 0"),
        tf.debugging.assert_less_equal(
            sigma,
            _int64(MAX_DISCRETE_GAUSSIAN_SCALE),
            message=f"discrete_gaussian supports scale <= {MAX_DISCRETE_GAUSSIAN_SCALE}",
        ),
    ]
    with tf.control_dependencies(checks):
        count = tf.reduce_prod(shape)
    flat = tf.cond(
        (sigma > 0) & (count > 0),
        lambda: _discrete_gaussian_flat(count, sigma, seed),
        lambda: tf.zeros([count], tf.int64),
    )
    return tf.reshape(flat, shape)


@tf.autograph.experimental.do_not_convert
def skellam(shape: Shape, mean: float | tf.Tensor, seed: Seed) -> tf.Tensor:
    """Poisson(mean) - Poisson(mean), int64, variance 2·mean; mean 0 gives zeros."""
    mean = tf.cast(mean, tf.float64)
    seed = tf.cast(seed, tf.int64)
    with tf.control_dependencies(
        [
            tf.debugging.assert_non_negative(mean, message="skellam mean must be >= 0"),
            tf.debugging.assert_all_finite(mean, message="skellam mean must be finite"),
        ]
    ):
        mean = tf.identity(mean)
    plus = tf.random.stateless_poisson(shape, _fold(seed, 0), lam=mean, dtype=tf.int64)
    minus = tf.random.stateless_poisson(shape, _fold(seed, 1), lam=mean, dtype=tf.int64)
    return plus - minus


@tf.autograph.experimental.do_not_convert
def randomized_round(x: tf.Tensor, seed: Seed) -> tf.Tensor:
    """⌊x⌋ + Bernoulli(x - ⌊x⌋) as int64: unbiased, and always ⌊x⌋ or ⌈x⌉."""
    x = tf.cast(x, tf.float64)  # exact for float32 input
    seed = tf.cast(seed, tf.int64)
    with tf.control_dependencies(
        [
            tf.debugging.assert_less(
                tf.abs(x),
                tf.constant(2.0**62, tf.float64),
                message="randomized_round needs finite input with |x| < 2**62",
            )
        ]
    ):
        floor = tf.math.floor(x)
    up = tf.random.stateless_uniform(tf.shape(x), seed, dtype=tf.float64) < x - floor
    return tf.cast(floor, tf.int64) + tf.cast(up, tf.int64)


def _fold(seed: tf.Tensor, data: int | tf.Tensor) -> tf.Tensor:
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(data, tf.int64))


def _int64(value: int | tf.Tensor) -> tf.Tensor:
    return tf.cast(value, tf.int64)


def _length(x: tf.Tensor) -> tf.Tensor:
    # Not tf.size: in TF 2.14 Grappler constant-folds Size of a shape-relaxed while-loop variable
    # to its first-iteration value.
    return tf.shape(x, out_type=tf.int64)[0]


def _uniform63(shape: tf.Tensor | Sequence[int | tf.Tensor], seed: tf.Tensor) -> tf.Tensor:
    """Uniform int64 on [0, 2⁶³)."""
    bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.int64)
    return tf.bitwise.bitwise_and(bits, _int64(_INT64_MAX))


def _block(n: tf.Tensor) -> tf.Tensor:
    """Width of each of n equal blocks in [0, 2⁶³-1) (see the module docstring, step 1)."""
    return _int64(_INT64_MAX) // n


def _stitch(
    count: tf.Tensor, positions: tf.Tensor, values: tf.Tensor, default: int | bool
) -> tf.Tensor:
    """A length-`count` vector of `default` with values[i] at positions[i] (a fast scatter)."""
    return tf.dynamic_stitch(
        [tf.range(tf.cast(count, tf.int32)), tf.cast(positions, tf.int32)],
        [tf.fill([count], tf.cast(default, values.dtype)), values],
    )


def _none_of(rows: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    """Length-`count` mask, False exactly at `rows` (which may repeat)."""
    count = tf.cast(count, tf.int32)
    hits = tf.math.bincount(tf.cast(rows, tf.int32), minlength=count, maxlength=count)
    return tf.equal(hits, 0)


def _growing_array(element_shape: list[int | None]) -> tf.TensorArray:
    """Per-step int64 results of a loop; concat() works even after zero steps."""
    return tf.TensorArray(
        tf.int64, size=0, dynamic_size=True, infer_shape=False, element_shape=element_shape
    )


def _exp_neg_one_trials(u: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Bernoulli(exp(-1)) trials from u uniform on [0, 2⁶³): (valid, success, past_table).

    Valid u (below the table's blocks) give K, the step at which the K-loop stops, as one plus
    the number of thresholds above u; success is K odd. If K > 16 the trial is undecided.
    """
    above = _TABLE_DEPTH - tf.reshape(
        tf.searchsorted(
            tf.constant(_TABLE_THRESHOLDS, tf.int64),
            tf.reshape(u, [-1]),
            side="right",
            out_type=tf.int32,
        ),
        tf.shape(u),
    )
    return u < _TABLE_LIMIT, tf.equal(above % 2, 0), tf.equal(above, _TABLE_DEPTH)


def _exp_neg_continue(
    first_k: tf.Tensor, c: tf.Tensor, fractions: tf.Tensor, seed: tf.Tensor
) -> tf.Tensor:
    """Finishes CKS Algorithm 1 runs for Bernoulli(exp(-γ)), γ = (a₀/b₀)·(a₁/b₁)/c ≤ 1.

    `fractions` is [n, 4] = (a₀, a₁, b₀, b₁) per run. Run i is known to have succeeded at steps
    1..first_k[i]-1; step k succeeds with Bernoulli(γ/k) = Bernoulli(a₀/b₀) AND Bernoulli(a₁/b₁)
    AND Bernoulli(1/(c·k)). A step whose draw falls outside its blocks is retried. Returns, per
    run, whether it stopped at an odd K.
    """
    count = _length(first_k)
    # Columns: position, k, a₀, a₁, 1, b₀, b₁, c. One boolean_mask keeps the live runs.
    state = tf.concat(
        [
            tf.stack([tf.range(count), first_k], axis=1),
            fractions[:, :2],
            tf.ones([count, 1], tf.int64),
            fractions[:, 2:],
            c[:, None],
        ],
        axis=1,
    )
    odd = _growing_array([None])
    k_column = tf.one_hot(1, 8, dtype=tf.int64)

    def body(step, state, odd):
        k = state[:, 1]
        # Callers' c·k must not overflow; P(a run reaches k = 2³¹) = 1/(2³¹ - 1)!.
        tf.debugging.assert_less(tf.reduce_max(k), _int64(2**31))
        numerator = state[:, 2:5]
        denominator = state[:, 5:8] * (1 + (k - 1)[:, None] * _int64([0, 0, 1]))
        block = _block(denominator)
        u = _uniform63(tf.shape(denominator), _fold(seed, step))
        valid = tf.reduce_all(u < denominator * block, axis=1)
        success = tf.reduce_all(u < numerator * block, axis=1)
        stop = valid & tf.logical_not(success)
        odd = odd.write(step, tf.boolean_mask(state[:, 0], stop & tf.equal(k % 2, 1)))
        state += k_column * tf.cast(valid & success, tf.int64)[:, None]
        return step + 1, tf.boolean_mask(state, tf.logical_not(stop)), odd

    *_, odd = tf.while_loop(
        lambda step, state, odd: tf.shape(state)[0] > 0,
        body,
        (tf.constant(0, tf.int32), state, odd),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, 8]), None),
    )
    odd = odd.concat()
    return _stitch(count, odd, tf.ones_like(odd, dtype=tf.bool), False)


def _exp_neg_one_runs(limit: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Successes in a row of Bernoulli(exp(-1)) per element, stopped at `limit`.

    `run == limit` is Bernoulli(exp(-limit)); with an unreachable limit, P(run ≥ v) = exp(-v).
    Each loop step makes two table trials per live run (the second counts only after a first
    success); trials past the table (probability 1/16! < 2⁻⁴⁴ each) finish after the loop.
    """
    count = _length(limit)
    start = tf.where(limit > 0)[:, 0]
    zeros = tf.zeros_like(start)
    # Columns: position, limit, run so far, 1 if a trial went past the table.
    state = tf.stack([start, tf.gather(limit, start), zeros, zeros], axis=1)
    finished = _growing_array([None, 4])

    def body(step, state, finished):
        valid, success, past = _exp_neg_one_trials(
            _uniform63(tf.stack([_length(state), _int64(2)]), _fold(seed, step))
        )
        decided = valid & tf.logical_not(past)
        first_ok = decided[:, 0] & success[:, 0]
        run = state[:, 2] + tf.cast(first_ok, tf.int64)
        second_counts = first_ok & (run < state[:, 1])
        second_ok = second_counts & decided[:, 1] & success[:, 1]
        run += tf.cast(second_ok, tf.int64)
        failed = (decided[:, 0] & tf.logical_not(success[:, 0])) | (
            second_counts & decided[:, 1] & tf.logical_not(success[:, 1])
        )
        went_past = (valid[:, 0] & past[:, 0]) | (second_counts & valid[:, 1] & past[:, 1])
        state += (run - state[:, 2])[:, None] * _int64([0, 0, 1, 0])
        state += tf.cast(went_past, tf.int64)[:, None] * _int64([0, 0, 0, 1])
        done = failed | went_past | tf.equal(run, state[:, 1])
        finished = finished.write(step, tf.boolean_mask(state, done))
        return step + 1, tf.boolean_mask(state, tf.logical_not(done)), finished

    *_, finished = tf.while_loop(
        lambda step, state, finished: tf.shape(state)[0] > 0,
        body,
        (tf.constant(0, tf.int32), state, finished),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, 4]), None),
    )
    finished = tf.reshape(finished.concat(), [-1, 4])
    runs = _stitch(count, finished[:, 0], finished[:, 2], 0)

    def finish_runs_past_table() -> tf.Tensor:
        past = tf.boolean_mask(finished, finished[:, 3] > 0)
        n = _length(past)
        ok = _exp_neg_continue(
            tf.fill([n], _int64(_TABLE_DEPTH + 1)),
            tf.ones([n], tf.int64),
            tf.ones([n, 4], tf.int64),
            _fold(seed, -1),
        )
        # After a success the run starts afresh for what is left of its limit.
        left = tf.where(ok, past[:, 1] - past[:, 2] - 1, 0)
        rest = tf.cast(ok, tf.int64) + _slow_exp_neg_one_runs(left, _fold(seed, -2))
        return tf.tensor_scatter_nd_add(runs, past[:, :1], rest)

    return tf.cond(tf.reduce_any(finished[:, 3] > 0), finish_runs_past_table, lambda: runs)


def _slow_exp_neg_one_runs(limit: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """`_exp_neg_one_runs` with a full K-loop per trial; for the rare runs past the table."""
    count = _length(limit)

    def body(step, live, runs):
        ok = _exp_neg_continue(
            tf.ones([count], tf.int64),
            tf.ones([count], tf.int64),
            tf.ones([count, 4], tf.int64),
            _fold(seed, step),
        )
        runs += tf.cast(live & ok, tf.int64)
        return step + 1, live & ok & (runs < limit), runs

    *_, runs = tf.while_loop(
        lambda step, live, runs: tf.reduce_any(live),
        body,
        (tf.constant(0, tf.int32), limit > 0, tf.zeros([count], tf.int64)),
    )
    return runs


def _discrete_gaussian_round(
    count: tf.Tensor, sigma: tf.Tensor, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """`count` i.i.d. CKS proposals; returns (indices, values) of the accepted ones, ascending."""
    t = sigma + 1
    sigma_t = sigma * t
    one = _int64(1)

    # Five draws every proposal makes, with fixed moduli (so a draw outside its blocks can
    # simply reject the proposal): U and the sign, the first two steps of exp(-U/t), and the
    # first step of exp(-(r/M)²/2).
    moduli = (2 * t, t, 2 * t, sigma_t, 2 * sigma_t)
    blocks = [_block(m) for m in moduli]
    draws = [_uniform63([count], _fold(seed, i)) for i in range(len(moduli))]
    alive = tf.ones([count], tf.bool)
    for draw, modulus, block in zip(draws, moduli, blocks, strict=True):
        alive &= draw < modulus * block
    w, d1, d2, c1, c2 = draws

    # CKS Algorithm 2, discrete Laplace(t).
    u = tf.bitwise.right_shift(w // blocks[0], one)  # w // block is uniform on [0, 2t)
    d_step1 = d1 < u * blocks[1]  # Bernoulli(U/t)
    d_step2 = d2 < u * blocks[2]  # Bernoulli(U/(2t))
    alive &= tf.logical_not(d_step1) | d_step2  # K = 2 is even: reject
    # From here on, only the proposals still alive.
    rows = tf.where(alive)[:, 0]
    n = _length(rows)
    u, d_unfinished = tf.gather(u, rows), tf.gather(d_step1 & d_step2, rows)
    negative = tf.equal(tf.bitwise.bitwise_and(tf.gather(w, rows) // blocks[0], one), one)
    c1, c2 = tf.gather(c1, rows), tf.gather(c2, rows)
    v = _exp_neg_one_runs(tf.fill([n], _int64(_MAX_RUN)), _fold(seed, 5))
    with tf.control_dependencies(
        [tf.debugging.assert_less(v, _int64(_MAX_RUN), message="geometric run hit its cap")]
    ):
        alive = tf.logical_not(negative & tf.equal(u, 0) & tf.equal(v, 0))  # no -0

    # CKS Algorithm 3: keep |Y| = u + t·v with probability exp(-(q + r/M)²/2).
    e_minus_v_m = (u + v) * t - sigma * sigma  # e = v·M + this, and this ≥ -σ² > -M
    e_nonnegative = (v > 0) | (e_minus_v_m >= 0)
    e_quotient = e_minus_v_m // sigma_t
    q = tf.where(e_nonnegative, v + e_quotient, 0)
    r = tf.where(e_nonnegative, e_minus_v_m - e_quotient * sigma_t, -e_minus_v_m)
    # exp(-(r/M)²/2): step 1 is Bernoulli((r/M)²/2) = Bernoulli(r/M) AND Bernoulli(r/(2M)).
    c_unfinished = (c1 < r * blocks[3]) & (c2 < r * blocks[4])

    # exp(-⌊q²/2⌋) as a run of exp(-1) trials: it fails fast, and q ≥ 2 is common only for
    # small σ. Applied first, as it rejects most of the proposals far from the mode.
    far = tf.where(alive & (q > 0))[:, 0]
    half_q_squared = tf.gather(q * q // 2, far)
    short = _exp_neg_one_runs(half_q_squared, _fold(seed, 6)) < half_q_squared
    alive &= _none_of(tf.boolean_mask(far, short), n)
    far = tf.boolean_mask(far, tf.logical_not(short))
    q_far = tf.gather(q, far)

    # Every other factor still undecided, as independent runs AND-ed per proposal: exp(-U/t)
    # from step 3, exp(-(r/M)²/2) from step 2, q runs of exp(-r/M), and exp(-1/2) for odd q.
    d_rows = tf.where(alive & d_unfinished)[:, 0]
    c_rows = tf.where(alive & c_unfinished)[:, 0]
    f_rows = tf.repeat(far, q_far)
    h_rows = tf.boolean_mask(far, tf.equal(q_far % 2, 1))
    groups = (d_rows, c_rows, f_rows, h_rows)
    sizes = [_length(g) for g in groups]

    def per_run(*values: int | tf.Tensor) -> tf.Tensor:
        return tf.concat([tf.fill([m], _int64(x)) for m, x in zip(sizes, values, strict=True)], 0)

    u_d = tf.gather(u, d_rows)
    r_c, r_f = tf.gather(r, c_rows), tf.gather(r, f_rows)
    ones_d, ones_f, ones_h = (tf.ones([m], tf.int64) for m in (sizes[0], sizes[2], sizes[3]))
    fractions = tf.stack(
        [
            tf.concat([u_d, r_c, r_f, ones_h], 0),
            tf.concat([ones_d, r_c, ones_f, ones_h], 0),
            per_run(t, sigma_t, sigma_t, 1),
            per_run(1, sigma_t, 1, 1),
        ],
        axis=1,
    )
    kept = _exp_neg_continue(per_run(3, 2, 1, 1), per_run(1, 2, 1, 2), fractions, _fold(seed, 7))
    alive &= _none_of(tf.boolean_mask(tf.concat(groups, axis=0), tf.logical_not(kept)), n)
    accepted = tf.where(alive)[:, 0]
    magnitude = tf.gather(u + t * v, accepted)
    values = tf.where(tf.gather(negative, accepted), -magnitude, magnitude)
    return tf.gather(rows, accepted), values


def _discrete_gaussian_flat(count: tf.Tensor, sigma: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Rounds of proposals until every coordinate has one accepted (its first, if several)."""
    done_positions, done_values = _growing_array([None]), _growing_array([None])

    def body(round_, pending, done_positions, done_values):
        missing = _length(pending)
        per_coordinate = tf.clip_by_value(
            -(-_MIN_PROPOSALS_PER_ROUND // missing), 1, _MAX_PROPOSALS_PER_COORDINATE
        )
        indices, values = _discrete_gaussian_round(
            per_coordinate * missing, sigma, _fold(seed, round_)
        )
        # Proposal j·missing + i belongs to pending[i]. Indices ascend, so a coordinate's first
        # accepted proposal is its first appearance.
        owner = tf.cast(indices % missing, tf.int32)
        first = tf.math.unsorted_segment_min(
            tf.range(tf.shape(indices)[0]), owner, tf.cast(missing, tf.int32)
        )
        got = first < tf.shape(indices)[0]
        done_positions = done_positions.write(round_, tf.boolean_mask(pending, got))
        done_values = done_values.write(round_, tf.gather(values, tf.boolean_mask(first, got)))
        return (
            round_ + 1,
            tf.boolean_mask(pending, tf.logical_not(got)),
            done_positions,
            done_values,
        )

    *_, done_positions, done_values = tf.while_loop(
        lambda round_, pending, *_: tf.shape(pending)[0] > 0,
        body,
        (tf.constant(0, tf.int32), tf.range(count), done_positions, done_values),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]), None, None),
    )
    # Every position appears exactly once.
    return tf.dynamic_stitch([tf.cast(done_positions.concat(), tf.int32)], [done_values.concat()])
