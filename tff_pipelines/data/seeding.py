"""Independent random streams, one per purpose, all derived from the run's single seed.

Each purpose (split, partition, synthetic generation, sampling, ...) gets its own `SeedSequence`
child keyed by the purpose's name, so changing how one stream is consumed (say, another
partition scheme) never shifts the numbers another stream (say, client sampling) produces.
"""

from __future__ import annotations

import numpy as np

from tff_pipelines.data.errors import DataError


def seed_sequence(seed: int, purpose: str) -> np.random.SeedSequence:
    """The `SeedSequence` for `purpose`, with the purpose's UTF-8 bytes as its spawn key."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if not purpose:
        raise DataError("purpose must be a non-empty string")
    purpose_key = int.from_bytes(purpose.encode("utf-8"), "little")
    return np.random.SeedSequence(int(seed), spawn_key=(purpose_key,))


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """A PCG64 generator for `purpose`, independent of every other purpose's generator."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, purpose)))
