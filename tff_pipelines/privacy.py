"""From a spec to its privacy plan: mechanism, sampling, accountant. No data and no TFF: the
model's dimension, which the distributed mechanisms need, comes in as a number (their rotation
module does load TensorFlow).

`tffp account` and `tffp run` share this, so the calculator and the run can never disagree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dp_accounting

from mechanisms.accounting import (
    PrivacyLedger,
    RdpCurve,
    RoundPrivacy,
    Sampling,
    calibrate_noise_multiplier,
    epsilon_after,
    epsilon_for_rounds,
)
from mechanisms.scaling import BitsTooFewError
from mechanisms.schedules import ValidationSchedule
from secure_agg.parameters import SecAggSettings
from secure_agg.parameters import plan as plan_secagg
from tff_pipelines.spec.errors import Problem, SpecError
from tff_pipelines.spec.sections import DISTRIBUTED_DEFAULTS

UNIT = "user (all of one client's examples)"
EXAMPLE_UNIT = "example (one training example of one client)"
EXAMPLE_NEIGHBOURING = "add/remove one example"


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
    # what is standardised with statistics pooled over every client: "features", "targets"
    pooled_standardization: tuple[str, ...] = ()
    wrap_target: float | None = None  # privacy.modclip_prob for the distributed mechanisms
    secagg: SecAggSettings | None = None  # secure_aggregation.protocol: secagg
    example_level: bool = False  # dpsgd: the unit is one example, not one client
    schedule: Any = None  # a mechanisms.schedules.NoiseSchedule: σ of round t = 0, 1, ...
    schedule_kind: str = "none"
    # dpsgd with privacy.user_level: the server's client-level mechanism, as a plan of its own
    # (unit one client), accounted on a ledger of its own.
    user_level: PrivacyPlan | None = None

    @property
    def unit(self) -> str:
        return EXAMPLE_UNIT if self.example_level else UNIT

    @property
    def neighbouring(self) -> str:
        return EXAMPLE_NEIGHBOURING if self.example_level else self.sampling.neighbouring

    @property
    def varies_by_round(self) -> bool:
        """Whether rounds cost different amounts (a noise schedule, or DSSGD's uploads, which
        charge only the rounds in which the most-uploading participant takes part)."""
        return self.schedule is not None or getattr(self.mechanism, "per_round", False)

    @property
    def private(self) -> bool:
        return self.mechanism is not None

    @property
    def distributed(self) -> bool:
        """Clients add the noise and a modular secure sum adds up (smm, ddg, skellam)."""
        return self.wrap_target is not None

    def noise_multiplier(self, round_num: int, validation: Sequence[float] = ()) -> float:
        """The noise multiplier of round `round_num` (from 1); `validation` is the evaluation
        accuracy after each earlier round, read by a validation-based schedule."""
        if self.schedule is None:
            return self.mechanism.noise_multiplier
        return self.schedule.sigma(round_num - 1, validation)

    def mechanism_at(self, round_num: int, validation: Sequence[float] = ()) -> Any:
        """The mechanism as it runs in round `round_num`: its noise set by the schedule."""
        if self.schedule is None or self.mechanism is None:
            return self.mechanism
        sigma = self.noise_multiplier(round_num, validation)
        return dataclasses.replace(self.mechanism, noise_multiplier=sigma)

    def round_privacy(self, round_num: int = 1, validation: Sequence[float] = ()) -> RoundPrivacy:
        """One round as the accountant sees it: the mechanism's release under the sampling."""
        if self.mechanism is None:
            return dp_accounting.NonPrivateDpEvent()
        mechanism = self.mechanism_at(round_num, validation)
        if getattr(mechanism, "per_round", False):
            return mechanism.round_privacy(self.sampling, round_num)
        return mechanism.round_privacy(self.sampling)

    @property
    def relation(self) -> dp_accounting.NeighboringRelation:
        """The neighbouring relation the accountant composes under."""
        return self.mechanism.relation if self.example_level else self.sampling.relation

    def new_ledger(self) -> PrivacyLedger:
        # Without a mechanism nothing is recorded, and privacy.accountant (say 'pld' left in a
        # spec whose mechanism was switched off) must not refuse a relation it will never see.
        accountant = self.accountant if self.private else "rdp"
        return PrivacyLedger(delta=self.delta, accountant=accountant, relation=self.relation)

    def projected_epsilons(self) -> list[float]:
        """Epsilon after each planned round, assuming every round runs (and, for a
        validation-based schedule, that the accuracy keeps improving, so σ never decays)."""
        if not self.private:
            return []
        if not self.varies_by_round:
            return epsilon_for_rounds(
                delta=self.delta,
                rounds=self.rounds,
                sampling=self.sampling,
                round_privacy=self.round_privacy(),
                accountant=self.accountant,
                relation=self.relation,
            )
        return self._projected_ledger(self.rounds).epsilon_per_round

    def _projected_ledger(self, rounds: int) -> PrivacyLedger:
        """A ledger charged with rounds 1..`rounds` as planned, one by one."""
        ledger = self.new_ledger()
        for round_num in range(1, rounds + 1):
            ledger.record(self._projected(round_num))
        return ledger

    def projected_noise_multipliers(self, rounds: int) -> list[float]:
        return [self._projected_mechanism(r).noise_multiplier for r in range(1, rounds + 1)]

    def _projected_mechanism(self, round_num: int) -> Any:
        if isinstance(self.schedule, ValidationSchedule):
            sigma = self.schedule.initial_sigma
            return dataclasses.replace(self.mechanism, noise_multiplier=sigma)
        return self.mechanism_at(round_num)

    def _projected(self, round_num: int) -> RoundPrivacy:
        if self.schedule is None:
            return self.round_privacy(round_num)
        return self._projected_mechanism(round_num).round_privacy(self.sampling)

    def affordable_rounds(self, epsilons: list[float]) -> int:
        """How many of the planned rounds fit under max_epsilon."""
        if self.max_epsilon is None:
            return len(epsilons)
        return sum(1 for e in epsilons if e <= self.max_epsilon)

    def projection(self) -> dict:
        """privacy.json as it will read if every round that max_epsilon affords runs."""
        epsilons = self.projected_epsilons()
        affordable = self.affordable_rounds(epsilons)
        zcdp = self.private and self.accountant == "zcdp"  # both of its figures, as a run reports
        ledger = self._projected_ledger(affordable) if zcdp else None
        doc = self.report(
            ledger,
            rounds=affordable,
            stopped_by_budget=affordable < self.rounds,
            noise_multipliers=self.projected_noise_multipliers(affordable)
            if self.schedule is not None
            else None,
        )
        if not self.private:
            return doc
        doc.update(
            epsilon=epsilons[affordable - 1] if affordable else 0.0,
            epsilon_per_round=epsilons[:affordable],
        )
        if self.user_level is not None:  # the same rounds run, whatever unit stops them
            user_epsilons = self.user_level.projected_epsilons()[:affordable]
            doc["user_level"].update(
                epsilon=user_epsilons[-1] if user_epsilons else 0.0,
                epsilon_per_round=user_epsilons,
            )
        return doc

    def report(
        self,
        ledger: PrivacyLedger | None,
        *,
        rounds: int,
        stopped_by_budget: bool = False,
        secure_sum: dict[str, Any] | None = None,
        noise_multipliers: Sequence[float] | None = None,
        user_ledger: PrivacyLedger | None = None,
    ) -> dict:
        """The privacy.json document: the promise, and every assumption it rests on.

        `rounds` are the rounds that ran (or, for a projection, would run); a private run's
        ledger has recorded exactly those. `secure_sum` is what the secure aggregation protocol
        saw happen over those rounds (dropouts, refused rounds); `noise_multipliers` the
        scheduled noise multiplier of each of them; `user_ledger` what the user-level mechanism
        on top of dpsgd spent.
        """
        doc: dict[str, Any] = {
            "private": self.private,
            "mechanism": self.mechanism.name if self.private else "none",
            "unit": self.unit,
            "neighbouring": self.neighbouring,
            "sampling": self.sampling.describe(),
            "secure_aggregation": self.secure_aggregation,
            "rounds": rounds,
        }
        if self.secagg is not None:
            doc["secure_aggregation_protocol"] = {**self.secagg.describe(), **(secure_sum or {})}
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
        for key in ("optimal_order", "zcdp", "epsilon_rdp"):
            if key in described:
                doc[key] = described[key]
        if self.schedule is not None:
            doc["schedule"] = {
                "kind": self.schedule_kind,
                **dataclasses.asdict(self.schedule),
                "noise_multiplier_per_round": list(noise_multipliers or []),
            }
        if self.user_level is not None:
            doc["user_level"] = self.user_level.report(
                user_ledger, rounds=rounds, secure_sum=secure_sum
            )
            doc["units"] = (
                f"two guarantees: epsilon above is for one {self.unit} ({self.neighbouring}); "
                f"user_level.epsilon is for one {self.user_level.unit} "
                f"({self.user_level.neighbouring}), from the aggregation's noise alone"
            )
        if self.example_level and self.schedule is None and self.accountant != "zcdp":
            doc["zcdp"] = self.mechanism.zcdp(self.sampling, rounds, self.delta)
        if self.distributed:
            doc["bound"] = self.mechanism.describe()["accounting"]
            doc["warnings"] = self.warnings()
        if self._uploads_selectively:
            doc["bound"] = self.mechanism.describe()["accounting"]
            doc["uploads_by_most_active_participant"] = self.mechanism.uploads_by(rounds)
        return doc

    def warnings(self) -> list[str]:
        """What a user should know before trusting the run (shown by tffp account and run)."""
        if not self.distributed:
            return []
        found = []
        p = self.mechanism.wrap_probability()
        if p > self.wrap_target * (1 + 1e-6):
            found.append(
                f"predicted modular wrap probability per coordinate {p:.3g} exceeds "
                f"privacy.modclip_prob {self.wrap_target:g}: wrapped coordinates are "
                "corrupted in the sum (privacy is unaffected); use more bits or a smaller gamma"
            )
        refused = self.refused_round_probability()
        if refused > 0.01:
            found.append(
                f"about {refused:.0%} of rounds will be refused: with dropout_rate "
                f"{self.secagg.dropout_rate:g}, more than max_dropout {self.secagg.max_dropout:g} "
                f"of {self.sampling.cohort} clients often drop out; raise max_dropout"
            )
        scale = getattr(self.mechanism, "scale", None)
        if scale is not None and scale <= 1:
            found.append(
                f"the scale is {scale:.3g} <= 1: rounding to integers destroys most of the "
                "signal; use more bits or fewer clients per round"
            )
        return found

    def refused_round_probability(self) -> float:
        """How often a round of the expected cohort loses more clients than it tolerates."""
        if self.secagg is None or self.secagg.dropout_rate == 0:
            return 0.0
        from scipy.stats import binom

        from mechanisms.discretized import fewest_survivors

        n = self.sampling.cohort
        tolerated = n - fewest_survivors(n, self.secagg.max_dropout)
        return float(binom.sf(tolerated, n, self.secagg.dropout_rate))

    def assumptions(self) -> list[str]:
        cohort = {
            "poisson": f"each round samples clients independently with rate q = "
            f"{self.sampling.rate:g}",
            "fixed": f"each round samples exactly {self.sampling.cohort} of "
            f"{self.sampling.population} clients uniformly without replacement",
            "round_robin": f"each round takes the next {self.sampling.cohort} of "
            f"{self.sampling.population} clients in a fixed public cycle",
        }[self.sampling.kind]
        return [
            f"unit of privacy: one {self.unit}; "
            f"neighbouring datasets differ by {self.neighbouring}",
            cohort + "; the population size is public",
            *(
                []
                if self.example_level or self._uploads_selectively
                else [
                    "every client's update is clipped to L2 norm clip before aggregation; the "
                    "mean divides by the expected cohort size, not by the number of clients that "
                    "showed up"
                ]
            ),
            "round diagnostics (clients per round, clipped fraction, update norms, training loss) "
            "are simulation diagnostics and are not covered by epsilon",
            *self._standardization_assumptions(),
            *self._mechanism_assumptions(),
        ]

    def _standardization_assumptions(self) -> list[str]:
        pooled = self.pooled_standardization
        if not pooled:
            return []
        fields = {"features": "data.standardize", "targets": "data.standardize_target"}
        return [
            f"{' and '.join(pooled)} are standardised with mean/std pooled over all clients' "
            "training data: a simulation convenience not covered by epsilon (set "
            f"{' and '.join(f'{fields[p]}: false' for p in pooled)} to avoid it)"
        ]

    @property
    def _uploads_selectively(self) -> bool:
        return self.mechanism is not None and self.mechanism.name == "svt"

    def _mechanism_assumptions(self) -> list[str]:
        if self._uploads_selectively:
            return self.mechanism.assumptions()
        if self.example_level:
            return [
                *self.mechanism.assumptions(self.sampling),
                "each client's model delta reaches the server (plain mean, no secure sum): it is "
                "post-processing of the client's DP-SGD; training metrics (loss, accuracy, "
                "clipped fraction) are computed without noise and not covered by epsilon",
                "noise comes from TF's stateless generator keyed by the spec seed, the round and a "
                "fingerprint of each client's first batch: reproducible in simulation; a "
                "deployment draws each client's noise from its own entropy",
            ]
        if not self.distributed:
            return [
                "noise comes from TF's stateless Philox generator keyed by the spec seed and the "
                "round: reproducible in simulation; keep the seed secret (or use seed: null) "
                "for real data",
            ]
        n = self.sampling.cohort
        return [
            self._secure_sum_assumption(),
            self._participation_assumption(n),
            "noise comes from TF's stateless Philox generator keyed by the spec seed, the round "
            "and a fingerprint of each client's update: reproducible in simulation; a deployment "
            "draws each client's noise from its own entropy",
            "coordinates of the sum that wrap around modulo 2^bits are corrupted ("
            + (
                "the server cannot count them, as it never sees the plain sum; "
                "predicted_wrap_probability says how often"
                if self.secagg is not None
                else "counted in the round metric wrapped_coordinates"
            )
            + "); that affects accuracy, not privacy",
        ]

    def _secure_sum_assumption(self) -> str:
        sent = (
            "clients add the noise and send integer vectors modulo 2^bits to a modular secure sum"
        )
        if self.secagg is None:
            return (
                f"{sent}; the server sees only the sum. In this simulation the secure sum is "
                "computed in the clear (secure_aggregation: simulated), returning exactly what "
                "secure aggregation would; no cryptographic protocol runs"
            )
        return (
            f"{sent}, computed by SecAgg+ (X25519 key agreement, HKDF-SHA256, AEAD-encrypted "
            "Shamir shares over GF(2^521 - 1), ChaCha20 mask expansion). The server is assumed "
            "honest but curious: it sees public keys, ciphertexts, masked uploads, the shares "
            "the protocol reveals and the sum; the consistency-check round against a server "
            "that lies about dropouts is not run, and all parties run in one simulated process"
        )

    def _participation_assumption(self, n: int) -> str:
        tolerated = self.secagg.max_dropout if self.secagg is not None else 0.0
        if tolerated:
            survivors = f"m - floor({tolerated:g}·m)"
            share = (
                f"each of the m clients in a round adds a {n}/({survivors}) share of it, so "
                f"any {survivors} of them carry it; a round in which more clients drop out is "
                "refused (nothing is released; it is still charged to epsilon, conservatively)"
            )
        else:
            share = f"each of the m clients in a round adds a {n}/m share of it"
            if self.secagg is not None:
                share += (
                    "; a round in which any client drops out is refused (nothing is released; "
                    "it is still charged to epsilon, conservatively)"
                )
        return (
            f"participation: every released sum carries the noise of {n} clients whoever takes "
            f"part: {share} (exact for Skellam and SMM noise; discrete Gaussian shares round "
            "their sigma up). The count m is public, as secure aggregation reveals it"
        )


