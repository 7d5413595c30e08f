import math

import dp_accounting
import pytest

from mechanisms.accounting import Sampling
from mechanisms.example_level import ExampleLevelDpSgd


def _mechanism(**changes):
    settings = dict(clip=1.0, noise_multiplier=2.0, local_epochs=3, batch_size=8, learning_rate=0.1)
    return ExampleLevelDpSgd(**{**settings, **changes})


def test_a_round_is_one_gaussian_per_local_epoch_sampled_with_the_client():
    mechanism = _mechanism()
    epochs = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(2.0), 3)
    fixed = mechanism.round_privacy(Sampling("fixed", population=10, cohort=5))
    assert fixed == epochs  # no amplification claimed for fixed-size cohorts
    poisson = mechanism.round_privacy(Sampling("poisson", population=10, cohort=5))
    assert poisson == dp_accounting.PoissonSampledDpEvent(0.5, epochs)
    assert mechanism.relation == dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE


def test_description_and_steps_say_what_the_clients_do():
    mechanism = _mechanism()
    assert mechanism.describe()["noise_stddev"] == 2.0
    assert "clip each example's gradient to L2 norm 1" in mechanism.steps()[0]


@pytest.mark.parametrize(
    "changes", [{"clip": 0.0}, {"noise_multiplier": 0.0}, {"local_epochs": 0}, {"batch_size": 0}]
)
def test_rejects_parameters_without_meaning(changes):
    with pytest.raises(ValueError):
        _mechanism(**changes)


def test_zcdp_figure_is_yu_et_al_for_fixed_cohorts_and_absent_for_poisson():
    mechanism = _mechanism()  # sigma 2, 3 local epochs
    report = mechanism.zcdp(Sampling("fixed", population=10, cohort=5), rounds=4, delta=1e-5)
    rho = 4 * 3 / (2 * 2.0**2)
    assert report["rho"] == pytest.approx(rho)
    assert report["epsilon"] == pytest.approx(rho + 2 * (rho * math.log(1e5)) ** 0.5)
    assert mechanism.zcdp(Sampling("poisson", population=10, cohort=5), 4, 1e-5) is None
