"""One round of a mechanism without TFF: encode each client eagerly, add up, decode."""

import numpy as np
import tensorflow as tf

SHARED_SEED = tf.constant([11, 7], tf.int64)


def release(mechanism, updates, *, cohort=None, seed=0):
    """(decoded float sum, averaged client diagnostics, server diagnostics) for `updates`."""
    cohort = len(updates) if cohort is None else cohort
    encode = tf.function(mechanism.encode)  # graph mode, as in a TFF computation
    encodings, diagnostics = [], []
    for i, update in enumerate(updates):
        private = tf.constant([seed, 1000 + i], tf.int64)
        encoded, stats = encode(
            tf.constant(update, tf.float32), SHARED_SEED, private, tf.constant(cohort, tf.int32)
        )
        encodings.append(encoded)
        diagnostics.append({k: float(v) for k, v in stats.items()})
    total = tf.nest.map_structure(lambda *parts: tf.add_n(list(parts)), *encodings)
    decoded, server = tf.function(mechanism.decode)(total, SHARED_SEED)
    averaged = {k: np.mean([d[k] for d in diagnostics]) for k in diagnostics[0]}
    return decoded.numpy(), averaged, {k: np.asarray(v) for k, v in server.items()}
