"""What a training run has spent so far, round by round.

Rounds may differ (noise schedules, changing cohorts): every round is composed exactly as
recorded. RDP keeps a running RDP vector (one vector add and one conversion per round); PLD
keeps a running privacy loss distribution and caches the last few per-round PLDs; zCDP keeps a
running ρ beside the same RDP vector, and reports the larger of the two epsilons.
"""

import json
import math
from collections import OrderedDict
from typing import Any, Literal

import dp_accounting
import numpy as np

from mechanisms.accounting import codec, pld
from mechanisms.accounting.rdp import (
    RDP_ORDERS,
    RdpCurve,
    RoundPrivacy,
    epsilon_and_order,
    rdp_vector,
)
from mechanisms.accounting.zcdp import ZcdpCost, epsilon_from_rho, event_rho

Accountant = Literal["rdp", "pld", "zcdp"]

_LEDGER_FORMAT = "mechanisms.accounting.PrivacyLedger/1"
_CACHE_SIZE = 4
_RELATION_NAMES = {
    dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE: "add_or_remove_one",
    dp_accounting.NeighboringRelation.REPLACE_ONE: "replace_one",
}
_NEIGHBOURING_TEXT = {
    dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE: "add/remove one client",
    dp_accounting.NeighboringRelation.REPLACE_ONE: "replace one client",
}
_CONVERSION = "converted to (epsilon, delta) with Canonne-Kamath-Steinke 2020 / Balle et al. 2020"
_RDP_BOUNDS = {
    dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE: (
        "RDP of the Poisson-subsampled Gaussian (Mironov, Talwar & Zhang 2019), " + _CONVERSION
    ),
    dp_accounting.NeighboringRelation.REPLACE_ONE: (
        "RDP of the Gaussian under sampling without replacement, replace-one neighbours "
        "(Wang, Balle & Kasiviswanathan 2019), " + _CONVERSION
    ),
}
_PLD_BOUND = (
    "privacy loss distribution of the Poisson-subsampled mechanism, pessimistic connect-the-dots "
    f"discretisation at interval {pld.VALUE_DISCRETIZATION_INTERVAL:g} (Doroshenko et al. 2022), "
    "composed round by round"
)
_ZCDP_SAMPLED_STEPS = {
    dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE: (
        "whose rho = q^2/sigma^2 per Poisson-sampled Gaussian step is an approximation"
    ),
    dp_accounting.NeighboringRelation.REPLACE_ONE: (
        "here without amplification: a fixed-size cohort is charged the unsampled rho"
    ),
}


def _zcdp_bound(relation: dp_accounting.NeighboringRelation) -> str:
    sampled_steps = _ZCDP_SAMPLED_STEPS[relation]
    return (
        f"zCDP (Bun & Steinke 2016; Yu et al. 2019 for sampled steps, {sampled_steps}), rho "
        "added over rounds, epsilon = rho + 2 sqrt(rho ln(1/delta)); the reported epsilon is the "
        f"larger of this zCDP figure and the exact RDP conversion ({_RDP_BOUNDS[relation]})"
    )


def check_accounting_choice(
    accountant: str, relation: dp_accounting.NeighboringRelation, delta: float
) -> None:
    """Fail early, in plain words, on combinations we cannot account for."""
    if accountant not in ("rdp", "pld", "zcdp"):
        raise ValueError(f"accountant must be 'rdp', 'pld' or 'zcdp', got {accountant!r}")
    if relation not in _RELATION_NAMES:
        raise ValueError(f"unsupported neighbouring relation {relation}")
    if accountant == "pld" and relation is not dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE:
        raise ValueError(
            "the PLD accountant supports only Poisson sampling (add/remove one client); "
            "dp_accounting has no PLD for fixed-size sampling without replacement: "
            "use accountant='rdp'"
        )
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")


