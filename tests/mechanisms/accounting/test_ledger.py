import itertools
import json
import math

import dp_accounting
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from mechanisms.accounting import RDP_ORDERS, PrivacyLedger, RdpCurve, Sampling
from mechanisms.accounting.rdp import rdp_vector
from mechanisms.accounting.zcdp import epsilon_from_rho, sampled_gaussian_report

DELTA = 1e-5
POISSON = Sampling("poisson", population=10_000, cohort=100)
FIXED = Sampling("fixed", population=1_000, cohort=50)


def _events(sampling, noise_multipliers):
    scale = 1.0 if sampling.kind == "poisson" else 0.5  # replace-one doubles the sensitivity
    return [
        sampling.round_event(dp_accounting.GaussianDpEvent(z * scale)) for z in noise_multipliers
    ]


def _fresh_rdp_epsilon(sampling, events):
    accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS), sampling.relation)
    for event in set(events):
        accountant.compose(event, events.count(event))
    return accountant.get_epsilon(DELTA)


@pytest.mark.parametrize("sampling", [POISSON, FIXED], ids=["poisson", "fixed"])
@pytest.mark.parametrize("noise", [[1.0] * 4, [0.8, 1.5, 3.0, 0.9]], ids=["identical", "varying"])
def test_rdp_ledger_matches_fresh_dp_accounting(sampling, noise):
    ledger = PrivacyLedger(delta=DELTA, accountant="rdp", relation=sampling.relation)
    accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS), sampling.relation)
    for rounds, event in enumerate(_events(sampling, noise), start=1):
        ledger.record(event)
        accountant.compose(event)
        assert ledger.rounds == rounds
        assert ledger.epsilon == pytest.approx(accountant.get_epsilon(DELTA), rel=1e-12)
        assert ledger.epsilon_per_round[-1] == ledger.epsilon


def test_rdp_ledger_matches_self_composed_count():
    event = POISSON.round_event(dp_accounting.GaussianDpEvent(1.0))
    ledger = PrivacyLedger(delta=DELTA)
    for _ in range(200):
        ledger.record(event)
    accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS))
    expected = accountant.compose(event, 200).get_epsilon(DELTA)
    assert ledger.epsilon == pytest.approx(expected, rel=1e-12)


def test_pld_ledger_matches_fresh_dp_accounting():
    events = _events(POISSON, [1.0, 1.0, 2.0, 1.0])
    ledger = PrivacyLedger(delta=DELTA, accountant="pld", relation=POISSON.relation)
    accountant = pld_privacy_accountant.PLDAccountant(POISSON.relation)
    for event in events:
        ledger.record(event)
        accountant.compose(event)
        assert ledger.epsilon == pytest.approx(accountant.get_epsilon(DELTA), rel=1e-12)
    # PLD is tighter than RDP for the same Poisson-subsampled Gaussian rounds.
    assert ledger.epsilon < _fresh_rdp_epsilon(POISSON, events)


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_per_round_epsilons_increase_and_end_at_epsilon(accountant):
    ledger = PrivacyLedger(delta=DELTA, accountant=accountant)
    assert ledger.epsilon == 0.0
    assert ledger.epsilon_per_round == []
    for event in _events(POISSON, [1.0, 1.0, 1.0, 4.0, 1.0]):
        ledger.record(event)
    per_round = ledger.epsilon_per_round
    assert len(per_round) == 5
    assert all(a <= b for a, b in itertools.pairwise(per_round))
    assert per_round[0] > 0
    assert per_round[-1] == ledger.epsilon


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_epsilon_after_does_not_mutate(accountant):
    first, second = _events(POISSON, [1.0, 0.7])
    ledger = PrivacyLedger(delta=DELTA, accountant=accountant)
    ledger.record(first)
    before = (ledger.rounds, ledger.epsilon, ledger.epsilon_per_round)
    predicted = ledger.epsilon_after(second)
    assert (ledger.rounds, ledger.epsilon, ledger.epsilon_per_round) == before
    assert predicted > ledger.epsilon
    ledger.record(second)
    assert ledger.epsilon == predicted


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_round_trip_through_json(accountant):
    ledger = PrivacyLedger(delta=DELTA, accountant=accountant)
    for event in _events(POISSON, [1.0, 1.3, 1.0]):
        ledger.record(event)
    restored = PrivacyLedger.from_dict(json.loads(json.dumps(ledger.to_dict(), allow_nan=False)))
    assert restored.epsilon_per_round == ledger.epsilon_per_round
    assert restored.epsilon == ledger.epsilon
    assert restored.describe() == ledger.describe()
    # It resumes where it left off: the next round costs the same in both.
    next_event = _events(POISSON, [1.0])[0]
    assert restored.epsilon_after(next_event) == ledger.epsilon_after(next_event)