def privacy_needs_data(spec) -> bool:
    """Whether the privacy plan depends on the data: the model's size (smm, ddg, skellam, svt)
    or the clients' sizes (dpsgd with Poisson batches)."""
    privacy = spec.privacy
    poisson_dpsgd = privacy.mechanism == "dpsgd" and spec.training.batching == "poisson"
    return needs_dimension(spec) or poisson_dpsgd


def needs_dimension(spec) -> bool:
    """The model's size: the distributed mechanisms rotate and account by it; svt's upload
    holds a fraction of its coordinates."""
    return spec.privacy.is_distributed or spec.privacy.mechanism == "svt"


def plan_privacy(
    spec,
    *,
    dimension: int | None = None,
    client_sizes: Sequence[int] | None = None,
    source: str = "<spec>",
) -> PrivacyPlan:
    """Builds the plan; calibrates the noise when the spec gives a target epsilon.

    `dimension` (trainable parameters of the model) is needed by smm, ddg and skellam, whose
    rotation and accounting depend on it; `client_sizes` (examples per client) by dpsgd with
    Poisson batches, whose sampling rate per step is batch_size / examples. Parameters no
    mechanism can work with are reported as a SpecError against `source`, the spec file, before
    any training; so is a max_epsilon that not even the first round fits.
    """
    plan = _plan(spec, dimension, client_sizes, source)
    _check_first_round_fits(plan, source)
    return plan


