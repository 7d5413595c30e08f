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


def _pld_epsilon(event, delta=1e-5):
    accountant = dp_accounting.pld.PLDAccountant()
    return accountant.compose(event).get_epsilon(delta)


def test_pld_samples_a_clients_local_epochs_as_one_gaussian():
    """PLD samples only a Gaussian; e epochs of σ are exactly one Gaussian of σ/√e."""
    mechanism = _mechanism(accountant="pld")
    sampled = mechanism.round_privacy(Sampling("poisson", population=10, cohort=5))
    assert sampled == dp_accounting.PoissonSampledDpEvent(
        0.5, dp_accounting.GaussianDpEvent(2.0 / math.sqrt(3))
    )
    epochs = dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(2.0), 3)
    assert _pld_epsilon(epochs) == pytest.approx(
        _pld_epsilon(dp_accounting.GaussianDpEvent(2.0 / math.sqrt(3))), rel=1e-3
    )
    assert mechanism.round_privacy(Sampling("fixed", population=10, cohort=5)) == epochs


def test_pld_charges_unequal_clients_one_event_that_bounds_each():
    sizes = (20, 33, 40)
    mechanism = _mechanism(batching="poisson", client_sizes=sizes, local_epochs=1, accountant="pld")
    charged = mechanism.round_privacy(Sampling("fixed", 3, 3))
    step = dp_accounting.PoissonSampledDpEvent(8 / 20, dp_accounting.GaussianDpEvent(2.0))
    assert charged == dp_accounting.SelfComposedDpEvent(step, 5)  # rate of 20, steps of 40
    for delta in (1e-3, 1e-5, 1e-7):
        bound = _pld_epsilon(charged, delta)
        for n in sizes:
            assert _pld_epsilon(mechanism.client_round(n), delta) <= bound
    assert "one bound for all" in mechanism.assumptions(Sampling("fixed", 3, 3))[0]
    equal = _mechanism(batching="poisson", client_sizes=(33, 33), local_epochs=1, accountant="pld")
    assert equal.round_privacy(Sampling("fixed", 2, 2)) == equal.client_round(33)


def test_pld_is_tighter_than_rdp_for_dp_sgd():
    kwargs = dict(batching="poisson", client_sizes=(202, 203), batch_size=16, local_epochs=1)
    rdp_round = _mechanism(**kwargs).round_privacy(Sampling("fixed", 2, 2))
    pld_round = _mechanism(**kwargs, accountant="pld").round_privacy(Sampling("fixed", 2, 2))
    rdp = dp_accounting.rdp.RdpAccountant().compose(rdp_round, 20).get_epsilon(1e-5)
    assert _pld_epsilon(dp_accounting.SelfComposedDpEvent(pld_round, 20)) < rdp


def test_modelmix_cannot_be_accounted_by_pld():
    from mechanisms.example_level import ModelMix

    with pytest.raises(ValueError, match="PLD"):
        _mechanism(modelmix=ModelMix(0.15, 10), accountant="pld")


def test_poisson_batching_needs_the_client_sizes():
    with pytest.raises(ValueError, match="client_sizes"):
        _mechanism(batching="poisson")
    with pytest.raises(ValueError, match="at least one example"):
        _mechanism(batching="poisson", client_sizes=(0, 4))


def _integer_rdp(entry, orders):
    from mechanisms.accounting.rdp import rdp_vector

    return rdp_vector(entry, dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE, orders)


