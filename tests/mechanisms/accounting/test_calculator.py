import itertools
import time

import dp_accounting
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting import RDP_ORDERS, PrivacyLedger, RdpCurve, Sampling, epsilon_for_rounds
from mechanisms.accounting.calculator import pld_checkpoints
from mechanisms.accounting.zcdp import epsilon_from_rho

DELTA = 1e-5
# The TF-Privacy tutorial setting: sampling rate 0.01, noise multiplier 1.0, 1000 steps.
TUTORIAL = Sampling("poisson", population=60_000, cohort=600)
GAUSSIAN = dp_accounting.GaussianDpEvent(1.0)


def test_known_value_matches_fresh_rdp_accountant():
    epsilons = epsilon_for_rounds(
        delta=DELTA, rounds=1000, sampling=TUTORIAL, round_privacy=TUTORIAL.round_event(GAUSSIAN)
    )
    event = dp_accounting.PoissonSampledDpEvent(0.01, GAUSSIAN)
    ours = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS)).compose(event, 1000)
    assert epsilons[-1] == pytest.approx(ours.get_epsilon(DELTA), rel=1e-12)
    # The default (TF-Privacy) orders give the same figure here: the optimum is a small order.
    default = rdp_privacy_accountant.RdpAccountant().compose(event, 1000)
    assert epsilons[-1] == pytest.approx(default.get_epsilon(DELTA), rel=1e-12)
    assert epsilons[99] == pytest.approx(
        rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS))
        .compose(event, 100)
        .get_epsilon(DELTA),
        rel=1e-12,
    )


def test_extra_orders_never_loosen_the_bound():
    event = dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(20.0))
    ours = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS)).compose(event)
    default = rdp_privacy_accountant.RdpAccountant().compose(event)
    assert ours.get_epsilon(DELTA) < default.get_epsilon(DELTA)


@pytest.mark.parametrize(
    "sampling", [TUTORIAL, Sampling("fixed", 1000, 10)], ids=["poisson", "fixed"]
)
def test_agrees_with_a_ledger_of_identical_rounds(sampling):
    release = dp_accounting.GaussianDpEvent(1.0 if sampling.kind == "poisson" else 0.5)
    epsilons = epsilon_for_rounds(
        delta=DELTA,
        rounds=25,
        sampling=sampling,
        round_privacy=sampling.round_event(release),
    )
    ledger = PrivacyLedger(delta=DELTA, relation=sampling.relation)
    for _ in range(25):
        ledger.record(sampling.round_event(release))
    assert epsilons == pytest.approx(ledger.epsilon_per_round, rel=1e-12)
    assert all(a <= b for a, b in itertools.pairwise(epsilons))


def test_pld_is_exact_at_checkpoints_and_an_upper_bound_between():
    rounds = 40
    epsilons = epsilon_for_rounds(
        delta=DELTA,
        rounds=rounds,
        sampling=TUTORIAL,
        round_privacy=TUTORIAL.round_event(GAUSSIAN),
        accountant="pld",
    )
    assert len(epsilons) == rounds
    assert all(a <= b for a, b in itertools.pairwise(epsilons))
    checkpoints = pld_checkpoints(rounds)
    assert checkpoints[:10] == list(range(1, 11)) and checkpoints[-1] == rounds
    event = TUTORIAL.round_event(GAUSSIAN)
    for k in (5, 12, rounds):
        exact = pld_privacy_accountant.PLDAccountant().compose(event, k).get_epsilon(DELTA)
        if k in checkpoints:
            assert epsilons[k - 1] == pytest.approx(exact, rel=1e-9)
        else:
            assert epsilons[k - 1] >= exact
    rdp = epsilon_for_rounds(
        delta=DELTA, rounds=rounds, sampling=TUTORIAL, round_privacy=TUTORIAL.round_event(GAUSSIAN)
    )
    assert epsilons[-1] < rdp[-1]  # PLD is tighter than RDP


