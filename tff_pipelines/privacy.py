"""From a spec to its privacy plan: mechanism, sampling, accountant. No data, no TFF.

`tffp account` and `tffp run` share this, so the calculator and the run can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dp_accounting

from mechanisms.accounting import (
    PrivacyLedger,
    Sampling,
    calibrate_noise_multiplier,
    epsilon_for_rounds,
)

UNIT = "user (all of one client's examples)"


@dataclass(frozen=True)
class PrivacyPlan:
    mechanism: Any  # a mechanisms.base.Mechanism, or None for mechanism: none
    sampling: Sampling
    delta: float
    accountant: str
    rounds: int
    target_epsilon: float | None
    max_epsilon: float | None
    secure_aggregation: str
    pooled_standardization: bool = False

    @property
    def private(self) -> bool:
        return self.mechanism is not None

    def round_event(self) -> dp_accounting.DpEvent:
        """One round as the accountant sees it: the mechanism's release under the sampling."""
        if self.mechanism is None:
            return dp_accounting.NonPrivateDpEvent()
        return self.sampling.round_event(self.mechanism.release_event(self.sampling.relation))

    def new_ledger(self) -> PrivacyLedger:
        return PrivacyLedger(
            delta=self.delta, accountant=self.accountant, relation=self.sampling.relation
        )

    def projected_epsilons(self) -> list[float]:
        """Epsilon after each planned round, assuming every round runs."""
        if not self.private:
            return []
        return epsilon_for_rounds(
            delta=self.delta,
            rounds=self.rounds,
            sampling=self.sampling,
            release_event=self.mechanism.release_event(self.sampling.relation),
            accountant=self.accountant,
        )

    def affordable_rounds(self, epsilons: list[float]) -> int:
        """How many of the planned rounds fit under max_epsilon."""
        if self.max_epsilon is None:
            return len(epsilons)
        return sum(1 for e in epsilons if e <= self.max_epsilon)

    def projection(self) -> dict:
        """privacy.json as it will read if every round that max_epsilon affords runs."""
        epsilons = self.projected_epsilons()
        affordable = self.affordable_rounds(epsilons)
        doc = self.report(None, rounds=affordable, stopped_by_budget=affordable < self.rounds)
        if not self.private:
            return doc
        doc.update(
            epsilon=epsilons[affordable - 1] if affordable else 0.0,
            epsilon_per_round=epsilons[:affordable],
        )
        return doc

    def report(
        self, ledger: PrivacyLedger | None, *, rounds: int, stopped_by_budget: bool = False
    ) -> dict:
        """The privacy.json document: the promise, and every assumption it rests on.

        `rounds` are the rounds that ran (or, for a projection, would run); a private run's
        ledger has recorded exactly those.
        """
        doc: dict[str, Any] = {
            "private": self.private,
            "mechanism": self.mechanism.name if self.private else "none",
            "unit": UNIT,
            "neighbouring": self.sampling.neighbouring,
            "sampling": self.sampling.describe(),
            "secure_aggregation": self.secure_aggregation,
            "rounds": rounds,
        }
        if not self.private:
            doc.update(
                epsilon=None,
                delta=None,
                note="no privacy mechanism: the trained model is not differentially private",
            )
            return doc
        described = ledger.describe() if ledger is not None else {}
        doc.update(
            epsilon=described.get("epsilon", 0.0),
            delta=self.delta,
            accountant=self.accountant,
            bound=described.get("bound"),
            planned_rounds=self.rounds,
            noise=self.mechanism.describe(),
            noise_calibrated_to_epsilon=self.target_epsilon,
            max_epsilon=self.max_epsilon,
            stopped_by_budget=stopped_by_budget,
            epsilon_per_round=described.get("epsilon_per_round", []),
            assumptions=self.assumptions(),
        )
        if "optimal_order" in described:
            doc["optimal_order"] = described["optimal_order"]
        return doc

    def assumptions(self) -> list[str]:
        cohort = (
            f"each round samples clients independently with rate q = {self.sampling.rate:g}"
            if self.sampling.kind == "poisson"
            else f"each round samples exactly {self.sampling.cohort} of "
            f"{self.sampling.population} clients uniformly without replacement"
        )
        return [
            f"unit of privacy: one {UNIT}; "
            f"neighbouring datasets differ by {self.sampling.neighbouring}",
            cohort + "; the population size is public",
            "every client's update is clipped to L2 norm clip before aggregation; the mean divides "
            "by the expected cohort size, not by the number of clients that showed up",
            "round diagnostics (clients per round, clipped fraction, update norms, training loss) "
            "are simulation diagnostics and are not covered by epsilon",
            *(
                [
                    "features are standardised with mean/std pooled over all clients' training "
                    "data: a simulation convenience not covered by epsilon "
                    "(set data.standardize: false to avoid it)"
                ]
                if self.pooled_standardization
                else []
            ),
            "noise comes from TF's stateless Philox generator keyed by the spec seed and the "
            "round: reproducible in simulation; keep the seed secret (or use seed: null) "
            "for real data",
        ]


def plan_privacy(spec) -> PrivacyPlan:
    """Builds the plan; calibrates the noise multiplier when the spec gives a target epsilon."""
    training, privacy = spec.training, spec.privacy
    sampling = Sampling(
        kind=training.sampling, population=spec.data.clients, cohort=training.clients_per_round
    )
    common = dict(
        sampling=sampling,
        delta=privacy.delta,
        accountant=privacy.accountant,
        rounds=training.rounds,
        target_epsilon=privacy.target_epsilon,
        max_epsilon=privacy.max_epsilon,
        secure_aggregation=spec.secure_aggregation.protocol,
        pooled_standardization=spec.data.standardize,
    )
    if privacy.mechanism == "none":
        return PrivacyPlan(mechanism=None, **common)
    if privacy.mechanism == "gaussian":
        from mechanisms.gaussian import GaussianMechanism

        z = privacy.noise_multiplier
        if z is None:
            z = calibrate_noise_multiplier(
                privacy.target_epsilon,
                delta=privacy.delta,
                rounds=training.rounds,
                sampling=sampling,
                release_event=lambda m: GaussianMechanism(privacy.clip, m).release_event(
                    sampling.relation
                ),
                accountant=privacy.accountant,
            )
        return PrivacyPlan(mechanism=GaussianMechanism(privacy.clip, z), **common)
    raise ValueError(f"unknown privacy.mechanism {privacy.mechanism!r}")
