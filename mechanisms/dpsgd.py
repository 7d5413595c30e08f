"""Example-level DP on every client: local DP-SGD (Abadi et al. 2016) as TFF client work.

Each client clips every example's gradient to L2 norm C (jointly over all trainable variables),
sums the clipped gradients, adds N(0, (σ·C)²) per coordinate and divides by the nominal batch
size before a plain SGD step; the server then averages the clients' model deltas (PySyft's
federated DP-SGD, Ryffel et al. 2018). Per-example gradients are one vectorised Jacobian of the
per-example losses, as in TF Privacy's vectorised optimizers. TF Privacy's noise comes from
stateful random ops, so clipping and noise are written here with stateless ones: a run
reproduces exactly from its seed.

The sum of clipped gradients has sensitivity C when one example is added or removed, whatever
the denominator; dividing by the nominal batch size (public) rather than the batch's actual size
keeps the final, partial batch from revealing n mod B under that add/remove relation.
Regularisation losses of the model (Keras `model.losses`) are not part of the private gradient,
and layers that mix examples (batch normalisation in training mode) break per-example clipping.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from mechanisms.example_level import ModelMix
from mechanisms.float32 import float32_at_least
from mechanisms.modelmix import modelmix_starts

_SEED_MASK = (1 << 63) - 1
# Domain separation from the aggregation mechanisms, which fold small integers into the same
# (seed, round) pair: DP-SGD noise must never share randomness with theirs.
_DPSGD_STREAM = int.from_bytes(b"dp-sgd", "big")

PerExampleLoss = Callable[[Any, Any], tf.Tensor]


class NoisyGradient(NamedTuple):
    """One DP-SGD step's private gradient and what the client knows about it."""

    gradient: list[tf.Tensor]  # (Σ clipped per-example gradients + noise) / batch_size
    clipped: tf.Tensor  # int64: examples whose gradient was scaled down (or dropped)
    num_examples: tf.Tensor  # int64: examples in the batch


class LocalTraining(NamedTuple):
    """The outcome of one client's local DP-SGD."""

    update: list[tf.Tensor]  # initial − final trainable weights, zero if not finite
    num_examples: tf.Tensor  # int64
    clipped: tf.Tensor  # int64


def per_example_gradients(
    model: tff.learning.models.VariableModel, batch: Any, per_example_loss: PerExampleLoss
) -> tuple[list[tf.Tensor], tff.learning.models.BatchOutput]:
    """Each example's gradient of its own loss, stacked along a leading batch axis.

    One forward pass on the whole batch (which also updates the model's metrics, as TFF's client
    work does) and one vectorised Jacobian of the per-example losses: no loop over examples.
    `per_example_loss(labels, predictions)` must return one loss per example; for a Keras loss
    object `loss` (whose `__call__` averages over the batch) pass `loss.call`.
    """
    labels = batch["y"] if isinstance(batch, Mapping) else batch[1]
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        output = model.forward_pass(batch, training=True)
        losses = per_example_loss(labels, output.predictions)
        if losses.shape.rank == 0:
            raise ValueError(
                "per_example_loss must return one loss per example, got a scalar; "
                "for a Keras loss object pass its `call` method"
            )
        losses = tf.reduce_mean(tf.reshape(losses, [tf.shape(losses)[0], -1]), axis=1)
    gradients = tape.jacobian(losses, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return gradients, output


def clip_sum_and_noise(
    per_example: Sequence[tf.Tensor],
    *,
    l2_clip: float,
    noise_stddev: tf.Tensor | float,
    denominator: tf.Tensor | float,
    seed: tf.Tensor,
    coordinate_clip: float | None = None,
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """(Σ_i clip_C(g_i) + N(0, noise_stddev²)) / denominator, and how many g_i were clipped.

    Each g_i spans all tensors of `per_example` (leading axis = example) and is clipped jointly.
    With `coordinate_clip` (ModelMix's refined clipping, C/√p) every coordinate of the clipped
    g_i is then clamped to ±coordinate_clip: no example moves one coordinate by more than that.
    An example whose gradient is not finite contributes nothing (it is counted as clipped):
    leaving it in would let one example poison the sum, i.e. unbounded sensitivity.
    Shapes come from the static shapes where known: on an empty batch (Poisson batching) TF's
    vectorised Jacobian returns tensors whose trailing dimensions are wrong.
    """
    batch = tf.shape(per_example[0])[0]
    shapes = [_example_shape(g) for g in per_example]
    flat = [
        tf.reshape(g, [batch, tf.reduce_prod(shape)])
        for g, shape in zip(per_example, shapes, strict=True)
    ]
    finite = tf.reduce_all(
        tf.stack([tf.reduce_all(tf.math.is_finite(f), axis=1) for f in flat]), axis=0
    )
    flat = [tf.where(finite[:, tf.newaxis], f, tf.zeros_like(f)) for f in flat]
    norms = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(f), axis=1) for f in flat]))
    # Overflowing norms are infinite: their example gets weight 0, which keeps sensitivity <= C.
    scale = tf.where(finite, l2_clip / tf.maximum(norms, l2_clip), tf.zeros_like(norms))
    clipped = tf.reduce_sum(tf.cast(tf.logical_or(norms > l2_clip, ~finite), tf.int64))
    result = []
    for index, (shape, f) in enumerate(zip(shapes, flat, strict=True)):
        if coordinate_clip is None:
            summed = tf.linalg.matvec(f, scale, transpose_a=True)
        else:
            bound = tf.cast(coordinate_clip, f.dtype)
            clamped = tf.clip_by_value(f * scale[:, tf.newaxis], -bound, bound)
            summed = tf.reduce_sum(clamped, axis=0)
        summed = tf.reshape(summed, shape)
        noise = tf.random.stateless_normal(
            tf.shape(summed),
            seed=tf.random.experimental.stateless_fold_in(seed, index),
            stddev=tf.cast(noise_stddev, summed.dtype),
            dtype=summed.dtype,
        )
        result.append((summed + noise) / tf.cast(denominator, summed.dtype))
    return result, clipped