def test_from_dict_refuses_tampered_epsilons():
    ledger = PrivacyLedger(delta=DELTA)
    ledger.record(_events(POISSON, [1.0])[0])
    state = ledger.to_dict()
    state["epsilon_per_round"][-1] /= 2
    with pytest.raises(ValueError, match="inconsistent"):
        PrivacyLedger.from_dict(state)


def test_rdp_curves_compose_like_the_events_they_describe():
    event = POISSON.round_event(dp_accounting.GaussianDpEvent(1.0))
    curve = RdpCurve(orders=RDP_ORDERS, rdp=tuple(rdp_vector(event, POISSON.relation)))
    from_events, from_curves = PrivacyLedger(delta=DELTA), PrivacyLedger(delta=DELTA)
    for _ in range(3):
        from_events.record(event)
        from_curves.record(curve)
    assert from_curves.epsilon == from_events.epsilon
    assert "mechanism-supplied RDP curves" in from_curves.describe()["bound"]
    restored = PrivacyLedger.from_dict(json.loads(json.dumps(from_curves.to_dict())))
    assert restored.epsilon == from_curves.epsilon


def test_mixing_events_and_curves():
    event = POISSON.round_event(dp_accounting.GaussianDpEvent(1.0))
    ledger = PrivacyLedger(delta=DELTA)
    ledger.record(event)
    ledger.record(RdpCurve(orders=RDP_ORDERS, rdp=tuple(0.01 * a for a in RDP_ORDERS)))
    accountant = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS)).compose(event)
    # 0.01 * alpha is the RDP of a Gaussian with noise multiplier sqrt(50).
    accountant.compose(dp_accounting.GaussianDpEvent(math.sqrt(50)))
    assert ledger.epsilon == pytest.approx(accountant.get_epsilon(DELTA), rel=1e-12)


def test_describe_rdp():
    ledger = PrivacyLedger(delta=DELTA, accountant="rdp", relation=FIXED.relation)
    for event in _events(FIXED, [1.0, 1.0]):
        ledger.record(event)
    summary = ledger.describe()
    assert summary["accountant"] == "rdp"
    assert summary["delta"] == DELTA
    assert summary["rounds"] == 2
    assert summary["epsilon"] == ledger.epsilon
    assert summary["epsilon_per_round"] == ledger.epsilon_per_round
    assert "without replacement" in summary["bound"]
    assert summary["neighbouring"] == "replace one client"
    assert summary["optimal_order"] in RDP_ORDERS


def test_non_private_round_gives_infinite_epsilon():
    for accountant in ("rdp", "pld"):
        ledger = PrivacyLedger(delta=DELTA, accountant=accountant)
        ledger.record(dp_accounting.NonPrivateDpEvent())
        assert ledger.epsilon == math.inf
        json.dumps(ledger.to_dict(), allow_nan=False)


def test_pld_refuses_fixed_sampling_and_curves():
    with pytest.raises(ValueError, match="PLD"):
        PrivacyLedger(delta=DELTA, accountant="pld", relation=FIXED.relation)
    ledger = PrivacyLedger(delta=DELTA, accountant="pld")
    with pytest.raises(ValueError, match="RDP curves"):
        ledger.record(RdpCurve(orders=(2.0,), rdp=(0.1,)))


def test_rejects_events_of_the_wrong_relation():
    ledger = PrivacyLedger(delta=DELTA, relation=FIXED.relation)
    with pytest.raises(ValueError, match="cannot account"):
        ledger.record(_events(POISSON, [1.0])[0])
    assert ledger.rounds == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"delta": 0.0}, "delta"), ({"delta": 1.0}, "delta"), ({"accountant": "gdp"}, "rdp")],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PrivacyLedger(**{"delta": DELTA, **kwargs})


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_recording_after_a_look_ahead_counts_what_is_recorded(accountant):
    looked_at, recorded = (POISSON.round_event(dp_accounting.GaussianDpEvent(z)) for z in (1, 3))
    ledger = PrivacyLedger(DELTA, accountant, POISSON.relation)
    fresh = PrivacyLedger(DELTA, accountant, POISSON.relation)
    ledger.epsilon_after(looked_at)
    ledger.record(recorded)  # a different entry: the look-ahead must not be reused
    fresh.record(recorded)
    assert ledger.epsilon == fresh.epsilon
    assert ledger.epsilon_after(recorded) == pytest.approx(fresh.epsilon_after(recorded), rel=1e-12)
    ledger.record(recorded)  # the same entry: reused, and still exact
    fresh.record(recorded)
    assert ledger.epsilon_per_round == pytest.approx(fresh.epsilon_per_round, rel=1e-12)


# zCDP: the larger of Yu et al.'s zCDP figure and the exact RDP one.