class PrivacyLedger:
    """Running (epsilon, delta) of everything recorded, under one neighbouring relation.

    Each recorded round is a dp_accounting DpEvent that already includes the cohort sampling
    (see `Sampling.round_event`), or, for the RDP accountant, an `RdpCurve`.

    zcdp: epsilon is the larger of the zCDP figure and the exact RDP one. The exact RDP bound is
    always valid, so the larger is too, even where the zCDP figure rests on an approximation
    that fails (`describe` says whether it holds).
    """

    def __init__(
        self,
        delta: float,
        accountant: Accountant = "rdp",
        relation: dp_accounting.NeighboringRelation = (
            dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
        ),
    ) -> None:
        check_accounting_choice(accountant, relation, delta)
        self._delta = float(delta)
        self._accountant = accountant
        self._relation = relation
        self._entries: list[RoundPrivacy] = []
        self._epsilons: list[float] = []
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._rdp = np.zeros(len(RDP_ORDERS))
        self._pld: pld.PrivacyLossDistribution | None = pld.identity()
        self._zcdp = ZcdpCost(0.0)
        # The last look-ahead (entry, composed state, epsilon): the run loop asks epsilon_after
        # and then records the same entry, and a PLD composition is worth not doing twice.
        self._look_ahead: tuple[RoundPrivacy, Any, float] | None = None

    @property
    def delta(self) -> float:
        return self._delta

    @property
    def accountant(self) -> Accountant:
        return self._accountant

    @property
    def relation(self) -> dp_accounting.NeighboringRelation:
        return self._relation

    @property
    def orders(self) -> tuple[float, ...]:
        """RDP orders the ledger tracks; mechanisms supplying an `RdpCurve` should use these."""
        return RDP_ORDERS

    @property
    def rounds(self) -> int:
        return len(self._entries)

    @property
    def epsilon(self) -> float:
        return self._epsilons[-1] if self._epsilons else 0.0

    @property
    def epsilon_per_round(self) -> list[float]:
        return list(self._epsilons)

    def record(self, entry: RoundPrivacy) -> None:
        """Spend one round."""
        if self._look_ahead is not None and self._look_ahead[0] == entry:
            _, composed, epsilon = self._look_ahead
        else:
            composed, epsilon = self._composed_with(entry)
        self._look_ahead = None
        self._entries.append(entry)
        self._set_running(composed)
        self._epsilons.append(epsilon)

    def epsilon_after(self, entry: RoundPrivacy) -> float:
        """Epsilon if `entry` were recorded next; the ledger is left unchanged."""
        composed, epsilon = self._composed_with(entry)
        self._look_ahead = (entry, composed, epsilon)
        return epsilon

    def _composed_with(self, entry: RoundPrivacy) -> tuple[Any, float]:
        """The running state with `entry` added, and its epsilon."""
        composed = self._added(self._round_cost(entry))
        return composed, self._epsilon_of(composed)

    def _running(self) -> Any:
        """The running RDP vector, PLD, or (ρ, RDP vector) for zcdp."""
        if self._accountant == "rdp":
            return self._rdp
        if self._accountant == "zcdp":
            return self._zcdp, self._rdp
        return self._pld

    def _set_running(self, composed: Any) -> None:
        if self._accountant == "rdp":
            self._rdp = composed
        elif self._accountant == "zcdp":
            self._zcdp, self._rdp = composed
        else:
            self._pld = composed

    def _added(self, cost: Any) -> Any:
        """The running state with one round's cost (from `_round_cost`) added."""
        if self._accountant == "rdp":
            return self._rdp + cost
        if self._accountant == "zcdp":
            rho_cost, rdp_cost = cost
            return self._zcdp.compose(rho_cost), self._rdp + rdp_cost
        return _compose(self._pld, cost)

    def _epsilon_of(self, composed: Any) -> float:
        if self._accountant == "rdp":
            return epsilon_and_order(RDP_ORDERS, composed, self._delta)[0]
        if self._accountant == "zcdp":
            rho_total, rdp = composed
            return max(
                epsilon_from_rho(rho_total.rho, self._delta),
                epsilon_and_order(RDP_ORDERS, rdp, self._delta)[0],
            )
        return pld.epsilon(composed, self._delta)

    def describe(self) -> dict[str, Any]:
        """Summary for privacy.json."""
        summary: dict[str, Any] = {
            "accountant": self._accountant,
            "delta": self._delta,
            "epsilon": codec.encode_float(self.epsilon),
            "rounds": self.rounds,
            "epsilon_per_round": [codec.encode_float(e) for e in self._epsilons],
            "neighbouring": _NEIGHBOURING_TEXT[self._relation],
        }
        if self._accountant == "rdp":
            bound = _RDP_BOUNDS[self._relation]
            if any(isinstance(entry, RdpCurve) for entry in self._entries):
                bound += "; plus mechanism-supplied RDP curves"
            summary["bound"] = bound
            summary["optimal_order"] = (
                epsilon_and_order(RDP_ORDERS, self._rdp, self._delta)[1] if self.rounds else None
            )
        elif self._accountant == "zcdp":
            summary.update(self._describe_zcdp())
        else:
            summary["bound"] = _PLD_BOUND
        return summary

    def _describe_zcdp(self) -> dict[str, Any]:
        """The two figures whose larger is `epsilon`, so users see what each accounting gives."""
        epsilon_rdp, optimal_order = (
            epsilon_and_order(RDP_ORDERS, self._rdp, self._delta) if self.rounds else (0.0, None)
        )
        return {
            "bound": _zcdp_bound(self._relation),
            "zcdp": {
                "rho": codec.encode_float(self._zcdp.rho),
                "epsilon": codec.encode_float(epsilon_from_rho(self._zcdp.rho, self._delta)),
                "approximate": self._zcdp.approximate,
                "approximation_holds": self._zcdp.approximation_holds(self._delta),
            },
            "epsilon_rdp": codec.encode_float(epsilon_rdp),
            "optimal_order": optimal_order,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (for checkpoints); `from_dict` replays it exactly."""
        return {
            "format": _LEDGER_FORMAT,
            "accountant": self._accountant,
            "delta": self._delta,
            "relation": _RELATION_NAMES[self._relation],
            "orders": list(RDP_ORDERS),
            "rounds": [codec.encode_round(entry) for entry in self._entries],
            "epsilon_per_round": [codec.encode_float(e) for e in self._epsilons],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "PrivacyLedger":
        if state.get("format") != _LEDGER_FORMAT:
            raise ValueError(f"not a privacy ledger (format {state.get('format')!r})")
        if [float(a) for a in state["orders"]] != list(RDP_ORDERS):
            raise ValueError("ledger was saved with different RDP orders; cannot resume it")
        relations = {name: relation for relation, name in _RELATION_NAMES.items()}
        ledger = cls(state["delta"], state["accountant"], relations[state["relation"]])
        saved_epsilons = [float(e) for e in state["epsilon_per_round"]]
        entries = [codec.decode_round(encoded) for encoded in state["rounds"]]
        if len(saved_epsilons) != len(entries):
            raise ValueError("ledger has a different number of rounds and epsilons")
        for entry in entries:  # Replay in order: the same sums/compositions as the original.
            ledger._set_running(ledger._added(ledger._round_cost(entry)))
            ledger._entries.append(entry)
        if entries:
            replayed = ledger._epsilon_of(ledger._running())
            if not math.isclose(replayed, saved_epsilons[-1], rel_tol=1e-9):
                raise ValueError(
                    f"replaying the ledger gives epsilon {replayed}, but it was saved with "
                    f"{saved_epsilons[-1]}; refusing to resume from an inconsistent ledger"
                )
            saved_epsilons[-1] = replayed
        ledger._epsilons = saved_epsilons
        return ledger

    def _round_cost(self, entry: RoundPrivacy) -> Any:
        """One round's RDP vector, list of PLDs (None if non-private), or (ρ, RDP vector) for
        zcdp; cached by content."""
        key = json.dumps(codec.encode_round(entry), sort_keys=True)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if self._accountant == "rdp":
            cost: Any = rdp_vector(entry, self._relation, RDP_ORDERS)
        elif self._accountant == "zcdp":
            rho_cost = event_rho(entry)  # first: it refuses an RdpCurve in plain words
            cost = rho_cost, rdp_vector(entry, self._relation, RDP_ORDERS)
        elif isinstance(entry, RdpCurve):
            raise ValueError("the PLD accountant cannot compose RDP curves; use accountant='rdp'")
        else:
            cost = pld.round_plds(entry, self._relation)
        self._cache[key] = cost
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return cost


def _compose(
    running: pld.PrivacyLossDistribution | None,
    parts: list[pld.PrivacyLossDistribution] | None,
) -> pld.PrivacyLossDistribution | None:
    if running is None or parts is None:
        return None
    for part in parts:
        running = running.compose(part)
    return running
