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

With ModelMix (`mechanisms.modelmix`) each step's Gaussian is convolved with the uniform of the
random mix, and a step is charged the RDP of Xiao et al.'s Theorem 4.1
(`mechanisms.accounting.modelmix`) as an RdpCurve: at sampling rate B/n for Poisson batches, and
unsampled once per epoch for shuffled ones. dp_accounting cannot sample an RdpCurve, so no
amplification by client sampling is claimed then either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import dp_accounting
import numpy as np

from mechanisms.accounting import RDP_ORDERS, RdpCurve, RoundPrivacy, Sampling
from mechanisms.accounting.modelmix import DEFAULT_ORDERS as MODELMIX_ORDERS
from mechanisms.accounting.modelmix import modelmix_rdp
from mechanisms.accounting.rdp import rdp_vector
from mechanisms.accounting.subsampled import Bound, poisson_subsampled_rdp
from mechanisms.accounting.zcdp import epsilon_from_rho, event_rho

Batching = Literal["shuffle", "poisson"]
UNIT = "example"
NEIGHBOURING = "add/remove one example"


@dataclass(frozen=True)
class ModelMix:
    """ModelMix's two knobs: τ as a multiple of the learning rate, and p of the refined
    clipping (every coordinate clamped to ±C/√p after the L2 clip; None = no clamp, i.e. p = 1
    for the accountant)."""

    tau_over_lr: float
    coordinate_clip_p: int | None = None

    def __post_init__(self):
        if not self.tau_over_lr > 0 or not math.isfinite(self.tau_over_lr):
            raise ValueError(f"tau_over_lr must be positive, got {self.tau_over_lr}")
        p = self.coordinate_clip_p
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
            raise ValueError(f"coordinate_clip_p must be an integer >= 1, got {p!r}")

    @property
    def p(self) -> int:
        return 1 if self.coordinate_clip_p is None else self.coordinate_clip_p

    def coordinate_clip(self, l2_clip: float) -> float | None:
        if self.coordinate_clip_p is None:
            return None
        return l2_clip / math.sqrt(self.coordinate_clip_p)


