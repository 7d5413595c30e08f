"""What Distributed Selective SGD's DP uploads cost one participant, round by round.

Each participant's upload is the sparse vector technique of `mechanisms.svt`: ε-DP for any change
of that participant's local data (every coordinate of its update may change; neighbouring is
replacing one participant's dataset: who takes part is public, what they hold is protected). Over
a run a participant's uploads compose. Shokri & Shmatikov plot "ε per parameter"; the honest
figure is the composition over every upload of the participant who uploads most (McSherry 2017).

Exchange orders, mapped onto rounds of `cohort` participants out of `clients`:
- round_robin: round r takes the next `cohort` participants in a fixed cycle, so after r rounds
  the participant who uploaded most did so ceil(r·cohort/clients) times. A round is charged one
  ε-DP release exactly when it raises that count, otherwise nothing.
- random: each round draws `cohort` of `clients` uniformly without replacement, independently.
  Every round is charged the release amplified by that sampling, log(1 + (k/n)(e^ε − 1)) (Balle,
  Barthe & Gaboardi 2018, sampling without replacement under substitution).

A release is charged as the RDP curve of randomized response with that ε, which bounds every
ε-DP mechanism (`mechanisms.accounting.pure_dp`), so the ledger composes it with RDP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import dp_accounting

from mechanisms.accounting import RoundPrivacy, Sampling
from mechanisms.accounting.pure_dp import pure_dp_rdp_curve
from mechanisms.svt import SvtBudget

ExchangeOrder = Literal["round_robin", "random"]
UNIT = "participant"
NEIGHBOURING = "replace one participant's local data"


@dataclass(frozen=True)
class SelectiveUploads:
    budget: SvtBudget  # one upload: at most budget.count coordinates, budget.epsilon-DP
    threshold: float
    clients: int
    cohort: int
    order: ExchangeOrder = "round_robin"
    name: str = "svt"
    per_round = True  # what a round costs depends on which round it is (see round_privacy)

    def __post_init__(self):
        if not 1 <= self.cohort <= self.clients:
            raise ValueError(f"cohort must be in [1, clients], got {self.cohort} of {self.clients}")
        if self.order not in ("round_robin", "random"):
            raise ValueError(f"order must be 'round_robin' or 'random', got {self.order!r}")

    @property
    def epsilon(self) -> float:
        return self.budget.epsilon

    @property
    def relation(self) -> dp_accounting.NeighboringRelation:
        return dp_accounting.NeighboringRelation.REPLACE_ONE

    def uploads_by(self, rounds: int) -> int:
        """Uploads of the participant who uploaded most after `rounds` rounds (round_robin), or
        at most that many rounds (random)."""
        if self.order == "random":
            return rounds
        return math.ceil(rounds * self.cohort / self.clients)

    def round_privacy(self, sampling: Sampling | None = None, round_num: int = 1) -> RoundPrivacy:
        """The cost of round `round_num` (1-based) to the participant who uploads most (the
        exchange order is this object's own; `sampling` is accepted for a uniform interface)."""
        if self.order == "random":
            rate = self.cohort / self.clients
            return pure_dp_rdp_curve(math.log1p(rate * math.expm1(self.epsilon)))
        if self.uploads_by(round_num) > self.uploads_by(round_num - 1):
            return pure_dp_rdp_curve(self.epsilon)
        return dp_accounting.NoOpDpEvent()

    def steps(self) -> list[str]:
        b = self.budget
        return [
            f"client: upload at most {b.count} coordinates of its update by the sparse vector "
            f"technique (threshold {self.threshold:g} + Lap({b.threshold_scale:.4g}), "
            f"Lap({b.query_scale:.4g}) per coordinate tested, values truncated to "
            f"±{b.bound:g} + Lap({b.answer_scale:.4g})): {self.epsilon:g}-DP per upload",
            f"order: {self.order.replace('_', '-')}, {self.cohort} of {self.clients} "
            "participants per round; the server adds the uploads to the global model",
        ]

    def describe(self) -> dict[str, Any]:
        b = self.budget
        return {
            "epsilon_per_upload": self.epsilon,
            "max_uploaded_coordinates": b.count,
            "bound": b.bound,
            "threshold": self.threshold,
            "selection_epsilon": b.selection_epsilon,
            "answer_epsilon": b.answer_epsilon,
            "laplace_scales": {
                "threshold": b.threshold_scale,
                "query": b.query_scale,
                "answer": b.answer_scale,
            },
            "order": self.order,
            "noise_added_by": "clients (sparse vector technique on each upload)",
            "accounting": (
                "each upload charged as randomized response with its epsilon (the RDP of any "
                "pure-DP release is at most that: Kairouz, Oh & Viswanath 2015)"
                + (
                    ", amplified by sampling without replacement (Balle et al. 2018)"
                    if self.order == "random"
                    else ", only in rounds that raise the most-uploading participant's count"
                )
                + "; composed in RDP and converted with Canonne-Kamath-Steinke 2020 / Balle et "
                "al. 2020 (within 1e-3 of basic composition for a few uploads, tighter for many)"
            ),
        }

    def assumptions(self) -> list[str]:
        amplification = (
            "each round draws its participants uniformly without replacement, independently of "
            "the data, so a round is charged log(1 + (k/n)(e^epsilon - 1)) (amplification by "
            "sampling without replacement, Balle et al. 2018)"
            if self.order == "random"
            else "the round-robin order is fixed and public: a round is charged when it raises "
            "the upload count of the participant who has uploaded most"
        )
        return [
            f"each upload is {self.epsilon:g}-DP (sparse vector technique, Dwork & Roth's "
            "NumericSparse) for any change of one participant's local data; epsilon composes "
            "over all of that participant's uploads, not per parameter as Shokri & Shmatikov "
            "plotted it",
            amplification,
            "downloads and local training touch only public (global) and own data; the local "
            "model never leaves the participant; training metrics are not covered by epsilon",
            "Laplace noise is sampled in floating point (approximately Laplace, as in textbook "
            "implementations); a deployment claiming pure DP needs a snapping or discrete sampler",
        ]