def _example_shape(per_example: tf.Tensor) -> tf.Tensor:
    static = per_example.shape[1:]
    if static.is_fully_defined():
        return tf.constant(static.as_list(), tf.int32)
    return tf.shape(per_example)[1:]


def dp_sgd_step(
    model: tff.learning.models.VariableModel,
    batch: Any,
    *,
    per_example_loss: PerExampleLoss,
    l2_clip: float,
    noise_stddev: tf.Tensor | float,
    batch_size: int,
    seed: tf.Tensor,
    coordinate_clip: float | None = None,
) -> NoisyGradient:
    """The private gradient of one batch at the model's current weights (it updates the model's
    metrics, not its weights); `noise_stddev` is σ·C. `batch_size` is the nominal (shuffled) or
    expected (Poisson) batch size: the denominator is public, whatever this batch holds, and an
    empty batch releases noise alone, as the Poisson-sampled Gaussian the accountant composes."""
    gradients, _ = per_example_gradients(model, batch, per_example_loss)
    num_examples = tf.shape(gradients[0], out_type=tf.int64)[0]
    noisy, clipped = clip_sum_and_noise(
        gradients,
        l2_clip=l2_clip,
        noise_stddev=noise_stddev,
        denominator=batch_size,
        seed=seed,
        coordinate_clip=coordinate_clip,
    )
    return NoisyGradient(noisy, clipped, num_examples)


def client_noise_seed(seed: int, round_num: tf.Tensor, data: tf.data.Dataset) -> tf.Tensor:
    """The client's own noise seed for this round: (seed, round) folded with a fingerprint of its
    first non-empty batch, so clients draw independent noise (TFF does not tell a client who it
    is) yet a run reproduces exactly.

    In a deployment each client draws from its own entropy; in simulation the spec seed stands in
    for it (keep it secret, or use seed: null, for real data).
    """
    nonempty = data.filter(lambda b: tf.shape(tf.nest.flatten(b)[0])[0] > 0)  # Poisson batches
    fingerprint = nonempty.take(1).reduce(tf.constant(0, tf.int64), lambda _, b: _fingerprint(b))
    round_seed = tf.stack(
        [tf.constant(int(seed) & _SEED_MASK, tf.int64), tf.cast(round_num, tf.int64)]
    )
    stream = tf.random.experimental.stateless_fold_in(round_seed, _DPSGD_STREAM)
    return tf.cast(tf.random.experimental.stateless_fold_in(stream, fingerprint), tf.int64)


