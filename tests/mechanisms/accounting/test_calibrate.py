import dp_accounting
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting import RDP_ORDERS, PrivacyLedger, Sampling, calibrate_noise_multiplier
from mechanisms.accounting.zcdp import epsilon_from_rho

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


def _zcdp_run_epsilon(z, rounds, sampling, release_event):
    """The zcdp accountant's epsilon, from the formulas: rho per round (q²/σ² if
    Poisson-sampled, unsampled 1/(2σ²) for fixed cohorts) beside the exact RDP."""
    sigma = release_event(z).noise_multiplier
    if sampling.kind == "poisson" and sampling.rate < 1:
        rho = sampling.rate**2 / sigma**2
    else:
        rho = 1 / (2 * sigma**2)
    event = sampling.round_event(release_event(z))
    accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS), sampling.relation)
    rdp = accountant.compose(event, rounds).get_epsilon(DELTA)
    return max(epsilon_from_rho(rounds * rho, DELTA), rdp)


def _halved(z):
    return dp_accounting.GaussianDpEvent(z / 2)


@pytest.mark.parametrize(
    ("target", "rounds", "sampling", "release_event", "dominant"),
    [
        (1.0, 500, POISSON, dp_accounting.GaussianDpEvent, "zcdp"),
        (8.0, 100, POISSON, dp_accounting.GaussianDpEvent, "rdp"),
        (
            2.0,
            50,
            Sampling("poisson", population=100, cohort=100),
            dp_accounting.GaussianDpEvent,
            "zcdp",
        ),
        (4.0, 20, Sampling("fixed", population=1_000, cohort=100), _halved, "zcdp"),
    ],
    ids=["poisson-zcdp-binds", "poisson-rdp-binds", "everyone", "fixed"],
)
def test_zcdp_calibration_is_the_least_noise_that_meets_the_target(
    target, rounds, sampling, release_event, dominant
):
    arguments = {
        "delta": DELTA,
        "rounds": rounds,
        "sampling": sampling,
        "release_event": release_event,
    }
    z = calibrate_noise_multiplier(target, accountant="zcdp", **arguments)
    assert _zcdp_run_epsilon(z, rounds, sampling, release_event) <= target
    assert _zcdp_run_epsilon(z * (1 - 1e-3), rounds, sampling, release_event) > target
    # What the run loop will see: the ledger stays within the target on the last round.
    ledger = PrivacyLedger(DELTA, "zcdp", sampling.relation)
    for _ in range(rounds):
        ledger.record(sampling.round_event(release_event(z)))
    assert ledger.epsilon <= target
    rdp_z = calibrate_noise_multiplier(target, **arguments)
    if dominant == "rdp":
        assert z == rdp_z
    else:
        assert z > rdp_z * (1 + 1e-3)


def test_zcdp_calibration_refuses_releases_it_cannot_account():
    with pytest.raises(dp_accounting.UnsupportedEventError, match="Gaussian-noise mechanisms"):
        calibrate_noise_multiplier(
            1.0,
            delta=DELTA,
            rounds=10,
            sampling=POISSON,
            release_event=dp_accounting.LaplaceDpEvent,
            accountant="zcdp",
        )