def _plan(
    spec, dimension: int | None, client_sizes: Sequence[int] | None, source: str
) -> PrivacyPlan:
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
        secure_aggregation=spec.secure_aggregation.resolved(privacy.mechanism),
        pooled_standardization=tuple(
            name
            for name, on in (
                ("features", spec.data.standardize),
                ("targets", spec.data.standardize_target),
            )
            if on
        ),
    )
    if privacy.mechanism == "none":
        return PrivacyPlan(mechanism=None, **common)
    if privacy.mechanism == "gaussian":
        from mechanisms.gaussian import GaussianMechanism

        schedule = _schedule(spec)
        if schedule is not None:  # the server follows the whole table by the round index
            table = tuple(schedule.sigma(t) for t in range(training.rounds))
            mechanism = GaussianMechanism(privacy.clip, table[0], scheduled=table)
            return PrivacyPlan(
                mechanism=mechanism,
                schedule=schedule,
                schedule_kind=privacy.schedule.kind,
                **common,
            )
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
    if privacy.mechanism == "svt":
        return PrivacyPlan(mechanism=_svt(spec, dimension, source), **common)
    if privacy.mechanism == "dpsgd":
        schedule = _schedule(spec)
        mechanism = _dpsgd(spec, sampling, client_sizes, source, schedule)
        return PrivacyPlan(
            mechanism=mechanism,
            example_level=True,
            schedule=schedule,
            schedule_kind=privacy.schedule.kind,
            user_level=_user_level(spec, source, dimension),
            **common,
        )
    if privacy.is_distributed:
        if dimension is None:
            raise ValueError(f"mechanism {privacy.mechanism!r} needs the model dimension")
        secagg = _secagg_settings(spec) if common["secure_aggregation"] == "secagg" else None
        tolerated = secagg.max_dropout if secagg is not None else 0.0
        mechanism = _distributed_mechanism(spec, sampling, dimension, source, tolerated)
        return PrivacyPlan(
            mechanism=mechanism,
            wrap_target=privacy.setting("modclip_prob"),
            secagg=secagg,
            **common,
        )
    raise ValueError(f"unknown privacy.mechanism {privacy.mechanism!r}")