def _fingerprint(batch: Any) -> tf.Tensor:
    parts = []
    for t in tf.nest.flatten(batch):
        if t.dtype == tf.bool:
            t = tf.cast(t, tf.uint8)
        parts.append(tf.reshape(tf.bitcast(t, tf.uint8), [-1]))
    return tf.bitcast(tf.fingerprint(tf.concat(parts, 0)[tf.newaxis])[0], tf.int64)


def local_dp_sgd(
    model: tff.learning.models.VariableModel,
    initial_weights: tff.learning.models.ModelWeights,
    data: tf.data.Dataset,
    *,
    per_example_loss: PerExampleLoss,
    l2_clip: float,
    batch_size: int,
    noise_multiplier: tf.Tensor | float,
    learning_rate: tf.Tensor | float,
    seed: tf.Tensor,
    modelmix: ModelMix | None = None,
) -> LocalTraining:
    """DP-SGD over every batch of `data`, starting from `initial_weights`; step t draws its noise
    from `seed` folded with t. Call inside a `tf.function` (variable updates must be ordered).

    With `modelmix` every step starts from ModelMix's random mix of the last two states (the
    first from the initial weights and themselves, pushed τ apart) and clips coordinates too."""
    weights = tff.learning.models.ModelWeights.from_model(model)
    tf.nest.map_structure(lambda v, w: v.assign(w), weights, initial_weights)
    noise_stddev = tf.cast(noise_multiplier, tf.float32) * l2_clip
    learning_rate = tf.cast(learning_rate, tf.float32)
    variables = model.trainable_variables
    coordinate_clip = None if modelmix is None else modelmix.coordinate_clip(l2_clip)

    def train_on_batch(totals, batch):
        num_examples, clipped, step, previous = totals
        step_seed = tf.random.experimental.stateless_fold_in(seed, step)
        noisy = dp_sgd_step(
            model,
            batch,
            per_example_loss=per_example_loss,
            l2_clip=l2_clip,
            noise_stddev=noise_stddev,
            batch_size=batch_size,
            seed=step_seed,
            coordinate_clip=coordinate_clip,
        )
        if modelmix is None:
            starts = [tf.identity(v) for v in variables]
        else:
            starts, kept = modelmix_starts(
                [tf.identity(v) for v in variables],
                previous,
                tau=modelmix.tau_over_lr * learning_rate,
                seed=step_seed,
            )
            previous = tuple(kept)
        for variable, start, gradient in zip(variables, starts, noisy.gradient, strict=True):
            variable.assign(start - learning_rate * gradient)
        totals = num_examples + noisy.num_examples, clipped + noisy.clipped, step + 1
        return (*totals, previous)

    zero = tf.constant(0, tf.int64)
    initial = (zero, zero, zero, tuple(tf.convert_to_tensor(w) for w in initial_weights.trainable))
    num_examples, clipped, _, _ = data.reduce(initial, train_on_batch)
    update = [
        initial - final
        for initial, final in zip(initial_weights.trainable, weights.trainable, strict=True)
    ]
    # Post-processing of the noisy steps only, so zeroing a diverged update costs no privacy.
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(u)) for u in update])
    update = [tf.where(finite, u, tf.zeros_like(u)) for u in update]
    return LocalTraining(update, num_examples, clipped)


