"""A TFF aggregation factory that releases the mean of client updates through a mechanism.

The whole client side (flatten, encode) is one TF computation and the whole server side (decode,
divide, unflatten) is another, joined by one federated sum: the compiled learning process stays
shallow enough for the default protobuf (see tff-stack notes), whatever the mechanism does.
Before encoding, the cohort is counted and broadcast, as secure aggregation's key-advertisement
round tells every client who takes part: distributed mechanisms split the noise by it.
`create_split` cuts the same round at its sum, for a real secure aggregation protocol to compute
it outside TFF (`tff_pipelines/secure_round.py`); `create` joins the halves with a federated sum.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from mechanisms.base import Mechanism
from secure_agg.packing import word_dtype

_SEED_MASK = (1 << 63) - 1
_CLIENT_STREAM = 1  # private seeds live in a stream of their own, apart from the shared seed


def private_seed(round_seed: tf.Tensor, update: tf.Tensor) -> tf.Tensor:
    """A seed of the client's own for this round: the round seed folded with a fingerprint of
    the client's update, so clients draw independent noise yet a run reproduces exactly.

    In a deployment each client draws from its own entropy; in simulation the spec seed stands in
    for it (keep it secret, or use seed: null, for real data).
    """
    fingerprint = tf.bitcast(tf.fingerprint(tf.bitcast(update, tf.uint8)[tf.newaxis])[0], tf.int64)
    stream = tf.random.experimental.stateless_fold_in(round_seed, _CLIENT_STREAM)
    return tf.cast(tf.random.experimental.stateless_fold_in(stream, fingerprint), tf.int64)


class PrivateMeanFactory(tff.aggregators.UnweightedAggregationFactory):
    """Unweighted mean of client updates, released by `mechanism` once per round.

    Divides by the expected cohort size, not by the number of clients that showed up: the released
    value's sensitivity must not depend on who took part (McMahan et al. 2018's fixed-denominator
    estimator; with fixed-size cohorts the two coincide). The state is the round number, from which
    the round's seeds derive together with `seed`, so runs reproduce and resume exactly.
    """

    def __init__(self, mechanism: Mechanism, expected_clients: int, seed: int):
        if expected_clients < 1:
            raise ValueError(f"expected_clients must be >= 1, got {expected_clients}")
        self._mechanism = mechanism
        self._expected_clients = expected_clients
        self._seed = int(seed) & _SEED_MASK

    def create(self, value_type) -> tff.templates.AggregationProcess:
        """The whole round in one process: encode, a federated sum, decode."""
        parts = self.create_split(value_type)

        @tff.federated_computation(
            tff.FederatedType(parts.state_type, tff.SERVER),
            tff.FederatedType(value_type, tff.CLIENTS),
        )
        def next_fn(state, value):
            uploads, diagnostics, cohort = parts.encode(state, value)
            total, summed = tff.federated_sum(uploads), tff.federated_sum(diagnostics)
            return parts.decode(state, total, summed, cohort)

        return tff.templates.AggregationProcess(parts.initialize, next_fn)

    def create_split(self, value_type, *, secure_bits: int | None = None) -> SplitAggregation:
        """The round in two halves around the sum of the clients' uploads, for a secure
        aggregation protocol that runs outside TFF (see `SplitAggregation`).

        With `secure_bits` (a distributed mechanism's modulus bits) the uploads are only the
        wrapped integer vectors, in the narrowest unsigned words that hold them, and the sum
        comes back as int64: no unwrapped vector leaves a client, as with real secure
        aggregation.
        """
        tensor_types = tff.structure.flatten(value_type)
        if not all(isinstance(t, tff.TensorType) and t.dtype == np.float32 for t in tensor_types):
            raise TypeError(f"PrivateMeanFactory aggregates float32 tensors, got {value_type}")
        shapes = [tuple(t.shape) for t in tensor_types]
        sizes = [math.prod(s) for s in shapes]
        mechanism, denominator, seed = self._mechanism, float(self._expected_clients), self._seed

        def round_seed(round_num):
            return tf.stack([tf.constant(seed, tf.int64), tf.cast(round_num, tf.int64)])

        @tff.tensorflow.computation
        def initialize():
            return np.int64(0)

        state_type = initialize.type_signature.result

        @tff.tensorflow.computation
        def one():
            return np.int32(1)

        @tff.tensorflow.computation(value_type, state_type, np.int32)
        def client_encode(value, round_num, cohort):
            flat = tf.concat([tf.reshape(t, [-1]) for t in tf.nest.flatten(value)], axis=0)
            shared = round_seed(round_num)
            encoded, diagnostics = mechanism.encode(
                flat, shared, private_seed(shared, flat), cohort
            )
            upload, rest = _secure_part(encoded)
            if secure_bits is not None:
                upload, rest = tf.cast(upload, word_dtype(secure_bits)), collections.OrderedDict()
            return upload, collections.OrderedDict(rest=rest, diagnostics=diagnostics)

        upload_type, diagnostics_type = client_encode.type_signature.result
        total_type = upload_type
        if secure_bits is not None:
            total_type = tff.TensorType(np.int64, upload_type.shape)

        @tff.tensorflow.computation(total_type, diagnostics_type, state_type, np.int32)
        def server_decode(total, summed, round_num, clients):
            if secure_bits is not None:
                encoded = collections.OrderedDict(shares=total)
            else:
                encoded = _join(total, summed["rest"])
            total, server_diagnostics = mechanism.decode(
                encoded, round_seed(round_num), round_index=round_num
            )
            mean = tf.cast(total, tf.float32) / denominator
            parts = tf.split(mean, sizes)
            result = [tf.reshape(p, s) for p, s in zip(parts, shapes, strict=True)]
            counted = tf.maximum(tf.cast(clients, tf.float32), 1.0)
            measurements = collections.OrderedDict(
                (name, value / counted) for name, value in summed["diagnostics"].items()
            )
            measurements.update(server_diagnostics)
            measurements["clients"] = clients
            return round_num + 1, result, measurements

        def encode(state, value):
            cohort = tff.federated_sum(tff.federated_eval(one, tff.CLIENTS))
            at_clients = tff.federated_broadcast(tff.federated_zip((state, cohort)))
            encoded = tff.federated_map(client_encode, (value, at_clients[0], at_clients[1]))
            return encoded[0], encoded[1], cohort

        def decode(state, total, summed, clients):
            decoded = tff.federated_map(server_decode, (total, summed, state, clients))
            return tff.templates.MeasuredProcessOutput(
                state=decoded[0], result=decoded[1], measurements=decoded[2]
            )

        @tff.tensorflow.computation(state_type)
        def skip_round(round_num):
            return round_num + 1

        return SplitAggregation(
            initialize=tff.federated_computation(
                lambda: tff.federated_eval(initialize, tff.SERVER)
            ),
            state_type=state_type,
            skip_round=skip_round,
            total_type=total_type,
            diagnostics_type=diagnostics_type,
            encode=encode,
            decode=decode,
        )


@dataclass(frozen=True)
class SplitAggregation:
    """The aggregation round cut at its sum, so that a real secure aggregation protocol (which no
    TFF runtime performs) can compute it between two TFF computations.

    `encode(state, value)` and `decode(state, total, summed, clients)` emit TFF intrinsics: call
    them while tracing a `tff.federated_computation`. `encode` returns, placed at CLIENTS, the
    uploads and the simulation diagnostics (summed in the clear), and the cohort size at SERVER.
    `decode` takes the sum of the uploads and the sum of the diagnostics of the same `clients`
    (at SERVER) and returns the aggregation output. For distributed mechanisms the uploads are
    integer vectors in [0, 2^bits) and their sum is modular; otherwise they are the encoded
    updates and their sum is plain.
    """

    initialize: tff.Computation
    state_type: tff.Type
    skip_round: tff.Computation  # state -> state after a round whose sum was never released
    total_type: tff.Type
    diagnostics_type: tff.Type
    encode: Callable[..., tuple]
    decode: Callable[..., tff.templates.MeasuredProcessOutput]


def _secure_part(encoded):
    """(what goes through the secure sum, what may be summed in the clear): the wrapped integer
    shares of a distributed mechanism (its unwrapped vector is a simulation-only diagnostic), or
    the whole encoded update of a central one."""
    if isinstance(encoded, collections.OrderedDict) and "shares" in encoded:
        rest = collections.OrderedDict((k, v) for k, v in encoded.items() if k != "shares")
        return encoded["shares"], rest
    return encoded, collections.OrderedDict()


def _join(upload, rest):
    if not rest:
        return upload
    return collections.OrderedDict(shares=upload, **rest)