# Beyond this the guarantee says nothing a user could rely on; more likely a typo in the noise.
MEANINGLESS_EPSILON = 100.0


def _user_level(spec, source: str, dimension: int | None) -> PrivacyPlan | None:
    """The client-level plan of privacy.user_level: the same planning as a spec whose mechanism
    is that one (with the distributed mechanisms' settings of privacy and secure_aggregation),
    so calibration and accounting are those of user-level DP alone, with RDP."""
    from tff_pipelines.spec.sections import ScheduleSpec, UserLevelSpec

    settings = spec.privacy.user_level
    if settings.mechanism == "none":
        return None
    privacy = dataclasses.replace(
        spec.privacy,
        mechanism=settings.mechanism,
        clip=settings.clip,
        noise_multiplier=settings.noise_multiplier,
        target_epsilon=settings.target_epsilon,
        max_epsilon=None,
        accountant="rdp",
        schedule=ScheduleSpec(),
        user_level=UserLevelSpec(),
    )
    own = {f"privacy.{name}" for name in ("clip", "noise_multiplier", "target_epsilon")}
    try:
        return plan_privacy(
            dataclasses.replace(spec, privacy=privacy), dimension=dimension, source=source
        )
    except SpecError as error:  # name the user_level field the user wrote
        renamed = [
            dataclasses.replace(p, path=p.path.replace("privacy.", "privacy.user_level.", 1))
            if p.path in own
            else p
            for p in error.problems
        ]
        raise SpecError(renamed) from None


