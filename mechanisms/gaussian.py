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


@dataclass(frozen=True)
class GaussianMechanism:
    clip: float
    noise_multiplier: float
    name: str = "gaussian"

    def __post_init__(self):
        if not self.clip > 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")
        if not self.noise_multiplier >= 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {self.noise_multiplier}")

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

    def decode(self, total, shared_seed):
        import tensorflow as tf

        noise = tf.random.stateless_normal(
            tf.shape(total), seed=shared_seed, stddev=self.noise_stddev, dtype=total.dtype
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
            f"(noise multiplier {self.noise_multiplier:.4g})",
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "noise_multiplier": self.noise_multiplier,
            "noise_stddev": self.noise_stddev,
            "noise_added_by": "server",
            "sensitivity": "clip (add/remove one client), 2*clip (replace one client)",
        }