def test_modelmix_round_is_its_theorem_per_step_composed():
    from mechanisms.accounting.modelmix import modelmix_rdp
    from mechanisms.example_level import ModelMix

    mix = ModelMix(1.0, coordinate_clip_p=25)
    mechanism = _mechanism(batching="poisson", client_sizes=(100, 40), modelmix=mix)
    orders = [2, 3, 8, 32]
    per_step = {
        n: modelmix_rdp(
            orders,
            sampling_rate=8 / n,
            noise_multiplier=2.0,
            clip=1.0,
            tau_over_lr=1.0,
            coordinate_clip_p=25,
            expected_batch_size=8,
        )
        for n in (100, 40)
    }
    for n in per_step:  # the sampled Gaussian bounds a ModelMix step too; the lower counts
        gaussian = dp_accounting.GaussianDpEvent(2.0)
        sampled = dp_accounting.PoissonSampledDpEvent(8 / n, gaussian)
        per_step[n] = np.minimum(per_step[n], _integer_rdp(sampled, orders))
    round_rdp = _integer_rdp(mechanism.round_privacy(Sampling("fixed", 10, 5)), orders)
    worst = np.maximum(13 * 3 * per_step[100], 5 * 3 * per_step[40])
    np.testing.assert_allclose(round_rdp, worst, rtol=1e-12)
    plain = _integer_rdp(
        _mechanism(batching="poisson", client_sizes=(100, 40)).client_round(40), orders
    )
    mixed = _integer_rdp(mechanism.client_round(40), orders)
    assert np.all(mixed <= plain) and mixed[0] < 0.5 * plain[0]  # the mix's credit

    shuffled = _mechanism(modelmix=mix).round_privacy(Sampling("poisson", 10, 5))
    unsampled = modelmix_rdp(
        orders,
        sampling_rate=1.0,
        noise_multiplier=2.0,
        clip=1.0,
        tau_over_lr=1.0,
        coordinate_clip_p=25,
        expected_batch_size=8,
    )
    unsampled = np.minimum(unsampled, _integer_rdp(dp_accounting.GaussianDpEvent(2.0), orders))
    # Once per epoch, and no amplification by the Poisson cohort.
    np.testing.assert_allclose(_integer_rdp(shuffled, orders), 3 * unsampled, rtol=1e-12)
    assert mechanism.zcdp(Sampling("fixed", 10, 5), 1, 1e-5) is None
    assert "random mix of the last two states" in mechanism.steps()[0]
    assert mechanism.describe()["modelmix"]["coordinate_clip"] == pytest.approx(0.2)


def test_modelmix_is_never_charged_more_than_plain_dp_sgd():
    """A narrow mix with the general subsampling bound would cost more than the exact sampled
    Gaussian, which bounds a ModelMix step too (post-processing): the round takes the lower."""
    from mechanisms.example_level import ModelMix

    orders = [2, 3, 8, 32, 128]
    plain = _mechanism(batching="poisson", client_sizes=(40,)).client_round(40)
    narrow = _mechanism(batching="poisson", client_sizes=(40,), modelmix=ModelMix(0.01))
    np.testing.assert_array_less(
        _integer_rdp(narrow.client_round(40), orders), _integer_rdp(plain, orders) * (1 + 1e-9)
    )


def test_modelmix_without_width_is_dp_sgd():
    """τ → 0, no clamp, the theorem's tight sum: exactly the sampled Gaussian of plain DP-SGD."""
    from mechanisms.example_level import ModelMix

    orders = [2, 4, 16, 64]
    plain = _mechanism(batching="poisson", client_sizes=(80,))
    mixed = _mechanism(
        batching="poisson", client_sizes=(80,), modelmix=ModelMix(1e-9), modelmix_bound="tight"
    )
    np.testing.assert_allclose(
        _integer_rdp(mixed.client_round(80), orders),
        _integer_rdp(plain.client_round(80), orders),
        rtol=1e-6,
    )


@pytest.mark.parametrize("noise_multiplier", [0.8, 1.8385, 6.0])
def test_modelmix_never_costs_more_epsilon_than_plain_dp_sgd(noise_multiplier):
    """At every order the ledger converts from (fractional ones too), so no epsilon or calibrated
    noise of ModelMix is worse than plain DP-SGD's, whatever the bound."""
    from mechanisms.accounting import PrivacyLedger
    from mechanisms.example_level import ModelMix

    def epsilon(mechanism):
        ledger = PrivacyLedger(delta=1e-5)
        for _ in range(20):
            ledger.record(mechanism.round_privacy(Sampling("fixed", 4, 4)))
        return ledger.epsilon

    settings = dict(noise_multiplier=noise_multiplier, batching="poisson", client_sizes=(359,))
    plain = epsilon(_mechanism(**settings))
    mixed = epsilon(_mechanism(**settings, modelmix=ModelMix(0.15, 25)))
    assert mixed <= plain * (1 + 1e-9)