def _schedule(spec) -> Any:
    """The spec's noise schedule (mechanisms.schedules), or None for a constant noise multiplier."""
    from mechanisms.schedules import schedule_from_settings

    settings = spec.privacy.schedule
    if settings.kind == "none":
        return None
    return schedule_from_settings(settings.kind, **settings.parameters())


def _check_first_round_fits(plan: PrivacyPlan, source: str) -> None:
    """A budget that not even the first round fits is a spec error, not an empty run."""
    if plan.max_epsilon is None or not plan.private:
        return
    ledger = plan.new_ledger()
    first = ledger.epsilon_after(plan.round_privacy(1))
    if first > plan.max_epsilon:
        message = (
            f"the first round alone costs epsilon {first:.4g}: no round fits; raise it or add noise"
        )
        raise SpecError(
            [
                Problem(
                    file=source, path="privacy.max_epsilon", value=plan.max_epsilon, message=message
                )
            ]
        )


def _dpsgd(
    spec, sampling: Sampling, client_sizes: Sequence[int] | None, source: str, schedule: Any
):
    """DP-SGD on every client, its noise multiplier calibrated when a target is given (with a
    schedule, the multiplier of the first round)."""
    from mechanisms.accounting.bisection import least_passing_in
    from mechanisms.example_level import ExampleLevelDpSgd, ModelMix

    privacy, training = spec.privacy, spec.training
    poisson = training.batching == "poisson"
    if poisson and client_sizes is None:
        raise ValueError("dpsgd with poisson batching needs the clients' sizes")
    tau = training.modelmix.tau
    modelmix = None if tau is None else ModelMix(tau, privacy.coordinate_clip_p)

    def with_noise(z: float, accountant: str = privacy.accountant) -> ExampleLevelDpSgd:
        return ExampleLevelDpSgd(
            clip=privacy.clip,
            noise_multiplier=z,
            local_epochs=training.local_epochs,
            batch_size=training.batch_size,
            learning_rate=training.client_optimizer.learning_rate,
            batching=training.batching,
            client_sizes=tuple(int(n) for n in client_sizes) if poisson else (),
            modelmix=modelmix,
            modelmix_bound=privacy.setting("subsampling_bound"),
            accountant=accountant,
        )

    def run_epsilon(z: float, accountant: str = privacy.accountant) -> float:
        mechanism = with_noise(z, accountant)
        return epsilon_after(
            delta=privacy.delta,
            rounds=training.rounds,
            sampling=sampling,
            round_privacy=mechanism.round_privacy(sampling),
            accountant=accountant,
            relation=mechanism.relation,
        )

    if privacy.accountant == "zcdp" and isinstance(
        with_noise(1.0).round_privacy(sampling), RdpCurve
    ):
        message = (
            "with poisson batching on clients of different sizes no one client's sampled steps "
            "bound all others, so a round is charged the pointwise maximum of their RDP curves, "
            "which has no zCDP form; use 'rdp'"
        )
        raise SpecError(
            [Problem(file=source, path="privacy.accountant", value="zcdp", message=message)]
        )
    if schedule is not None:
        return with_noise(schedule.sigma(0, ()))
    if privacy.noise_multiplier is not None:
        return with_noise(privacy.noise_multiplier)
    target, low, high = privacy.target_epsilon, 1e-2, 1e3
    if privacy.accountant == "pld":
        # A PLD at little noise is huge and slow to build; RDP's answer (an upper bound on
        # PLD's epsilon up to its discretisation) brackets the search instead.
        rdp_z = least_passing_in(
            lambda z: run_epsilon(z, "rdp") <= target, low, high, relative_tolerance=1e-2
        )
        if rdp_z is not None:
            low, high = rdp_z / 4, min(high, 2 * rdp_z)
    z = least_passing_in(lambda z: run_epsilon(z) <= target, low, high, relative_tolerance=1e-6)
    if z is None:
        message = (
            f"no noise multiplier up to {high:g} reaches it in {training.rounds} rounds; "
            "allow more epsilon or fewer rounds"
        )
        raise SpecError(
            [Problem(file=source, path="privacy.target_epsilon", value=target, message=message)]
        )
    return with_noise(z)


