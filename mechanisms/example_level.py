"""Example-level DP: what DP-SGD on every client (`mechanisms.dpsgd`) costs one example per round.

The unit is one example and neighbouring datasets add or remove one. In a round the example's
client runs `local_epochs` epochs of DP-SGD whose batches partition its examples, so each epoch
releases one Gaussian sum containing the example (noise multiplier σ for sensitivity C): Yu et
al. (2019)'s parallel composition within an epoch, accounted exactly by RDP. Across rounds the
example's client takes part with probability q when cohorts are Poisson-sampled (amplification
by sampling); with fixed-size cohorts no amplification is claimed. Everything the client sends
afterwards (its model delta, averaged by the server) is post-processing.

Shuffling into batches, as the run loop does, is how Yu et al. and PySyft train; strictly, adding
an example shifts the later batch boundaries, which the partition argument does not cover
(Chua et al. 2024 quantify the gap against Poisson-sampled batches). privacy.json says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dp_accounting

from mechanisms.accounting import RoundPrivacy, Sampling
from mechanisms.accounting.zcdp import epsilon_from_rho, gaussian_rho

UNIT = "example"
NEIGHBOURING = "add/remove one example"


@dataclass(frozen=True)
class ExampleLevelDpSgd:
    clip: float  # of each example's gradient, jointly over all trainable variables
    noise_multiplier: float  # of the noisy gradient sum, relative to clip
    local_epochs: int
    batch_size: int
    learning_rate: float
    name: str = "dpsgd"

    def __post_init__(self):
        if not self.clip > 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")
        if not self.noise_multiplier > 0:
            raise ValueError(f"noise_multiplier must be > 0, got {self.noise_multiplier}")
        if self.local_epochs < 1 or self.batch_size < 1:
            raise ValueError("local_epochs and batch_size must be >= 1")

    @property
    def relation(self) -> dp_accounting.NeighboringRelation:
        return dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE

    def round_privacy(self, sampling: Sampling) -> RoundPrivacy:
        epochs = dp_accounting.SelfComposedDpEvent(
            dp_accounting.GaussianDpEvent(self.noise_multiplier), self.local_epochs
        )
        if sampling.kind == "poisson":
            return dp_accounting.PoissonSampledDpEvent(sampling.rate, epochs)
        return epochs

    def zcdp(self, sampling: Sampling, rounds: int, delta: float) -> dict[str, Any] | None:
        """Yu et al.'s zCDP figure for `rounds` rounds, shown beside the exact RDP one: ρ =
        1/(2σ²) per local epoch, added up. Only for fixed cohorts (no sampling amplification,
        where zCDP is exact for the Gaussian); for Poisson cohorts their ρ would rest on an
        approximation of the sampled composition, so none is given."""
        if sampling.kind != "fixed":
            return None
        rho = rounds * self.local_epochs * gaussian_rho(self.noise_multiplier)
        return {
            "rho": rho,
            "epsilon": epsilon_from_rho(rho, delta),
            "note": "zCDP (Yu et al. 2019): rho = 1/(2 sigma^2) per local epoch, added over "
            "epochs and rounds, epsilon = rho + 2 sqrt(rho ln(1/delta)); the epsilon reported "
            "above is the exact RDP conversion, which is tighter",
        }

    def steps(self) -> list[str]:
        return [
            f"client: DP-SGD for {self.local_epochs} epoch(s), batches of {self.batch_size}: clip "
            f"each example's gradient to L2 norm {self.clip:g}, add N(0, "
            f"({self.noise_multiplier:.4g}·{self.clip:g})²) to the batch sum, divide by "
            f"{self.batch_size}, step with learning rate {self.learning_rate:g}",
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "noise_multiplier": self.noise_multiplier,
            "noise_stddev": self.noise_multiplier * self.clip,
            "local_epochs": self.local_epochs,
            "batch_size": self.batch_size,
            "noise_added_by": "clients (DP-SGD on every client, per batch)",
            "sensitivity": "clip per batch sum (add/remove one example)",
        }
