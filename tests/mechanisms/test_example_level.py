import math

import dp_accounting
import numpy as np
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


def test_poisson_batches_charge_each_client_its_sampled_steps():
    """A client of n examples takes ceil(n/B) steps per epoch at rate B/n."""
    mechanism = _mechanism(batching="poisson", client_sizes=(202, 202), local_epochs=2)
    step = dp_accounting.PoissonSampledDpEvent(8 / 202, dp_accounting.GaussianDpEvent(2.0))
    expected = dp_accounting.SelfComposedDpEvent(step, 26 * 2)
    for sampling in (Sampling("fixed", 2, 2), Sampling("poisson", 10, 5)):
        assert mechanism.round_privacy(sampling) == expected  # no client-level amplification
    assert mechanism.describe()["sampling_rate_per_step"]["smallest_client"] == 8 / 202
    assert mechanism.zcdp(Sampling("fixed", 2, 2), rounds=3, delta=1e-5) is None


def test_clients_of_different_sizes_are_charged_the_worst_curve():
    from mechanisms.accounting import RDP_ORDERS, RdpCurve
    from mechanisms.accounting.rdp import rdp_vector

    relation = dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
    sizes = (9, 40, 5000)
    mechanism = _mechanism(batching="poisson", client_sizes=sizes, local_epochs=1)
    charged = mechanism.round_privacy(Sampling("fixed", 3, 3))
    charged_rdp = rdp_vector(charged, relation, RDP_ORDERS)
    per_client = [rdp_vector(mechanism.client_round(n), relation, RDP_ORDERS) for n in sizes]
    for curve in per_client:
        assert (charged_rdp >= curve - 1e-12).all()
    np.testing.assert_allclose(charged_rdp, np.max(per_client, axis=0), rtol=1e-12)
    if not isinstance(charged, RdpCurve):  # one client dominates: its own event is charged
        assert charged in [mechanism.client_round(n) for n in sizes]


def test_poisson_batching_needs_the_client_sizes():
    with pytest.raises(ValueError, match="client_sizes"):
        _mechanism(batching="poisson")
    with pytest.raises(ValueError, match="at least one example"):
        _mechanism(batching="poisson", client_sizes=(0, 4))