def test_release_the_accountant_cannot_handle_is_a_value_error():
    with pytest.raises(ValueError, match="cannot account"):
        epsilon_for_rounds(
            delta=DELTA,
            rounds=3,
            sampling=TUTORIAL,
            round_privacy=TUTORIAL.round_event(dp_accounting.LaplaceDpEvent(1.0)),
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds": 0}, "rounds"),
        ({"delta": 0.0}, "delta"),
        ({"sampling": Sampling("fixed", 10, 5), "accountant": "pld"}, "PLD"),
        ({"accountant": "moments"}, "rdp"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    arguments = {
        "delta": DELTA,
        "rounds": 10,
        "sampling": TUTORIAL,
        "round_privacy": TUTORIAL.round_event(GAUSSIAN),
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        epsilon_for_rounds(**arguments)


@pytest.mark.parametrize(
    ("sampling", "release"),
    [
        # q = 0.05, σ = 1.1: exact RDP is the larger for 104 rounds, the zCDP figure after.
        (Sampling("poisson", population=10_000, cohort=500), dp_accounting.GaussianDpEvent(1.1)),
        (Sampling("fixed", population=1_000, cohort=10), dp_accounting.GaussianDpEvent(1.5)),
    ],
    ids=["poisson", "fixed"],
)
def test_zcdp_agrees_with_a_ledger_round_by_round(sampling, release):
    round_event = sampling.round_event(release)
    epsilons = epsilon_for_rounds(
        delta=DELTA, rounds=120, sampling=sampling, round_privacy=round_event, accountant="zcdp"
    )
    ledger = PrivacyLedger(delta=DELTA, accountant="zcdp", relation=sampling.relation)
    for _ in range(120):
        ledger.record(round_event)
    assert epsilons == pytest.approx(ledger.epsilon_per_round, rel=1e-12)
    rdp = epsilon_for_rounds(delta=DELTA, rounds=120, sampling=sampling, round_privacy=round_event)
    assert all(z >= r for z, r in zip(epsilons, rdp, strict=True))


def test_zcdp_is_the_larger_figure_each_round():
    sampling = Sampling("poisson", population=10_000, cohort=500)
    round_event = sampling.round_event(dp_accounting.GaussianDpEvent(1.1))
    epsilons = epsilon_for_rounds(
        delta=DELTA, rounds=120, sampling=sampling, round_privacy=round_event, accountant="zcdp"
    )
    rdp = epsilon_for_rounds(delta=DELTA, rounds=120, sampling=sampling, round_privacy=round_event)
    zcdp = [epsilon_from_rho(k * 0.05**2 / 1.1**2, DELTA) for k in range(1, 121)]
    assert epsilons[:104] == rdp[:104]
    assert epsilons[104:] == pytest.approx(zcdp[104:], rel=1e-12)
    assert zcdp[103] < rdp[103] and zcdp[104] > rdp[104]  # the crossover is where we put it


def test_zcdp_ten_thousand_rounds_take_well_under_a_second():
    start = time.perf_counter()
    epsilons = epsilon_for_rounds(
        delta=DELTA,
        rounds=10_000,
        sampling=TUTORIAL,
        round_privacy=TUTORIAL.round_event(GAUSSIAN),
        accountant="zcdp",
    )
    assert time.perf_counter() - start < 1.0
    assert len(epsilons) == 10_000
    assert all(a <= b for a, b in itertools.pairwise(epsilons))
    assert epsilons[-1] >= epsilon_from_rho(10_000 * 0.01**2, DELTA)


def test_zcdp_refuses_rdp_curves():
    with pytest.raises(ValueError, match="Gaussian-noise mechanisms only"):
        epsilon_for_rounds(
            delta=DELTA,
            rounds=3,
            sampling=TUTORIAL,
            round_privacy=RdpCurve(orders=RDP_ORDERS, rdp=tuple(0.01 * a for a in RDP_ORDERS)),
            accountant="zcdp",
        )
