import dp_accounting
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting import RDP_ORDERS, Sampling, calibrate_noise_multiplier

DELTA = 1e-5
POISSON = Sampling("poisson", population=10_000, cohort=100)


def _run_epsilon(z, rounds, sampling=POISSON):
    event = sampling.round_event(dp_accounting.GaussianDpEvent(z))
    accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS), sampling.relation)
    return accountant.compose(event, rounds).get_epsilon(DELTA)


@pytest.mark.parametrize(("target", "rounds"), [(1.0, 500), (8.0, 100), (0.05, 1)])
def test_calibrated_noise_is_the_least_that_meets_the_target(target, rounds):
    z = calibrate_noise_multiplier(
        target,
        delta=DELTA,
        rounds=rounds,
        sampling=POISSON,
        release_event=dp_accounting.GaussianDpEvent,
    )
    assert _run_epsilon(z, rounds) <= target
    assert _run_epsilon(z * (1 - 1e-3), rounds) > target


def test_fixed_sampling_calibrates_with_replace_one_event():
    sampling = Sampling("fixed", population=1_000, cohort=100)
    z = calibrate_noise_multiplier(
        4.0,
        delta=DELTA,
        rounds=20,
        sampling=sampling,
        release_event=lambda z: dp_accounting.GaussianDpEvent(z / 2),
    )

    def epsilon(noise):
        event = sampling.round_event(dp_accounting.GaussianDpEvent(noise / 2))
        accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS), sampling.relation)
        return accountant.compose(event, 20).get_epsilon(DELTA)

    assert epsilon(z) <= 4.0 < epsilon(z * (1 - 1e-3))


@pytest.mark.slow  # ~20 s: every PLD evaluation rebuilds the subsampled-Gaussian PLD
def test_pld_calibration_meets_its_target():
    z = calibrate_noise_multiplier(
        2.0,
        delta=DELTA,
        rounds=50,
        sampling=POISSON,
        release_event=dp_accounting.GaussianDpEvent,
        accountant="pld",
    )
    event = dp_accounting.SelfComposedDpEvent(
        POISSON.round_event(dp_accounting.GaussianDpEvent(z)), 50
    )
    assert pld_privacy_accountant.PLDAccountant().compose(event).get_epsilon(DELTA) <= 2.0
    # PLD is tighter, so it needs no more noise than RDP does.
    assert _run_epsilon(z, 50) >= 2.0


def test_unreachable_target_is_a_plain_value_error():
    with pytest.raises(ValueError, match="no noise multiplier up to 1000 reaches epsilon 1e-05"):
        calibrate_noise_multiplier(
            1e-5,
            delta=DELTA,
            rounds=100_000,
            sampling=Sampling("poisson", population=100, cohort=100),
            release_event=dp_accounting.GaussianDpEvent,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_epsilon": 0.0}, "positive"),
        ({"rounds": 0}, "rounds"),
        ({"sampling": Sampling("fixed", 10, 5), "accountant": "pld"}, "PLD"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    arguments = {
        "target_epsilon": 1.0,
        "delta": DELTA,
        "rounds": 10,
        "sampling": POISSON,
        "release_event": dp_accounting.GaussianDpEvent,
        **kwargs,
    }
    target = arguments.pop("target_epsilon")
    with pytest.raises(ValueError, match=message):
        calibrate_noise_multiplier(target, **arguments)
