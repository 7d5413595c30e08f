"""Skellam mixture mechanism (Bao et al., VLDB 2022): distributed DP on real-valued updates.

Each client rotates its update, scales it by gamma, clips the *expected* squared norm of its
randomized rounding to c = (gamma·clip)² (the mixture norm), clips coordinates to l_inf, rounds
unconditionally at random, adds Skellam(mu', mu') noise per coordinate and wraps into Z_M. The
server unwraps the modular sum, divides by gamma and rotates back. The accountant pays for the
mixture norm c instead of the worst-case norm growth of rounding (what DDG and Skellam pay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mechanisms.accounting import RoundPrivacy, Sampling
from mechanisms.accounting.smm import SMM_ORDERS, smm_linf, smm_round_rdp
from mechanisms.accounting.subsampled import Bound
from mechanisms.discretized import (
    clients_share,
    curve_up_to,
    decode_secure_sum,
    derived_seed,
    noise_inflation,
    run_epsilon,
    to_secure_sum,
)
from mechanisms.rotation import Rotation, padded_dimension
from mechanisms.scaling import BitsTooFewError, sum_wrap_probability, wrap_k


@dataclass(frozen=True)
class SkellamMixtureMechanism:
    """SMM with every parameter fixed: build it with `smm_mechanism`."""

    clip: float
    gamma: float
    mu: float  # Poisson mean per client per coordinate, for the expected cohort
    clients: int  # expected cohort: the sum carries the noise of this many clients
    bits: int
    rotation: Rotation
    dim: int
    linf: float  # coordinate clip (scaled units); the RDP bound holds at orders a with L(a) >= it
    bound: Bound = "general"
    max_dropout: float = 0.0  # clients provision noise so that this fraction may drop out
    name: str = "smm"

    def __post_init__(self):
        for field in ("clip", "gamma", "mu", "linf"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)}")

    @property
    def max_order(self) -> int:
        """The largest order whose bound covers coordinates up to linf (1: none does)."""
        covered = smm_linf(SMM_ORDERS, mu_total=self.mu_total) >= self.linf
        return int(max((a for a, ok in zip(SMM_ORDERS, covered, strict=True) if ok), default=1))

    @property
    def padded_dim(self) -> int:
        return padded_dimension(self.dim, self.rotation)

    @property
    def c(self) -> float:
        """Bound on E‖R(y)‖², the expected squared norm of a client's rounded scaled vector."""
        return (self.gamma * self.clip) ** 2

    @property
    def mu_total(self) -> float:
        return self.clients * self.mu

    def wrap_probability(self) -> float:
        return sum_wrap_probability(
            bits=self.bits,
            signal_l2=self.gamma * self.clip,
            clients=self.clients,
            dim=self.padded_dim,
            noise_variance=2 * self.mu_total * noise_inflation(self.max_dropout),
        )

    def encode(self, update, shared_seed, private_seed, cohort):
        import tensorflow as tf

        from mechanisms import noise
        from mechanisms.rotation import rotate

        y = tf.cast(rotate(update, shared_seed, self.rotation), tf.float64) * self.gamma
        y, ratio = _mixture_norm_clip(y, self.c)
        y = tf.clip_by_value(y, -self.linf, self.linf)
        rounding_seed, noise_seed = (derived_seed(private_seed, i) for i in (0, 1))
        z = noise.randomized_round(y, rounding_seed)
        mean = self.mu * clients_share(cohort, self.clients, self.max_dropout)
        z = z + noise.skellam(z.shape, mean, noise_seed)
        return to_secure_sum(z, self.bits), {
            "mixture_clip_ratio": tf.cast(ratio, tf.float32),
            "clipped": tf.cast(ratio < 1.0, tf.float32),
            "update_norm": tf.norm(update),
        }

    def decode(self, total, shared_seed, round_index=0):
        del round_index  # the same noise every round
        return decode_secure_sum(
            total,
            shared_seed,
            bits=self.bits,
            scale=self.gamma,
            rotation=self.rotation,
            dim=self.dim,
        )

    def round_rdp(self, rate: float):
        return smm_round_rdp(
            c=self.c, mu_total=self.mu_total, rate=rate, bound=self.bound, orders=SMM_ORDERS
        )

    def round_privacy(self, sampling: Sampling) -> RoundPrivacy:
        return curve_up_to(SMM_ORDERS, self.round_rdp(sampling.rate), self.max_order)

    def steps(self) -> list[str]:
        return [
            f"client: {self.rotation} rotation to {self.padded_dim} coordinates, "
            f"scale by gamma = {self.gamma:.4g}",
            f"client: clip the mixture norm to c = {self.c:.4g}, coordinates to {self.linf:.4g}",
            "client: randomized rounding to integers",
            f"client: add Skellam noise (mu = {self.mu:.4g} for {self.clients} clients, shared "
            f"among those present{self._dropout_note()})",
            f"client: wrap mod 2^{self.bits}",
            f"server: centre the sum, divide by gamma, undo the {self.rotation} rotation",
        ]

    def _dropout_note(self) -> str:
        return f", provisioned for {self.max_dropout:g} dropping" if self.max_dropout else ""

    def describe(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "gamma": self.gamma,
            "mu": self.mu,
            "mu_total": self.mu_total,
            "mixture_norm_bound_c": self.c,
            "linf": self.linf,
            "rdp_orders_up_to": self.max_order,
            "bits": self.bits,
            "rotation": self.rotation,
            "dimension": self.dim,
            "padded_dimension": self.padded_dim,
            "subsampling_bound": self.bound,
            "max_dropout": self.max_dropout,
            "predicted_wrap_probability": self.wrap_probability(),
            "noise_added_by": "clients (Skellam shares; the secure sum carries the noise of "
            f"{self.clients} clients whoever takes part{self._dropout_note()})",
            "sensitivity": "mixture norm: E||R(gamma*x)||^2 <= c = (gamma*clip)^2 per client",
            "accounting": "RDP of the Skellam mixture mechanism (Bao et al. 2022: "
            "(1.2a+1)c/(4 mu_total) at integer orders a, valid with coordinates clipped to "
            f"L(a); held up to order {self.max_order}), Poisson subsampling with the "
            + (
                "general bound of Zhu & Wang 2019"
                if self.bound == "general"
                else "authors' tight form (not confirmed by us for SMM; 'general' is the "
                "conservative choice)"
            )
            + ", composed over rounds, converted with Canonne-Kamath-Steinke 2020",
        }


