import math

import numpy as np
import pytest

from mechanisms.discretized import clients_share, fewest_survivors, noise_inflation


def test_fewest_survivors_allows_floor_of_the_tolerated_fraction_to_drop():
    assert fewest_survivors(10, 0.0) == 10
    assert fewest_survivors(10, 0.3) == 7
    assert fewest_survivors(100, 0.29) == 71  # 0.29 * 100 == 28.999999999999996 in floats
    assert fewest_survivors(9, 0.3) == 7
    assert fewest_survivors(1, 0.5) == 1
    assert fewest_survivors(0, 0.2) == 1


@pytest.mark.parametrize("tolerance", [0.0, 0.07, 0.1, 0.29, 0.3, 0.5, 0.95])
def test_clients_share_divides_by_the_same_survivor_count_in_tf(tolerance):
    cohorts = np.arange(0, 400)
    shares = np.asarray(clients_share(cohorts.astype(np.int32), 50, tolerance))
    expected = [50 / fewest_survivors(int(m), tolerance) for m in cohorts]
    np.testing.assert_array_equal(shares, expected)


@pytest.mark.parametrize("tolerance", [0.0, 0.1, 0.3, 0.5])
def test_inflation_bounds_what_a_full_cohort_adds(tolerance):
    worst = max(m / fewest_survivors(m, tolerance) for m in range(1, 2000))
    assert worst <= noise_inflation(tolerance) * (1 + 1e-12)
    assert math.isclose(noise_inflation(tolerance), 1 / (1 - tolerance))
    with pytest.raises(ValueError):
        noise_inflation(1.0)
