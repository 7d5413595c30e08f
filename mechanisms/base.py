"""What a privacy mechanism is, as the aggregation factory and the accountant see it."""

from __future__ import annotations

from typing import Any, Protocol

from mechanisms.accounting import RoundPrivacy, Sampling


class Mechanism(Protocol):
    """One private release per round: encode on each client, sum, decode on the server.

    `encode` and `decode` are TF functions on flat float32 vectors, traced into one client
    computation and one server computation each, so the compiled process stays shallow. Seeds are
    stateless-RNG seeds (int64[2]) that change every round: `shared_seed` is the same for every
    client and the server (e.g. a random rotation), `private_seed` differs between clients (their
    own noise). `cohort` is the number of clients in the round (int32 scalar), which clients of a
    distributed mechanism need to add their share of the noise.

    Privacy is plain values: `round_privacy` states one sampled round for the accountant.
    """

    name: str

    def encode(
        self, update: Any, shared_seed: Any, private_seed: Any, cohort: Any
    ) -> tuple[Any, dict[str, Any]]:
        """Client side: what is summed (a tensor or a structure of tensors), and scalar
        diagnostics that the factory averages over clients."""
        ...

    def decode(
        self, total: Any, shared_seed: Any, round_index: Any = 0
    ) -> tuple[Any, dict[str, Any]]:
        """Server side: from the sum of encodings to a float32 sum of (noisy) client updates, and
        scalar diagnostics of the round. `round_index` (int64 scalar, 0 for the first round) lets
        a mechanism follow a noise schedule."""
        ...

    def round_privacy(self, sampling: Sampling) -> RoundPrivacy:
        """Privacy cost of one round in which `sampling` picks the cohort."""
        ...

    def steps(self) -> list[str]:
        """What happens, in order, each step prefixed 'client:' or 'server:' (for tffp inspect)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Parameters for the privacy report (noise, clip, who adds the noise)."""
        ...