def _mixture_norm_clip(y, c: float):
    """Shrinks y so that Σ_j E[R(y_j)²] ≤ c exactly under randomized rounding (smm.md step 3)."""
    import tensorflow as tf

    a = tf.abs(y)
    p = a - tf.floor(a)
    v = a * a + p - p * p
    ratio = tf.minimum(c / tf.maximum(tf.reduce_sum(v), 1e-300), 1.0)
    v = v * ratio
    # v is piecewise linear in a on [k, k+1): v = k² + (2k+1)(a-k). Invert it, guarding sqrt's
    # rounding so that k² <= v < (k+1)² holds exactly.
    k = tf.floor(tf.sqrt(v))
    k = tf.where(k * k > v, k - 1, k)
    k = tf.where((k + 1) * (k + 1) <= v, k + 1, k)
    t = k + (v - k * k) / (2 * k + 1)
    return tf.sign(y) * t, ratio


def smm_mechanism(
    *,
    clip: float,
    bits: int,
    rotation: Rotation,
    dim: int,
    clients: int,
    rate: float,
    rounds: int,
    delta: float,
    bound: Bound,
    wrap_probability: float,
    gamma: float | None = None,
    mu: float | None = None,
    target_epsilon: float | None = None,
    max_dropout: float = 0.0,
) -> SkellamMixtureMechanism:
    """SMM for a run: calibrates mu to `target_epsilon` (or takes `mu`), picks gamma for the
    target wrap probability unless given, and sets l_inf at the run's optimal RDP order.

    Epsilon depends on gamma and mu only through c / mu_total, so with a target the noise ratio is
    calibrated first and gamma then follows from the modulus in closed form:
    (M / 2k)² = gamma²·clip²·(n²/d' + 2·inflation/ratio) + n/4 (aligned signal, noise, rounding),
    the noise inflated by what clients add to provision for `max_dropout`.
    """
    from mechanisms.accounting.smm import smm_calibrate_mu_total

    if (mu is None) == (target_epsilon is None):
        raise ValueError("give exactly one of mu and target_epsilon")
    padded = padded_dimension(dim, rotation)
    k = wrap_k(wrap_probability)
    headroom = (2.0 ** (bits - 1) / k) ** 2 - clients / 4
    inflation = noise_inflation(max_dropout)
    if target_epsilon is not None:
        unit_c = 1.0  # calibrate the ratio c / mu_total at c = 1
        ratio = unit_c / smm_calibrate_mu_total(
            target_epsilon,
            c=unit_c,
            rate=rate,
            rounds=rounds,
            delta=delta,
            bound=bound,
            orders=SMM_ORDERS,
            rdp_to_epsilon=lambda orders, rdp: run_epsilon(orders, rdp, 1, delta)[0],
        )
        if gamma is None:
            if headroom <= 0:
                raise _too_few_bits(bits, clients)
            spread = math.sqrt(clients**2 / padded + 2 * inflation / ratio)
            gamma = math.sqrt(headroom) / (clip * spread)
        mu = (gamma * clip) ** 2 / ratio / clients
    elif gamma is None:
        headroom -= 2 * clients * mu * inflation
        if headroom <= 0:
            raise _too_few_bits(bits, clients, mu)
        gamma = math.sqrt(headroom) * math.sqrt(padded) / (clip * clients)
    rdp = smm_round_rdp(
        c=(gamma * clip) ** 2, mu_total=clients * mu, rate=rate, bound=bound, orders=SMM_ORDERS
    )
    _, order = run_epsilon(SMM_ORDERS, rdp, rounds, delta)
    best = min(max(2, math.ceil(order)), SMM_ORDERS[-1])
    return SkellamMixtureMechanism(
        clip=clip,
        gamma=gamma,
        mu=mu,
        clients=clients,
        bits=bits,
        rotation=rotation,
        dim=dim,
        linf=float(smm_linf([best], mu_total=clients * mu)[0]),
        bound=bound,
        max_dropout=max_dropout,
    )


def _too_few_bits(bits: int, clients: int, mu: float | None = None) -> BitsTooFewError:
    noise = f" and Skellam noise mu = {mu:g} per client" if mu is not None else ""
    return BitsTooFewError(
        f"bits ({bits}) cannot hold the sum of {clients} clients' rounding{noise} at the "
        "target wrap probability; use more bits, fewer clients per round or a larger "
        "modclip_prob"
    )
