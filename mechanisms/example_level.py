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

With Poisson batches (`batching="poisson"`) a client of n examples takes ceil(n/B) steps per
epoch, each a Poisson sample at rate B/n: Abadi et al.'s sampled Gaussian, composed over the
steps. Rates differ between clients of different sizes, and an example's guarantee is that of
its own client, so a round is charged the worst client's curve. dp_accounting cannot nest the
batch sampling inside a sampling of clients, so no amplification by client sampling is claimed
then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import dp_accounting
import numpy as np

from mechanisms.accounting import RDP_ORDERS, RdpCurve, RoundPrivacy, Sampling
from mechanisms.accounting.rdp import rdp_vector
from mechanisms.accounting.zcdp import epsilon_from_rho, event_rho

Batching = Literal["shuffle", "poisson"]
UNIT = "example"
NEIGHBOURING = "add/remove one example"


@dataclass(frozen=True)
class ExampleLevelDpSgd:
    clip: float  # of each example's gradient, jointly over all trainable variables
    noise_multiplier: float  # of the noisy gradient sum, relative to clip
    local_epochs: int
    batch_size: int
    learning_rate: float
    batching: Batching = "shuffle"
    client_sizes: tuple[int, ...] = ()  # examples per client; poisson batching needs them
    name: str = "dpsgd"

    def __post_init__(self):
        if not self.clip > 0:
            raise ValueError(f"clip must be > 0, got {self.clip}")
        if not self.noise_multiplier > 0:
            raise ValueError(f"noise_multiplier must be > 0, got {self.noise_multiplier}")
        if self.local_epochs < 1 or self.batch_size < 1:
            raise ValueError("local_epochs and batch_size must be >= 1")
        if self.batching not in ("shuffle", "poisson"):
            raise ValueError(f"batching must be 'shuffle' or 'poisson', got {self.batching!r}")
        if self.batching == "poisson" and not self.client_sizes:
            raise ValueError("poisson batching is accounted per client: give client_sizes")
        if any(n < 1 for n in self.client_sizes):
            raise ValueError(f"every client needs at least one example, got {self.client_sizes}")

    @property
    def relation(self) -> dp_accounting.NeighboringRelation:
        return dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE

    def round_privacy(self, sampling: Sampling) -> RoundPrivacy:
        if self.batching == "poisson":
            return self._worst_client_round()
        epochs = dp_accounting.SelfComposedDpEvent(
            dp_accounting.GaussianDpEvent(self.noise_multiplier), self.local_epochs
        )
        if sampling.kind == "poisson":
            return dp_accounting.PoissonSampledDpEvent(sampling.rate, epochs)
        return epochs

    def client_round(self, examples: int) -> dp_accounting.DpEvent:
        """One round of Poisson-batched DP-SGD for a client holding `examples` examples."""
        step = dp_accounting.PoissonSampledDpEvent(
            min(1.0, self.batch_size / examples),
            dp_accounting.GaussianDpEvent(self.noise_multiplier),
        )
        return dp_accounting.SelfComposedDpEvent(
            step, poisson_steps(examples, self.batch_size) * self.local_epochs
        )

    def _worst_client_round(self) -> RoundPrivacy:
        """The round of the client whose RDP is largest at every order; if no client is, the
        pointwise maximum of their curves (an RdpCurve, valid for every client)."""
        events = [self.client_round(n) for n in sorted(set(self.client_sizes))]
        if len(events) == 1:
            return events[0]
        curves = np.array([rdp_vector(e, self.relation, RDP_ORDERS) for e in events])
        worst = curves.max(axis=0)
        for event, curve in zip(events, curves, strict=True):
            if np.all(curve >= worst):
                return event
        return RdpCurve(orders=RDP_ORDERS, rdp=tuple(worst))

    def zcdp(self, sampling: Sampling, rounds: int, delta: float) -> dict[str, Any] | None:
        """Yu et al.'s zCDP figure for `rounds` rounds, shown beside the exact RDP one: ρ =
        1/(2σ²) per local epoch, added up. Only for fixed cohorts (no sampling amplification,
        where zCDP is exact for the Gaussian); for Poisson cohorts their ρ would rest on an
        approximation of the sampled composition, so none is given; nor for Poisson batches."""
        if sampling.kind != "fixed" or self.batching != "shuffle":
            return None
        rho = rounds * event_rho(self.round_privacy(sampling)).rho  # the zcdp accountant's rules
        return {
            "rho": rho,
            "epsilon": epsilon_from_rho(rho, delta),
            "note": "zCDP (Yu et al. 2019): rho = 1/(2 sigma^2) per local epoch, added over "
            "epochs and rounds, epsilon = rho + 2 sqrt(rho ln(1/delta)); the epsilon reported "
            "above is the exact RDP conversion, which is tighter",
        }

    def steps(self) -> list[str]:
        if self.batching == "poisson":
            batches = (
                f"ceil(n/{self.batch_size}) Poisson-sampled batches per epoch (each example "
                f"with probability {self.batch_size}/n)"
            )
        else:
            batches = f"shuffled batches of {self.batch_size}"
        return [
            f"client: DP-SGD for {self.local_epochs} epoch(s), {batches}: clip "
            f"each example's gradient to L2 norm {self.clip:g}, add N(0, "
            f"({self.noise_multiplier:.4g}·{self.clip:g})²) to the batch sum, divide by "
            f"{self.batch_size}, step with learning rate {self.learning_rate:g}",
        ]

    def describe(self) -> dict[str, Any]:
        described = {
            "clip": self.clip,
            "noise_multiplier": self.noise_multiplier,
            "noise_stddev": self.noise_multiplier * self.clip,
            "local_epochs": self.local_epochs,
            "batch_size": self.batch_size,
            "batching": self.batching,
            "noise_added_by": "clients (DP-SGD on every client, per batch)",
            "sensitivity": "clip per batch sum (add/remove one example)",
        }
        if self.batching == "poisson":
            sizes = sorted(set(self.client_sizes))
            described["sampling_rate_per_step"] = {
                "smallest_client": min(1.0, self.batch_size / sizes[0]),
                "largest_client": min(1.0, self.batch_size / sizes[-1]),
            }
        return described


def poisson_steps(examples: int, batch_size: int) -> int:
    """Steps per epoch under Poisson batching: ceil(n / B), one epoch's worth in expectation."""
    return max(1, -(-examples // batch_size))
