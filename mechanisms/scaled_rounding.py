"""The client pipeline DDG and Skellam share (Kairouz et al. 2021; Agarwal et al. 2021): rotate,
clip to L2 norm `clip`, scale by s, round to integers (conditionally when beta > 0), add integer
noise, wrap into Z_M. The server unwraps the modular sum, divides by s and rotates back.

Subclasses say which integer noise the clients add and what one round costs; the accounting is in
`mechanisms.accounting.ddg`, the scale and sensitivity in `mechanisms.scaling`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from mechanisms.accounting import RdpCurve, RoundPrivacy, Sampling
from mechanisms.accounting.bisection import least_passing_in
from mechanisms.accounting.ddg import DISTRIBUTED_ORDERS
from mechanisms.discretized import (
    decode_secure_sum,
    derived_seed,
    noise_inflation,
    run_epsilon,
    to_secure_sum,
)
from mechanisms.rotation import Rotation, padded_dimension
from mechanisms.scaling import sensitivity_bounds, sum_wrap_probability, tff_scale

MAX_NOISE_MULTIPLIER = 1e4
_MIN_NOISE_MULTIPLIER = 1e-4
_RELATIVE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ScaledRoundingMechanism:
    """Parameters both mechanisms share; `population` bounds how many clients can take part."""

    clip: float
    noise_multiplier: float  # of the sum's noise, relative to clip
    scale: float  # s = 1/gamma
    clients: int  # expected cohort: the sum carries the noise of this many clients
    population: int
    bits: int
    rotation: Rotation
    dim: int
    beta: float = 0.0
    max_dropout: float = 0.0  # clients provision noise so that this fraction may drop out
    name: ClassVar[str]
    noise_name: ClassVar[str]
    accounting: ClassVar[str]

    def __post_init__(self):
        for field in ("clip", "noise_multiplier", "scale"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)}")
        if not 1 <= self.clients <= self.population:
            raise ValueError("need 1 <= clients <= population")

    @property
    def padded_dim(self) -> int:
        return padded_dimension(self.dim, self.rotation)

    @property
    def local_stddev(self) -> float:
        """One client's noise std for the expected cohort, unscaled: z·clip/√n."""
        return self.noise_multiplier * self.clip / math.sqrt(self.clients)

    @property
    def sensitivity(self) -> tuple[float, float]:
        """(L2, L1) of one client's rounded vector, unscaled."""
        return sensitivity_bounds(
            clip=self.clip, scale=self.scale, dim=self.padded_dim, beta=self.beta
        )

    def wrap_probability(self) -> float:
        return sum_wrap_probability(
            bits=self.bits,
            signal_l2=self.scale * self.clip,
            clients=self.clients,
            dim=self.padded_dim,
            noise_variance=self.clients
            * (self.local_stddev * self.scale) ** 2
            * noise_inflation(self.max_dropout),
        )

    def encode(self, update, shared_seed, private_seed, cohort):
        import tensorflow as tf

        from mechanisms.rotation import rotate

        x = tf.cast(rotate(update, shared_seed, self.rotation), tf.float64)
        norm = tf.norm(x)
        x = x * tf.minimum(self.clip / tf.maximum(norm, 1e-300), 1.0)
        rounding_seed, noise_seed = (derived_seed(private_seed, i) for i in (0, 1))
        z = self._round(x * self.scale, rounding_seed)
        z = z + self._noise(z.shape, noise_seed, cohort)
        return to_secure_sum(z, self.bits), {
            "clipped": tf.cast(norm > self.clip, tf.float32),
            "update_norm": tf.cast(norm, tf.float32),
        }

    def _round(self, y, seed):
        """Randomized rounding; with beta > 0, redrawn until the norm bound the accountant pays
        for holds (each draw fails with probability at most beta)."""
        import tensorflow as tf

        from mechanisms.noise import randomized_round

        if self.beta == 0:
            return randomized_round(y, seed)
        limit = self.sensitivity[0] * self.scale

        def too_long(attempt, z):
            return tf.norm(tf.cast(z, tf.float64)) > limit

        def redraw(attempt, z):
            fresh = derived_seed(seed, attempt)
            return attempt + 1, randomized_round(y, fresh)

        first = (tf.constant(1, tf.int64), randomized_round(y, seed))
        return tf.while_loop(too_long, redraw, first)[1]

    def _noise(self, shape, seed, cohort):
        raise NotImplementedError

    def decode(self, total, shared_seed, round_index=0):
        del round_index  # the same noise every round
        return decode_secure_sum(
            total,
            shared_seed,
            bits=self.bits,
            scale=self.scale,
            rotation=self.rotation,
            dim=self.dim,
        )

    def round_rdp(self, rate: float) -> np.ndarray:
        raise NotImplementedError

    def round_privacy(self, sampling: Sampling) -> RoundPrivacy:
        return RdpCurve(DISTRIBUTED_ORDERS, tuple(self.round_rdp(sampling.rate)))

    def steps(self) -> list[str]:
        rounding = "conditional " if self.beta > 0 else ""
        return [
            f"client: {self.rotation} rotation to {self.padded_dim} coordinates, clip to L2 "
            f"norm {self.clip:g}, scale by {self.scale:.4g}",
            f"client: {rounding}randomized rounding to integers",
            f"client: add {self.noise_name} noise (noise multiplier {self.noise_multiplier:.4g} "
            f"for {self.clients} clients, shared among those present{self._dropout_note()})",
            f"client: wrap mod 2^{self.bits}",
            f"server: centre the sum, divide by {self.scale:.4g}, undo the {self.rotation} "
            "rotation",
        ]

    def _dropout_note(self) -> str:
        return f", provisioned for {self.max_dropout:g} dropping" if self.max_dropout else ""

    def describe(self) -> dict[str, Any]:
        l2, l1 = self.sensitivity
        return {
            "clip": self.clip,
            "noise_multiplier": self.noise_multiplier,
            "local_noise_stddev": self.local_stddev,
            "scale": self.scale,
            "gamma": 1 / self.scale,
            "beta": self.beta,
            "max_dropout": self.max_dropout,
            "bits": self.bits,
            "rotation": self.rotation,
            "dimension": self.dim,
            "padded_dimension": self.padded_dim,
            "sensitivity_l2": l2,
            "sensitivity_l1": l1,
            "predicted_wrap_probability": self.wrap_probability(),
            "noise_added_by": f"clients ({self.noise_name} shares; the secure sum carries the "
            f"noise of {self.clients} clients whoever takes part{self._dropout_note()})",
            "sensitivity": "L2 after rotation, clipping to clip and rounding at scale s",
            "accounting": self.accounting,
        }