def _svt(spec, dimension: int | None, source: str):
    """DSSGD's sparse-vector uploads; with a target, the largest per-upload epsilon whose
    composition over the planned rounds stays within it."""
    from mechanisms.accounting.bisection import least_passing_in
    from mechanisms.selective_uploads import SelectiveUploads
    from mechanisms.svt import SvtBudget

    if dimension is None:
        raise ValueError("svt needs the model's dimension (the number of coordinates)")
    training, privacy, dssgd = spec.training, spec.privacy, spec.training.dssgd
    count = max(1, math.floor(dssgd.upload_fraction * dimension))
    order = "round_robin" if training.sampling == "round_robin" else "random"

    def with_epsilon(epsilon: float) -> SelectiveUploads:
        return SelectiveUploads(
            budget=SvtBudget(epsilon=epsilon, count=count, bound=dssgd.bound),
            threshold=dssgd.threshold,
            clients=spec.data.clients,
            cohort=training.clients_per_round,
            order=order,
        )

    if privacy.upload_epsilon is not None:
        return with_epsilon(privacy.upload_epsilon)
    target = privacy.target_epsilon

    def total(epsilon: float) -> float:
        uploads = with_epsilon(epsilon)
        ledger = PrivacyLedger(delta=privacy.delta, relation=uploads.relation)
        for round_num in range(1, training.rounds + 1):
            ledger.record(uploads.round_privacy(round_num=round_num))
        return ledger.epsilon

    # least_passing_in finds the least passing value; privacy grows as 1/epsilon does.
    inverse = least_passing_in(lambda x: total(1 / x) <= target, 1e-3, 1e4, relative_tolerance=1e-6)
    if inverse is None:
        message = f"no upload epsilon down to 1e-4 reaches it in {training.rounds} rounds"
        raise SpecError(
            [Problem(file=source, path="privacy.target_epsilon", value=target, message=message)]
        )
    return with_epsilon(1 / inverse)


