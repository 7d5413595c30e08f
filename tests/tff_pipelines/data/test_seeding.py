import numpy as np
import pytest

from tff_pipelines.data import DataError
from tff_pipelines.data.seeding import rng_for


def test_purposes_are_independent_and_reproducible():
    draws = {p: rng_for(5, p).integers(0, 2**62, 4).tolist() for p in ("split", "sampling")}
    assert draws["split"] != draws["sampling"]
    assert rng_for(5, "split").integers(0, 2**62, 4).tolist() == draws["split"]
    assert rng_for(6, "split").integers(0, 2**62, 4).tolist() != draws["split"]
    assert isinstance(rng_for(0, "x").bit_generator, np.random.PCG64)


def test_bad_seed():
    with pytest.raises(DataError):
        rng_for(-1, "split")
    with pytest.raises(DataError):
        rng_for(1.5, "split")
