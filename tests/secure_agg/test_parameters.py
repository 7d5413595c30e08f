import pytest

from secure_agg.parameters import auto_neighbours, auto_threshold, plan, threshold_problem


@pytest.mark.parametrize(
    "cohort, k", [(1, None), (2, None), (5, None), (9, None), (10, 8), (100, 14), (1000, 20)]
)
def test_auto_neighbours_is_even_logarithmic_and_all_for_small_cohorts(cohort, k):
    assert auto_neighbours(cohort) == k


def test_plan_resolves_auto_and_all_against_the_expected_cohort():
    assert plan(100, "auto", "auto") == (14, 8)
    assert plan(100, "all", "auto") == (None, 50)
    assert plan(100, 20, "auto") == (20, 11)
    assert plan(100, 20, 15) == (20, 15)
    assert auto_threshold(9) == 5


@pytest.mark.parametrize("degree, t, words", [(10, 5, "exceed half"), (10, 11, "cannot exceed")])
def test_unsafe_or_impossible_thresholds_are_explained(degree, t, words):
    assert words in threshold_problem(degree, t)
    assert threshold_problem(degree, 6) is None and threshold_problem(degree, 10) is None