def _secagg_settings(spec) -> SecAggSettings:
    settings = spec.secure_aggregation
    neighbours, threshold = plan_secagg(
        spec.training.clients_per_round,
        settings.setting("neighbours"),
        settings.setting("threshold"),
    )
    return SecAggSettings(
        neighbours=neighbours,
        threshold=threshold,
        dropout_rate=settings.setting("dropout_rate"),
        max_dropout=settings.setting("max_dropout"),
    )


def _distributed_mechanism(
    spec, sampling: Sampling, dimension: int, source: str, max_dropout: float
):
    """SMM, DDG or Skellam for this spec, or a SpecError naming the field to change."""
    from mechanisms.rotation import padded_dimension

    privacy, rounds = spec.privacy, spec.training.rounds
    noise_field = "privacy.mu" if privacy.mechanism == "smm" else "privacy.noise_multiplier"

    def fail(path: str, message: str):
        name = path.removeprefix("privacy.")
        value = privacy.setting(name) if name in DISTRIBUTED_DEFAULTS else getattr(privacy, name)
        raise SpecError([Problem(file=source, path=path, value=value, message=message)])

    try:
        padded_dimension(dimension, privacy.setting("rotation"))
    except ValueError as error:
        fail("privacy.rotation", f"cannot rotate this model ({dimension} parameters): {error}")
    arguments = dict(
        clip=privacy.clip,
        bits=privacy.setting("bits"),
        rotation=privacy.setting("rotation"),
        dim=dimension,
        clients=sampling.cohort,
        rounds=rounds,
        delta=privacy.delta,
        wrap_probability=privacy.setting("modclip_prob"),
        gamma=privacy.gamma,
        target_epsilon=privacy.target_epsilon,
        max_dropout=max_dropout,
    )
    try:
        mechanism = _build_distributed(privacy, sampling, arguments)
    except BitsTooFewError as error:
        fail("privacy.bits", str(error))
    except ValueError as error:
        fail(
            "privacy.target_epsilon" if privacy.target_epsilon is not None else noise_field,
            str(error),
        )
    epsilon = epsilon_for_rounds(
        delta=privacy.delta,
        rounds=rounds,
        sampling=sampling,
        round_privacy=mechanism.round_privacy(sampling),
    )[-1]
    if not epsilon <= MEANINGLESS_EPSILON:
        fail(
            noise_field,
            f"too little noise: epsilon after {rounds} rounds would be {epsilon:.4g} "
            f"(> {MEANINGLESS_EPSILON:g}, meaningless); add noise or lower the rounds",
        )
    return mechanism


def _build_distributed(privacy, sampling: Sampling, arguments: dict):
    if privacy.mechanism == "smm":
        from mechanisms.smm import smm_mechanism

        return smm_mechanism(
            **arguments,
            rate=sampling.rate,
            bound=privacy.setting("subsampling_bound"),
            mu=privacy.mu,
        )
    from mechanisms.ddg import DistributedDiscreteGaussian
    from mechanisms.scaled_rounding import scaled_rounding_mechanism
    from mechanisms.skellam import SkellamMechanism

    build = DistributedDiscreteGaussian if privacy.mechanism == "ddg" else SkellamMechanism
    return scaled_rounding_mechanism(
        build,
        **arguments,
        population=sampling.population,
        beta=privacy.setting("beta"),
        noise_multiplier=privacy.noise_multiplier,
    )
