"""Privacy accounting for federated rounds: who is sampled, what each round costs, how much noise.

Mechanisms describe one unsampled release as a `dp_accounting.DpEvent` (or an `RdpCurve`);
this package wraps it in the cohort sampling, composes rounds, and converts to (epsilon, delta).
"""

from mechanisms.accounting.calculator import epsilon_after, epsilon_for_rounds
from mechanisms.accounting.calibrate import calibrate_noise_multiplier
from mechanisms.accounting.ledger import PrivacyLedger
from mechanisms.accounting.rdp import RDP_ORDERS, RdpCurve, RoundPrivacy, epsilons_from_rdp
from mechanisms.accounting.sampling import Sampling

__all__ = [
    "RDP_ORDERS",
    "PrivacyLedger",
    "RdpCurve",
    "RoundPrivacy",
    "Sampling",
    "calibrate_noise_multiplier",
    "epsilon_after",
    "epsilon_for_rounds",
    "epsilons_from_rdp",
]
