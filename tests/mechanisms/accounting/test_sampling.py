import dp_accounting
import pytest

from mechanisms.accounting import Sampling


def test_poisson_is_add_remove_with_rate():
    sampling = Sampling(kind="poisson", population=1000, cohort=10)
    assert sampling.rate == 0.01
    assert sampling.relation is dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
    assert sampling.neighbouring == "add/remove one client"
    release = dp_accounting.GaussianDpEvent(1.0)
    assert sampling.round_event(release) == dp_accounting.PoissonSampledDpEvent(0.01, release)


def test_fixed_is_replace_one_without_replacement():
    sampling = Sampling(kind="fixed", population=1000, cohort=10)
    assert sampling.relation is dp_accounting.NeighboringRelation.REPLACE_ONE
    assert sampling.neighbouring == "replace one client"
    release = dp_accounting.GaussianDpEvent(0.5)
    assert sampling.round_event(release) == dp_accounting.SampledWithoutReplacementDpEvent(
        1000, 10, release
    )


def test_describe():
    assert Sampling("fixed", 50, 5).describe() == {
        "kind": "fixed",
        "population": 50,
        "cohort": 5,
        "rate": 0.1,
    }


@pytest.mark.parametrize(
    ("kind", "population", "cohort", "message"),
    [
        ("uniform", 10, 5, "poisson"),
        ("poisson", 10, 11, "exceed"),
        ("fixed", 0, 0, "at least 1"),
        ("poisson", 10, 0, "at least 1"),
        ("poisson", 10.0, 5, "integer"),
        ("poisson", 10, True, "integer"),
    ],
)
def test_rejects_bad_arguments(kind, population, cohort, message):
    with pytest.raises(ValueError, match=message):
        Sampling(kind=kind, population=population, cohort=cohort)


def test_is_frozen():
    sampling = Sampling("poisson", 10, 5)
    with pytest.raises(AttributeError):
        sampling.cohort = 6
