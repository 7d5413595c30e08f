"""What SMM, DDG and Skellam share: integer vectors in Z_M on the clients, a modular secure sum,
and the server's way back to a real-valued sum.

Each client sends `shares` (its integer vector wrapped into [0, M)), which is all a secure
aggregation needs. It also sends the unwrapped vector under `exact`, a simulation-only diagnostic:
the server uses its sum only to count the coordinates that wrapped, never to decode.
"""

from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np

from mechanisms.accounting import RDP_ORDERS, RdpCurve, epsilons_from_rdp
from mechanisms.rotation import Rotation
from secure_agg import modular

# floor(0.29 * 100) must be 29, though 0.29 * 100 == 28.999999999999996 in floating point.
_ROUNDING_SLACK = 1e-9


def derived_seed(seed, stream):
    """An independent int64[2] seed for `stream` (an int or int64 scalar), from `seed`."""
    import tensorflow as tf

    return tf.cast(tf.random.experimental.stateless_fold_in(seed, stream), tf.int64)


def to_secure_sum(z, bits: int) -> collections.OrderedDict:
    """A client's contribution to the simulated modular secure sum (int64 vectors)."""
    return collections.OrderedDict(shares=modular.wrap(z, bits), exact=z)


def decode_secure_sum(
    summed, shared_seed, *, bits: int, scale: float, rotation: Rotation, dim: int
) -> tuple[Any, dict[str, Any]]:
    """The server's side: centre the modular sum, divide by the clients' scale, undo the
    rotation; and, when the simulation also summed the unwrapped vectors, count the coordinates
    that wrapped around M (a real secure aggregation has no such sum to compare with)."""
    import tensorflow as tf

    from mechanisms.rotation import unrotate

    total = modular.centre(summed["shares"], bits)
    diagnostics = {}
    if "exact" in summed:
        different = tf.not_equal(total, summed["exact"])
        diagnostics["wrapped_coordinates"] = tf.reduce_sum(tf.cast(different, tf.int32))
    real = tf.cast(tf.cast(total, tf.float64) / scale, tf.float32)
    return unrotate(real, shared_seed, rotation, dim), diagnostics


def fewest_survivors(cohort: int, max_dropout: float) -> int:
    """The fewest of `cohort` clients whose sum may still be released when up to a fraction
    `max_dropout` of them may drop out: cohort - floor(max_dropout·cohort), at least 1.

    Clients split the noise by this number (see `clients_share`), so every sum of at least this
    many of them carries the accounted noise; secure aggregation refuses to release fewer.
    """
    return max(1, cohort - math.floor(max_dropout * cohort + _ROUNDING_SLACK))


def clients_share(cohort, expected_clients: int, max_dropout: float = 0.0):
    """The fraction of the accounted noise one client adds when `cohort` clients take part: any
    `fewest_survivors` of them then carry exactly the noise of `expected_clients` (never less,
    whoever shows up or drops). The same arithmetic as `fewest_survivors`, in TF."""
    import tensorflow as tf

    m = tf.cast(cohort, tf.float64)
    survivors = m - tf.floor(max_dropout * m + _ROUNDING_SLACK)
    return tf.constant(float(expected_clients), tf.float64) / tf.maximum(survivors, 1.0)


def noise_inflation(max_dropout: float) -> float:
    """Bound on the noise variance clients add relative to the accounted noise when they provision
    for dropouts: cohort / fewest_survivors <= 1 / (1 - max_dropout). The modulus must hold it."""
    if not 0 <= max_dropout < 1:
        raise ValueError(f"max_dropout must be in [0, 1), got {max_dropout}")
    return 1.0 / (1.0 - max_dropout)


def curve_up_to(orders, rdp, max_order: int) -> RdpCurve:
    """An RDP curve valid only at orders <= max_order (inf above): SMM clips coordinates for the
    optimal order, and the bound holds for that order and the ones below it only."""
    orders = np.asarray(orders, dtype=np.float64)
    rdp = np.where(orders <= max_order, np.asarray(rdp, dtype=np.float64), math.inf)
    return RdpCurve(tuple(orders), tuple(rdp))


def run_epsilon(orders, round_rdp, rounds: int, delta: float) -> tuple[float, float]:
    """(epsilon, optimal order) of `rounds` rounds of a curve, at the orders the run's ledger
    uses, so that calibration and the ledger agree to the last digit."""
    on_ledger_orders = RdpCurve(tuple(float(a) for a in orders), tuple(round_rdp)).at(RDP_ORDERS)
    with np.errstate(invalid="ignore", over="ignore"):
        epsilon, order = epsilons_from_rdp(RDP_ORDERS, rounds * on_ledger_orders, delta)
    return float(epsilon), float(order)
