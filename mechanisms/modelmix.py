"""ModelMix (Xiao, Wan & Devadas 2022): DP-SGD that steps from a random mix of its last two states.

Each step keeps w_{k-1} and w_{k-2}. Where a coordinate's two values are closer than τ, both are
pushed apart until their gap is exactly τ (each by half of what is missing; a tie picks its
direction at random). The step then starts from α·w_{k-1} + (1 − α)·w_{k-2} with α ~ U[0, 1]
drawn per coordinate, and subtracts η times the noisy gradient. The mix is uniform over an
interval at least τ wide, so, in gradient units, the noise every coordinate sees is the Gaussian
convolved with a uniform of width at least τ/η: the extra randomness the ModelMix accountant
(`mechanisms.accounting.modelmix`) credits. The refined clipping that goes with it (clamping
every coordinate of a clipped gradient to ±C/√p) lives in `mechanisms.dpsgd`.

The randomness must stay secret (it is the privacy), so it comes from the client's own noise
seed, as the Gaussian noise does.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_federated as tff

# Folded into a step's seed so the mixing draws never share randomness with the gradient noise.
_MIX_STREAM = int.from_bytes(b"modelmix", "big") & ((1 << 63) - 1)
# The accountant credits a gap of at least τ; float32 rounding of the separated pair could leave
# it a few ulps short, so pairs are pushed this much further apart.
_GAP_MARGIN = 1e-5


def separate(
    current: tf.Tensor, previous: tf.Tensor, *, tau: tf.Tensor | float, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """(current, previous) moved apart, coordinate by coordinate, until they differ by >= τ.

    Pairs already τ apart are left alone. The others keep their midpoint and get a gap of
    exactly τ, in the direction of their difference; equal values pick a direction at random.
    """
    tau = tf.cast(tau, current.dtype) * (1 + _GAP_MARGIN)
    gap = current - previous
    coin = tf.random.stateless_uniform(tf.shape(gap), seed=seed, dtype=current.dtype)
    ones = tf.ones_like(gap)
    direction = tf.where(tf.not_equal(gap, 0), tf.sign(gap), tf.where(coin < 0.5, -ones, ones))
    half_missing = tf.maximum(tau - tf.abs(gap), 0.0) / 2
    return current + direction * half_missing, previous - direction * half_missing


def mix(current: tf.Tensor, previous: tf.Tensor, *, seed: tf.Tensor) -> tf.Tensor:
    """α·current + (1 − α)·previous with α ~ U[0, 1] independently per coordinate."""
    alpha = tf.random.stateless_uniform(tf.shape(current), seed=seed, dtype=current.dtype)
    return previous + alpha * (current - previous)


def modelmix_starts(
    current: Sequence[tf.Tensor],
    previous: Sequence[tf.Tensor],
    *,
    tau: tf.Tensor | float,
    seed: tf.Tensor,
) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
    """Where the next step starts (the random mix) and the state that becomes w_{k-2} after it
    (the separated w_{k-1}), for every variable. `seed` is the step's own seed."""
    stream = tf.random.experimental.stateless_fold_in(seed, _MIX_STREAM)
    starts, kept = [], []
    for index, (now, before) in enumerate(zip(current, previous, strict=True)):
        variable_seed = tf.random.experimental.stateless_fold_in(stream, index)
        ties, alphas = tf.unstack(tf.random.experimental.stateless_split(variable_seed, 2))
        now, before = separate(now, before, tau=tau, seed=ties)
        starts.append(mix(now, before, seed=alphas))
        kept.append(now)
    return starts, kept


def build_modelmix_finalizer(
    optimizer: tff.learning.optimizers.Optimizer,
    weights_type: tff.StructType,
    *,
    tau: float,
    seed: int,
) -> tff.learning.templates.FinalizerProcess:
    """The server's ModelMix: each round the optimizer steps from a random mix of the last two
    global models (pushed at least `tau` apart) instead of from the latest one.

    This mapping of ModelMix's two states onto federated rounds is this project's, not the
    paper's. It is post-processing of what the clients release, so it claims no privacy; the
    clients' ModelMix is what the accountant credits. The first round mixes the initial model
    with itself (pushed τ apart), as a client's first step does. State: the optimizer's state,
    the previous global trainable weights and the round, so a resumed run mixes the same way.
    """
    optimizer_finalizer = tff.learning.templates.build_apply_optimizer_finalizer(
        optimizer, weights_type
    )
    trainable_type = weights_type.trainable

    @tff.tensorflow.computation
    def initial_extra():
        zeros = tf.nest.map_structure(
            lambda t: tf.zeros(t.shape, t.dtype), tff.types.type_to_tf_tensor_specs(trainable_type)
        )
        return collections.OrderedDict(previous=zeros, round=tf.constant(0, tf.int64))

    extra_type = initial_extra.type_signature.result

    @tff.tensorflow.computation(extra_type, weights_type)
    def mixed_start(extra, weights):
        current = list(weights.trainable)
        first = tf.equal(extra["round"], 0)
        previous = [tf.where(first, c, p) for c, p in zip(current, extra["previous"], strict=True)]
        round_seed = tf.stack([tf.constant(int(seed) & ((1 << 63) - 1), tf.int64), extra["round"]])
        starts, kept = modelmix_starts(current, previous, tau=tau, seed=round_seed)
        moved = tff.learning.models.ModelWeights(starts, list(weights.non_trainable))
        after = collections.OrderedDict(previous=kept, round=extra["round"] + 1)
        return moved, after

    @tff.federated_computation
    def init_fn():
        return tff.federated_zip(
            collections.OrderedDict(
                optimizer=optimizer_finalizer.initialize(),
                modelmix=tff.federated_eval(initial_extra, tff.SERVER),
            )
        )

    @tff.federated_computation(
        init_fn.type_signature.result,
        tff.FederatedType(weights_type, tff.SERVER),
        tff.FederatedType(trainable_type, tff.SERVER),
    )
    def next_fn(state, weights, update):
        moved, extra = tff.federated_map(mixed_start, (state.modelmix, weights))
        stepped = optimizer_finalizer.next(state.optimizer, moved, update)
        new_state = tff.federated_zip(
            collections.OrderedDict(optimizer=stepped.state, modelmix=extra)
        )
        return tff.templates.MeasuredProcessOutput(new_state, stepped.result, stepped.measurements)

    state_type = init_fn.type_signature.result.member
    hparams_type = optimizer_finalizer.get_hparams.type_signature.result

    @tff.tensorflow.computation(state_type)
    def get_hparams(state):
        return optimizer.get_hparams(state["optimizer"])

    @tff.tensorflow.computation(state_type, hparams_type)
    def set_hparams(state, hparams):
        return collections.OrderedDict(
            optimizer=optimizer.set_hparams(state["optimizer"], hparams),
            modelmix=state["modelmix"],
        )

    return tff.learning.templates.FinalizerProcess(
        init_fn, next_fn, get_hparams_fn=get_hparams, set_hparams_fn=set_hparams
    )