def scaled_rounding_mechanism(
    build: Callable[..., ScaledRoundingMechanism],
    *,
    clip: float,
    bits: int,
    rotation: Rotation,
    dim: int,
    clients: int,
    population: int,
    rounds: int,
    delta: float,
    wrap_probability: float,
    beta: float,
    gamma: float | None = None,
    noise_multiplier: float | None = None,
    target_epsilon: float | None = None,
    max_dropout: float = 0.0,
) -> ScaledRoundingMechanism:
    """DDG or Skellam (`build` is the class) for a run, with TFF's scale unless gamma is given,
    and the noise multiplier calibrated to `target_epsilon` by bisection when not given.

    The scale depends on the noise multiplier, so each step of the bisection recomputes the scale
    and the sensitivity before computing epsilon.
    """
    if (noise_multiplier is None) == (target_epsilon is None):
        raise ValueError("give exactly one of noise_multiplier and target_epsilon")
    padded = padded_dimension(dim, rotation)
    rate = clients / population

    def with_noise(z: float) -> ScaledRoundingMechanism:
        with warnings.catch_warnings():  # a scale <= 1 is the caller's to report, once
            warnings.simplefilter("ignore")
            scale = 1 / gamma if gamma is not None else fitted_scale(z)
        return build(
            clip=clip,
            noise_multiplier=z,
            scale=scale,
            clients=clients,
            population=population,
            bits=bits,
            rotation=rotation,
            dim=dim,
            beta=beta,
            max_dropout=max_dropout,
        )

    def fitted_scale(z: float) -> float:
        return tff_scale(  # with the noise clients add to provision for dropouts
            bits=bits,
            clip=clip,
            noise_multiplier=z * math.sqrt(noise_inflation(max_dropout)),
            clients=clients,
            dim=padded,
            wrap_probability=wrap_probability,
        )

    if noise_multiplier is not None:
        return with_noise(noise_multiplier)

    def meets_target(z: float) -> bool:
        rdp = with_noise(z).round_rdp(rate)
        return run_epsilon(DISTRIBUTED_ORDERS, rdp, rounds, delta)[0] <= target_epsilon

    z = least_passing_in(
        meets_target,
        _MIN_NOISE_MULTIPLIER,
        MAX_NOISE_MULTIPLIER,
        relative_tolerance=_RELATIVE_TOLERANCE,
    )
    if z is None:
        raise ValueError(
            f"no noise multiplier up to {MAX_NOISE_MULTIPLIER:g} reaches epsilon "
            f"{target_epsilon:g} in {rounds} rounds: with the scale fitted to the modulus, "
            "more noise means coarser rounding, whose cost does not shrink; allow more "
            "epsilon or fewer rounds, or give more bits"
        )
    return with_noise(z)
