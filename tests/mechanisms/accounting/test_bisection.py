import math

import pytest

from mechanisms.accounting.bisection import least_passing, least_passing_in


@pytest.mark.parametrize("boundary", [1e-6, 0.37, 1.0, 2.5e4])
def test_returns_a_passing_value_within_tolerance_of_the_boundary(boundary):
    calls = []

    def passes(x: float) -> bool:
        calls.append(x)
        return x >= boundary

    found = least_passing(passes, boundary / 1000, boundary * 1000, relative_tolerance=1e-6)
    assert passes(found) and found / boundary < 1 + 1e-6
    assert len(calls) < 2 + math.log2(math.log(1e6) / 1e-6)  # bisection, not a scan


def test_rejects_an_empty_bracket():
    with pytest.raises(ValueError):
        least_passing(lambda x: True, 2.0, 1.0, relative_tolerance=1e-3)


def test_least_passing_in_handles_both_ends_of_the_range():
    assert least_passing_in(lambda x: x >= 0.5, 1.0, 10.0, relative_tolerance=1e-6) == 1.0
    assert least_passing_in(lambda x: x >= 50.0, 1.0, 10.0, relative_tolerance=1e-6) is None
    found = least_passing_in(lambda x: x >= 3.0, 1.0, 10.0, relative_tolerance=1e-6)
    assert 3.0 <= found < 3.0 * (1 + 1e-6)