def _ledger(accountant, events, relation=POISSON.relation):
    ledger = PrivacyLedger(DELTA, accountant, relation)
    for event in events:
        ledger.record(event)
    return ledger


@pytest.mark.parametrize("sigma", [0.5, 2.0, 8.0])
def test_zcdp_of_unsampled_gaussians_is_the_zcdp_figure(sigma):
    gaussian = dp_accounting.GaussianDpEvent(sigma)
    zcdp, rdp = _ledger("zcdp", [gaussian] * 7), _ledger("rdp", [gaussian] * 7)
    for k in range(1, 8):  # Powers of two: the running sum of rho is exact.
        assert zcdp.epsilon_per_round[k - 1] == epsilon_from_rho(k / (2 * sigma**2), DELTA)
        assert zcdp.epsilon_per_round[k - 1] >= rdp.epsilon_per_round[k - 1]
    assert zcdp.describe()["epsilon_rdp"] == rdp.epsilon


def test_zcdp_of_yu_et_al_mnist_setting():
    ledger = _ledger("zcdp", [dp_accounting.GaussianDpEvent(8.0)] * 100)
    rho = 0.78125  # 100 epochs of 1/(2·64)
    expected = rho + 2 * math.sqrt(rho * math.log(1e5))
    assert ledger.epsilon == pytest.approx(expected, rel=1e-15)
    summary = ledger.describe()
    assert summary["zcdp"] == {
        "rho": rho,
        "epsilon": ledger.epsilon,
        "approximate": False,
        "approximation_holds": True,
    }
    assert summary["epsilon_rdp"] < ledger.epsilon  # the exact conversion is tighter here


def test_zcdp_below_exact_rdp_reports_the_exact_rdp():
    event = dp_accounting.PoissonSampledDpEvent(0.05, dp_accounting.GaussianDpEvent(1.1))
    ledger = _ledger("zcdp", [event] * 100)
    exact = rdp_privacy_accountant.RdpAccountant(list(RDP_ORDERS)).compose(event, 100)
    assert ledger.epsilon == pytest.approx(exact.get_epsilon(DELTA), rel=1e-12)
    assert ledger.epsilon_per_round == _ledger("rdp", [event] * 100).epsilon_per_round
    summary = ledger.describe()
    rho = 100 * 0.05**2 / 1.1**2
    assert summary["zcdp"]["rho"] == pytest.approx(rho, rel=1e-12)
    assert summary["zcdp"]["epsilon"] == pytest.approx(epsilon_from_rho(rho, DELTA), rel=1e-12)
    assert summary["zcdp"]["epsilon"] < summary["epsilon_rdp"] == summary["epsilon"]
    assert summary["zcdp"]["approximate"]
    assert not summary["zcdp"]["approximation_holds"]  # zcdp_order 8.5 > range 4.5
    assert summary["optimal_order"] == exact.get_epsilon_and_optimal_order(DELTA)[1]
    assert "Yu et al. 2019" in summary["bound"]
    assert "larger of this zCDP figure and the exact RDP" in summary["bound"]


def test_zcdp_above_exact_rdp_within_its_range_reports_the_zcdp_figure():
    step = dp_accounting.PoissonSampledDpEvent(0.05, dp_accounting.GaussianDpEvent(2.0))
    ledger = _ledger("zcdp", [dp_accounting.SelfComposedDpEvent(step, 100)] * 3)
    summary = ledger.describe()
    assert summary["zcdp"]["rho"] == pytest.approx(300 * 0.05**2 / 4, rel=1e-12)
    # zcdp_order 1 + sqrt(ln(1e5)/0.1875) = 8.8 lies within 4·ln(10) + 1 = 10.2.
    assert summary["zcdp"]["approximation_holds"]
    assert ledger.epsilon == summary["zcdp"]["epsilon"] > summary["epsilon_rdp"]


def test_zcdp_schedule_adds_rho_round_by_round():
    sigmas = [0.8, 1.5, 3.0, 0.9]
    ledger = _ledger("zcdp", [dp_accounting.GaussianDpEvent(s) for s in sigmas])
    rhos = list(itertools.accumulate(1 / (2 * s**2) for s in sigmas))
    assert ledger.describe()["zcdp"]["rho"] == rhos[-1]
    assert ledger.epsilon_per_round == [epsilon_from_rho(rho, DELTA) for rho in rhos]


