"""What a privacy mechanism is, as the aggregation factory and the accountant see it."""

from __future__ import annotations

from typing import Any, Protocol

import dp_accounting


class Mechanism(Protocol):
    """One private release per round: encode on each client, sum, decode on the server.

    `encode` and `decode` are TF functions on flat float32 vectors, traced into one client
    computation and one server computation each, so the compiled process stays shallow. `seed` is
    a stateless-RNG seed (int64[2]) that changes every round; all noise must derive from it.
    The privacy cost of one unsampled release is a plain dp_accounting event; the accountant adds
    the sampling and composes rounds.
    """

    name: str

    def encode(self, update: Any, seed: Any) -> tuple[Any, dict[str, Any]]:
        """Client side: returns what is summed, and scalar diagnostics summed over clients."""
        ...

    def decode(self, total: Any, seed: Any) -> Any:
        """Server side: from the sum of encodings to a float32 sum of (noisy) client updates."""
        ...

    def release_event(self, relation: dp_accounting.NeighboringRelation) -> dp_accounting.DpEvent:
        """Privacy cost of one release over all clients, under the given neighbouring relation."""
        ...

    def describe(self) -> dict[str, Any]:
        """Parameters for the privacy report (noise, clip, who adds the noise)."""
        ...
