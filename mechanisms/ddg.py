"""Distributed discrete Gaussian (Kairouz, Liu, Steinke, ICML 2021): each client adds discrete
Gaussian noise to its scaled, rounded update; a modular secure sum adds them up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mechanisms.accounting.ddg import DISTRIBUTED_ORDERS, ddg_round_rdp
from mechanisms.discretized import clients_share
from mechanisms.scaled_rounding import ScaledRoundingMechanism


@dataclass(frozen=True)
class DistributedDiscreteGaussian(ScaledRoundingMechanism):
    name = "ddg"
    noise_name = "discrete Gaussian"
    accounting = (
        "RDP of the distributed discrete Gaussian (Kairouz, Liu & Steinke 2021, least of their "
        "three bounds, tau term taken over the whole population), Poisson subsampling with the "
        "general bound of Zhu & Wang 2019, composed over rounds, converted with "
        "Canonne-Kamath-Steinke 2020"
    )

    def _noise(self, shape, seed, cohort):
        """Each of `cohort` clients adds DG with integer sigma ceil(sigma'·sqrt(n/cohort)): the
        sum's variance is at least what the accountant assumed, whoever takes part."""
        import tensorflow as tf

        from mechanisms.noise import discrete_gaussian

        share = clients_share(cohort, self.clients, self.max_dropout)  # of the variance
        sigma = tf.math.ceil(self.local_stddev * self.scale * tf.sqrt(share))
        return discrete_gaussian(shape, tf.cast(sigma, tf.int64), seed)

    def round_rdp(self, rate: float) -> np.ndarray:
        """Tau is taken for the whole population sharing the expected cohort's variance: every
        cohort size is then covered (tau grows with more, smaller shares)."""
        l2, l1 = self.sensitivity
        spread = math.sqrt(self.clients / self.population)
        return ddg_round_rdp(
            l2=l2,
            l1=l1,
            sigma=self.local_stddev * spread,
            clients=self.population,
            scale=self.scale,
            dim=self.padded_dim,
            rate=rate,
            orders=DISTRIBUTED_ORDERS,
        )