def test_zcdp_sampled_schedule_matches_the_epoch_report():
    sigmas, rate = [3.0, 2.0, 2.0, 1.5], 0.02
    events = [
        dp_accounting.PoissonSampledDpEvent(rate, dp_accounting.GaussianDpEvent(s)) for s in sigmas
    ]
    summary = _ledger("zcdp", events).describe()
    report = sampled_gaussian_report(sigmas, rate=rate, steps=1, delta=DELTA)
    assert summary["zcdp"]["epsilon"] == pytest.approx(report.zcdp_epsilon, rel=1e-12)
    assert summary["zcdp"]["approximation_holds"] == report.approximation_holds
    assert summary["epsilon_rdp"] == pytest.approx(report.epsilon, rel=1e-12)
    assert summary["epsilon"] == max(summary["epsilon_rdp"], summary["zcdp"]["epsilon"])


def test_zcdp_with_fixed_cohorts_claims_no_amplification_in_rho():
    events = _events(FIXED, [1.0, 2.0])  # GaussianDpEvent(z / 2): rho = 2/z² per round
    ledger = _ledger("zcdp", events, FIXED.relation)
    summary = ledger.describe()
    assert summary["zcdp"]["rho"] == 2.0 + 0.5
    assert summary["neighbouring"] == "replace one client"
    assert "without amplification" in summary["bound"]
    assert "without replacement" in summary["bound"]  # the exact RDP beside it
    assert ledger.epsilon == epsilon_from_rho(2.5, DELTA) > summary["epsilon_rdp"]
    assert summary["epsilon_rdp"] == pytest.approx(_fresh_rdp_epsilon(FIXED, events), rel=1e-12)


def test_zcdp_look_ahead_does_not_mutate_and_is_reused_exactly():
    first, second = _events(POISSON, [1.0, 0.7])
    ledger = _ledger("zcdp", [first])
    before = (ledger.rounds, ledger.epsilon, ledger.epsilon_per_round, ledger.describe())
    predicted = ledger.epsilon_after(second)
    assert (ledger.rounds, ledger.epsilon, ledger.epsilon_per_round, ledger.describe()) == before
    assert predicted > ledger.epsilon
    ledger.epsilon_after(first)  # a different look-ahead: recording `second` must not reuse it
    ledger.record(second)
    assert ledger.epsilon == predicted
    assert ledger.epsilon_per_round == _ledger("zcdp", [first, second]).epsilon_per_round


def test_zcdp_round_trip_through_json():
    events = [
        dp_accounting.GaussianDpEvent(3.0),
        *_events(POISSON, [1.0, 1.3]),
        dp_accounting.GaussianDpEvent(1.7),
    ]
    ledger = _ledger("zcdp", events)
    state = ledger.to_dict()
    assert set(state) == set(PrivacyLedger(DELTA).to_dict())  # the saved format is the same
    restored = PrivacyLedger.from_dict(json.loads(json.dumps(state, allow_nan=False)))
    assert restored.accountant == "zcdp"
    assert restored.epsilon_per_round == ledger.epsilon_per_round
    assert restored.describe() == ledger.describe()
    next_event = dp_accounting.GaussianDpEvent(2.2)
    assert restored.epsilon_after(next_event) == ledger.epsilon_after(next_event)


def test_zcdp_from_dict_refuses_a_tampered_zcdp_figure():
    ledger = _ledger("zcdp", [dp_accounting.GaussianDpEvent(2.0)] * 3)  # zCDP figure dominates
    state = ledger.to_dict()
    state["epsilon_per_round"][-1] *= 0.99
    with pytest.raises(ValueError, match="inconsistent"):
        PrivacyLedger.from_dict(state)


def test_zcdp_refuses_rdp_curves_and_leaves_the_ledger_unchanged():
    ledger = _ledger("zcdp", [dp_accounting.GaussianDpEvent(2.0)])
    with pytest.raises(ValueError, match=r"Gaussian-noise mechanisms only.*accountant 'rdp'"):
        ledger.record(RdpCurve(orders=RDP_ORDERS, rdp=tuple(0.01 * a for a in RDP_ORDERS)))
    assert ledger.rounds == 1
    assert ledger.epsilon == epsilon_from_rho(0.125, DELTA)


def test_zcdp_rejects_events_of_the_wrong_relation():
    ledger = PrivacyLedger(DELTA, "zcdp", FIXED.relation)
    with pytest.raises(ValueError, match="cannot account"):
        ledger.record(_events(POISSON, [1.0])[0])
    assert ledger.rounds == 0


def test_zcdp_non_private_round_and_empty_ledger():
    empty = PrivacyLedger(DELTA, "zcdp").describe()
    assert empty["epsilon"] == empty["epsilon_rdp"] == empty["zcdp"]["epsilon"] == 0.0
    assert empty["optimal_order"] is None
    ledger = _ledger("zcdp", [dp_accounting.NonPrivateDpEvent()])
    assert ledger.epsilon == math.inf
    summary = json.loads(json.dumps(ledger.describe(), allow_nan=False))
    assert summary["zcdp"]["rho"] == summary["epsilon"] == "inf"
    json.dumps(ledger.to_dict(), allow_nan=False)
