"""Central Gaussian mechanism: DP-FedAvg (McMahan et al., ICLR 2018).

Each client clips its update to L2 norm `clip`; the server adds N(0, (z·clip)²) to the sum.
Adding or removing one client moves the sum by at most `clip`, replacing one by at most 2·clip.
TensorFlow is imported inside the TF methods only, so the privacy calculator never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dp_accounting

from mechanisms.accounting import RoundPrivacy, Sampling
from mechanisms.float32 import float32_at_least


@dataclass(frozen=True)
class GaussianMechanism:
    clip: float
    noise_multiplier: float
    # A noise schedule: the multiplier of each round (index 0 = first round; the last repeats).
    # The server follows it by the round index; `noise_multiplier` is what the accountant charges
    # for the round at hand (see PrivacyPlan.mechanism_at). Empty: noise_multiplier every round.
    scheduled: tuple[float, ...] = ()
    name: str = "gaussian"

    def __post_init__(self):
        if not self.clip > 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")
        if not self.noise_multiplier >= 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {self.noise_multiplier}")
        if any(not z > 0 for z in self.scheduled):
            raise ValueError(f"scheduled noise multipliers must be > 0, got {self.scheduled}")

    @property
    def noise_stddev(self) -> float:
        return self.noise_multiplier * self.clip

    def encode(self, update, shared_seed, private_seed, cohort):
        import tensorflow as tf

        del shared_seed, private_seed, cohort  # clipping is deterministic; the server adds noise
        norm = tf.norm(update)
        scale = tf.minimum(1.0, self.clip / tf.maximum(norm, 1e-12))
        return update * scale, {
            "clipped": tf.cast(norm > self.clip, tf.float32),
            "update_norm": norm,
        }

    def decode(self, total, shared_seed, round_index=0):
        import tensorflow as tf

        if self.scheduled:
            table = tf.constant([float32_at_least(z * self.clip) for z in self.scheduled])
            last = len(self.scheduled) - 1
            stddev = tf.gather(table, tf.minimum(tf.cast(round_index, tf.int32), last))
        else:
            stddev = float32_at_least(self.noise_stddev)
        noise = tf.random.stateless_normal(
            tf.shape(total),
            seed=shared_seed,
            stddev=tf.cast(stddev, total.dtype),
            dtype=total.dtype,
        )
        return total + noise, {}

    def round_privacy(self, sampling: Sampling) -> RoundPrivacy:
        return sampling.round_event(self.release_event(sampling.relation))

    def release_event(self, relation: dp_accounting.NeighboringRelation) -> dp_accounting.DpEvent:
        if self.noise_multiplier == 0:
            return dp_accounting.NonPrivateDpEvent()
        if relation == dp_accounting.NeighboringRelation.REPLACE_ONE:
            return dp_accounting.GaussianDpEvent(self.noise_multiplier / 2)
        return dp_accounting.GaussianDpEvent(self.noise_multiplier)

    def steps(self) -> list[str]:
        return [
            f"client: clip to L2 norm {self.clip:g}",
            f"server: add N(0, {self.noise_stddev:g}²) per coordinate "
            f"(noise multiplier {self.noise_multiplier:.4g}"
            + (", then as scheduled round by round)" if self.scheduled else ")"),
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "noise_multiplier": self.noise_multiplier,
            "noise_stddev": self.noise_stddev,
            "noise_added_by": "server",
            "sensitivity": "clip (add/remove one client), 2*clip (replace one client)",
        }