@dataclass(frozen=True)
class ExampleLevelDpSgd:
    clip: float  # of each example's gradient, jointly over all trainable variables
    noise_multiplier: float  # of the noisy gradient sum, relative to clip
    local_epochs: int
    batch_size: int
    learning_rate: float
    batching: Batching = "shuffle"
    client_sizes: tuple[int, ...] = ()  # examples per client; poisson batching needs them
    modelmix: ModelMix | None = None
    modelmix_bound: Bound = "general"  # of the sampled ModelMix step (see subsampled.py)
    # "pld" needs one dp_accounting event per round that its PLD accountant can build.
    accountant: Literal["rdp", "pld", "zcdp"] = "rdp"
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
        if self.accountant == "pld" and self.modelmix is not None:
            raise ValueError("ModelMix is charged an RDP curve, which PLD accounting cannot use")

    @property
    def relation(self) -> dp_accounting.NeighboringRelation:
        return dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE

    def round_privacy(self, sampling: Sampling) -> RoundPrivacy:
        if self.batching == "poisson":
            if self.accountant == "pld":
                return self._dominating_client_round()
            return self._worst_client_round()
        if self.modelmix is not None:
            return self._modelmix_steps(1.0, self.local_epochs)
        epochs = dp_accounting.SelfComposedDpEvent(
            dp_accounting.GaussianDpEvent(self.noise_multiplier), self.local_epochs
        )
        if sampling.kind == "poisson":
            if self.accountant == "pld":
                # dp_accounting's PLD samples only a Gaussian: e Gaussian releases of one sum
                # are exactly one Gaussian with noise multiplier σ/√e.
                epochs = dp_accounting.GaussianDpEvent(
                    self.noise_multiplier / math.sqrt(self.local_epochs)
                )
            return dp_accounting.PoissonSampledDpEvent(sampling.rate, epochs)
        return epochs

    def client_round(self, examples: int) -> RoundPrivacy:
        """One round of Poisson-batched DP-SGD for a client holding `examples` examples."""
        rate = min(1.0, self.batch_size / examples)
        steps = poisson_steps(examples, self.batch_size) * self.local_epochs
        if self.modelmix is not None:
            return self._modelmix_steps(rate, steps)
        return self._gaussian_steps(rate, steps)

    def _gaussian_steps(self, rate: float, steps: int) -> dp_accounting.DpEvent:
        step = dp_accounting.PoissonSampledDpEvent(
            rate, dp_accounting.GaussianDpEvent(self.noise_multiplier)
        )
        return dp_accounting.SelfComposedDpEvent(step, steps)

    def _modelmix_steps(self, rate: float, steps: int) -> RdpCurve:
        """`steps` ModelMix steps at sampling rate `rate`: the RDP curve of Theorem 4.1, or that of
        plain DP-SGD's sampled Gaussian where it is lower. Both hold: given the two (released)
        states, a ModelMix step is post-processing of the noisy gradient, and the theorem's
        sampled bound (with Zhu & Wang's factor 3) can exceed the exact Gaussian one when the
        uniform is narrow. The theorem is stated at integer orders; at the ledger's other orders
        (fractional, or above 256) the Gaussian's value stands alone, so ModelMix is never
        charged more than plain DP-SGD at any order the ledger converts from."""
        sigma = self.noise_multiplier
        # Exact for the Gaussian at integer orders (Mironov et al. 2019), as dp_accounting
        # computes it, but vectorised: calibration evaluates this curve dozens of times.
        plain = poisson_subsampled_rdp(
            lambda orders: orders / (2 * sigma**2), rate=rate, orders=MODELMIX_ORDERS, bound="tight"
        )
        mixed = modelmix_rdp(
            MODELMIX_ORDERS,
            sampling_rate=rate,
            noise_multiplier=self.noise_multiplier,
            clip=self.clip,
            tau_over_lr=self.modelmix.tau_over_lr,
            coordinate_clip_p=self.modelmix.p,
            expected_batch_size=self.batch_size,
            bound=self.modelmix_bound,
        )
        gaussian = dp_accounting.GaussianDpEvent(sigma)
        step = gaussian if rate == 1 else dp_accounting.PoissonSampledDpEvent(rate, gaussian)
        other = _orders_beside(MODELMIX_ORDERS)
        orders = (*MODELMIX_ORDERS, *other)
        rdp = np.concatenate([np.minimum(mixed, plain), rdp_vector(step, self.relation, other)])
        return RdpCurve(orders=orders, rdp=tuple(steps * rdp))

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

    def _dominating_client_round(self) -> dp_accounting.DpEvent:
        """One event that bounds every client's round, for the PLD accountant (which composes
        events, not curves): the smallest client's rate with the largest client's step count.
        A Poisson-sampled Gaussian's privacy profile grows with the rate (sampling at a lower
        rate is sampling again, which only amplifies) and with the number of steps."""
        sizes = self.client_sizes
        rate = min(1.0, self.batch_size / min(sizes))
        steps = poisson_steps(max(sizes), self.batch_size) * self.local_epochs
        return self._gaussian_steps(rate, steps)

    def zcdp(self, sampling: Sampling, rounds: int, delta: float) -> dict[str, Any] | None:
        """Yu et al.'s zCDP figure for `rounds` rounds, shown beside the exact RDP one: ρ =
        1/(2σ²) per local epoch, added up. Only for fixed cohorts (no sampling amplification,
        where zCDP is exact for the Gaussian); for Poisson cohorts their ρ would rest on an
        approximation of the sampled composition, so none is given; nor for Poisson batches."""
        if sampling.kind != "fixed" or self.batching != "shuffle" or self.modelmix is not None:
            return None
        rho = rounds * event_rho(self.round_privacy(sampling)).rho  # the zcdp accountant's rules
        return {
            "rho": rho,
            "epsilon": epsilon_from_rho(rho, delta),
            "note": "zCDP (Yu et al. 2019): rho = 1/(2 sigma^2) per local epoch, added over "
            "epochs and rounds, epsilon = rho + 2 sqrt(rho ln(1/delta)); the epsilon reported "
            "above is the exact RDP conversion, which is tighter",
        }

    def assumptions(self, sampling: Sampling) -> list[str]:
        """What the round's privacy rests on, in the words privacy.json reports."""
        if self.batching == "poisson":
            batches = (
                "each local step takes every example of the client independently with "
                "probability B/n (Poisson-sampled batches, Abadi et al. 2016), composed over the "
                "client's ceil(n/B) steps per epoch; clients of different sizes have different "
                "rates, and a round is charged the worst client's"
            )
            if self.accountant == "pld" and len(set(self.client_sizes)) > 1:
                batches += (
                    " (for the PLD accountant, one bound for all: the smallest client's rate "
                    "with the largest client's number of steps)"
                )
        else:
            batches = (
                "each local epoch's batches partition the client's examples, so an epoch "
                "releases one noisy sum per example (Yu et al. 2019's parallel composition); "
                "batches are formed by shuffling, under which adding an example also shifts "
                "later batch boundaries, a gap this argument does not cover (Chua et al. 2024)"
            )
        if sampling.kind == "poisson" and self.batching == "shuffle" and self.modelmix is None:
            clients = (
                "the example's client takes part in a round with probability q (amplification "
                "by Poisson sampling of clients)"
            )
        else:
            clients = (
                "no amplification is claimed from sampling clients: every round is charged as if "
                "the example's client took part"
            )
        lines = [f"DP-SGD on every client: {batches}", clients]
        if self.modelmix is not None:
            lines.append(
                "ModelMix: each step starts from a uniform random mix of the last two states, "
                "at least tau apart per coordinate, and the noisy gradient is divided by the "
                "fixed batch size B; a step is charged the lower of Xiao et al.'s Theorem 4.1 "
                "(Gaussian convolved with that uniform, per coordinate, the clamp's p "
                "coordinates at clip/sqrt(p)) and the plain sampled Gaussian. The theorem's "
                "worst case puts the gradient on as few coordinates as the clamp allows; the "
                "mixing randomness must stay secret, like the noise"
            )
        return lines

    def steps(self) -> list[str]:
        if self.batching == "poisson":
            batches = (
                f"ceil(n/{self.batch_size}) Poisson-sampled batches per epoch (each example "
                f"with probability {self.batch_size}/n)"
            )
        else:
            batches = f"shuffled batches of {self.batch_size}"
        if self.modelmix is None:
            return [
                f"client: DP-SGD for {self.local_epochs} epoch(s), {batches}: clip "
                f"each example's gradient to L2 norm {self.clip:g}, add N(0, "
                f"({self.noise_multiplier:.4g}·{self.clip:g})²) to the batch sum, divide by "
                f"{self.batch_size}, step with learning rate {self.learning_rate:g}",
            ]
        mix = self.modelmix
        clamp = mix.coordinate_clip(self.clip)
        clamped = "" if clamp is None else f", clamp each coordinate to ±{clamp:.4g}"
        tau = mix.tau_over_lr * self.learning_rate
        return [
            f"client: ModelMix DP-SGD for {self.local_epochs} epoch(s), {batches}: clip each "
            f"example's gradient to L2 norm {self.clip:g}{clamped}, add N(0, "
            f"({self.noise_multiplier:.4g}·{self.clip:g})²) to the batch sum, divide by "
            f"{self.batch_size}; step with learning rate {self.learning_rate:g} from a uniform "
            f"random mix of the last two states, pushed at least τ = {tau:.4g} apart",
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
        if self.modelmix is not None:
            described["modelmix"] = {
                "tau_over_lr": self.modelmix.tau_over_lr,
                "tau": self.modelmix.tau_over_lr * self.learning_rate,
                "coordinate_clip_p": self.modelmix.coordinate_clip_p,
                "coordinate_clip": self.modelmix.coordinate_clip(self.clip),
                "bound": (
                    "Xiao et al. 2022, Theorem 4.1 (Gaussian noise convolved with the uniform "
                    "of the random mix, per coordinate), Poisson subsampling by "
                    + (
                        "Zhu & Wang's general bound"
                        if self.modelmix_bound == "general"
                        else "the theorem's own sum ('tight', proven for the Gaussian only)"
                    )
                ),
            }
        if self.batching == "poisson":
            sizes = sorted(set(self.client_sizes))
            described["sampling_rate_per_step"] = {
                "smallest_client": min(1.0, self.batch_size / sizes[0]),
                "largest_client": min(1.0, self.batch_size / sizes[-1]),
            }
        return described


def _orders_beside(integer_orders: tuple[int, ...]) -> tuple[float, ...]:
    """The ledger's RDP orders that `integer_orders` do not cover."""
    covered = set(integer_orders)
    return tuple(a for a in RDP_ORDERS if a not in covered)


def poisson_steps(examples: int, batch_size: int) -> int:
    """Steps per epoch under Poisson batching: ceil(n / B), one epoch's worth in expectation."""
    return max(1, -(-examples // batch_size))