def build_dpsgd_client_work(
    model_fn: Callable[[], tff.learning.models.VariableModel],
    *,
    per_example_loss: PerExampleLoss,
    learning_rate: float,
    l2_clip: float,
    noise_multiplier: float,
    batch_size: int,
    seed: int,
    modelmix: ModelMix | None = None,
) -> tff.learning.templates.ClientWorkProcess:
    """Client work where every client runs DP-SGD on its own data and returns its model delta.

    Same types as `tff.learning.templates.build_model_delta_client_work` (ClientResult with
    update = initial − final trainable weights and update_weight = 1.0, metrics summed then
    finalized under "train"), so it composes with TFF's distributors, aggregators and finalizers.
    Measurements also hold "clipped_fraction" over all clients' steps, for tuning C. Like the
    train metrics, it is computed on private data and released without noise.

    The state, at SERVER, is OrderedDict(noise_multiplier, learning_rate, round): the first two
    are the hparams (`set_hparams` applies a noise schedule), `round` advances every `next` and
    seeds that round's noise with `seed`. `per_example_loss` is the model's loss, unreduced (see
    `per_example_gradients`); `batch_size` is the nominal batch size of the clients' datasets.
    With `modelmix` the clients run ModelMix's DP-SGD (`mechanisms.modelmix`).
    """
    if not l2_clip > 0:
        raise ValueError(f"l2_clip must be > 0, got {l2_clip}")
    if not noise_multiplier >= 0:
        raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    l2_clip = float(l2_clip)

    with tf.Graph().as_default():  # keep this model's variables out of the global graph
        model = model_fn()
        aggregate_metrics = tff.learning.metrics.sum_then_finalize(model.metric_finalizers())
    data_type = tff.SequenceType(tff.types.tensorflow_to_type(model.input_spec))
    weights_type = tff.learning.models.weights_type_from_model(model)

    @tff.tensorflow.computation
    def initial_state():
        return collections.OrderedDict(
            noise_multiplier=float32_at_least(noise_multiplier),
            learning_rate=np.float32(learning_rate),
            round=np.int64(0),
        )

    state_type = initial_state.type_signature.result

    @tff.tensorflow.computation(state_type)
    def get_hparams(state):
        return collections.OrderedDict(
            noise_multiplier=state["noise_multiplier"], learning_rate=state["learning_rate"]
        )

    @tff.tensorflow.computation(state_type, get_hparams.type_signature.result)
    def set_hparams(state, hparams):
        return collections.OrderedDict(
            noise_multiplier=hparams["noise_multiplier"],
            learning_rate=hparams["learning_rate"],
            round=state["round"],
        )

    @tff.tensorflow.computation(state_type)
    def advance_round(state):
        return collections.OrderedDict(
            noise_multiplier=state["noise_multiplier"],
            learning_rate=state["learning_rate"],
            round=state["round"] + 1,
        )

    @tff.tensorflow.computation(state_type, weights_type, data_type)
    def client_update(state, initial_weights, data):
        client_model = model_fn()

        @tf.function
        def train(state, initial_weights, data):
            trained = local_dp_sgd(
                client_model,
                initial_weights,
                data,
                per_example_loss=per_example_loss,
                l2_clip=l2_clip,
                batch_size=batch_size,
                noise_multiplier=state["noise_multiplier"],
                learning_rate=state["learning_rate"],
                seed=client_noise_seed(seed, state["round"], data),
                modelmix=modelmix,
            )
            result = tff.learning.templates.ClientResult(
                update=trained.update, update_weight=tf.constant(1.0, tf.float32)
            )
            counts = collections.OrderedDict(
                clipped=trained.clipped, num_examples=trained.num_examples
            )
            return result, client_model.report_local_unfinalized_metrics(), counts

        return train(state, initial_weights, data)

    @tff.tensorflow.computation(client_update.type_signature.result[2])
    def clipped_fraction(counts):
        examples = tf.maximum(counts["num_examples"], 1)
        return tf.cast(counts["clipped"], tf.float32) / tf.cast(examples, tf.float32)

    @tff.federated_computation
    def init_fn():
        return tff.federated_eval(initial_state, tff.SERVER)

    @tff.federated_computation(
        init_fn.type_signature.result,
        tff.FederatedType(weights_type, tff.CLIENTS),
        tff.FederatedType(data_type, tff.CLIENTS),
    )
    def next_fn(state, weights, data):
        outputs = tff.federated_map(client_update, (tff.federated_broadcast(state), weights, data))
        counts = tff.federated_sum(outputs[2])
        measurements = tff.federated_zip(
            collections.OrderedDict(
                train=aggregate_metrics(outputs[1]),
                clipped_fraction=tff.federated_map(clipped_fraction, counts),
            )
        )
        return tff.templates.MeasuredProcessOutput(
            tff.federated_map(advance_round, state), outputs[0], measurements
        )

    return tff.learning.templates.ClientWorkProcess(
        init_fn, next_fn, get_hparams_fn=get_hparams, set_hparams_fn=set_hparams
    )
