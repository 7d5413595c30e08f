"""Skellam mechanism (Agarwal, Kairouz, Liu, NeurIPS 2021): each client adds
Poisson(lambda) - Poisson(lambda) noise to its scaled, rounded update; a modular secure sum adds
them up. Skellam noise is closed under sums, so the noise shares add up exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mechanisms.accounting.ddg import DISTRIBUTED_ORDERS, skellam_round_rdp
from mechanisms.discretized import clients_share
from mechanisms.scaled_rounding import ScaledRoundingMechanism


@dataclass(frozen=True)
class SkellamMechanism(ScaledRoundingMechanism):
    name = "skellam"
    noise_name = "Skellam"
    accounting = (
        "RDP of the Skellam mechanism (Agarwal, Kairouz & Liu 2021), Poisson subsampling with the "
        "general bound of Zhu & Wang 2019, composed over rounds, converted with "
        "Canonne-Kamath-Steinke 2020"
    )

    def _noise(self, shape, seed, cohort):
        """Each client adds Skellam with mean lambda·n/cohort: the sum is exactly Skellam with the
        expected cohort's variance n·sigma'², whoever takes part."""
        from mechanisms.noise import skellam

        per_client_mean = (self.local_stddev * self.scale) ** 2 / 2
        share = clients_share(cohort, self.clients, self.max_dropout)
        return skellam(shape, per_client_mean * share, seed)

    def round_rdp(self, rate: float) -> np.ndarray:
        l2, l1 = self.sensitivity
        return skellam_round_rdp(
            l2=l2,
            l1=l1,
            sigma=self.local_stddev,
            clients=self.clients,
            scale=self.scale,
            rate=rate,
            orders=DISTRIBUTED_ORDERS,
        )
