import math

import dp_accounting
import numpy as np
import pytest

from mechanisms.accounting import PrivacyLedger
from mechanisms.accounting.pure_dp import randomized_response_rdp, rdp_composition_epsilon
from mechanisms.selective_uploads import SelectiveUploads
from mechanisms.svt import SvtBudget

BUDGET = SvtBudget(epsilon=1.0, count=100, bound=0.01)


def _ledger(uploads: SelectiveUploads, rounds: int) -> PrivacyLedger:
    ledger = PrivacyLedger(delta=1e-5, relation=uploads.relation)
    for round_num in range(1, rounds + 1):
        ledger.record(uploads.round_privacy(round_num=round_num))
    return ledger


def test_round_robin_charges_the_participant_who_uploads_most():
    uploads = SelectiveUploads(BUDGET, threshold=0.0, clients=10, cohort=3)
    charged = [
        not isinstance(uploads.round_privacy(round_num=r), dp_accounting.NoOpDpEvent)
        for r in range(1, 11)
    ]
    # Cohorts 0-2, 3-5, 6-8, 9-1, 2-4, 5-7, 8-0, 1-3, 4-6, 7-9: after round r nobody has
    # uploaded more than ceil(3r/10) times, which rises in rounds 1, 4 and 7.
    assert charged == [True, False, False, True, False, False, True, False, False, False]
    assert [uploads.uploads_by(r) for r in (1, 3, 4, 10)] == [1, 1, 2, 3]
    ledger = _ledger(uploads, 10)
    assert ledger.epsilon == pytest.approx(rdp_composition_epsilon(1.0, 3, 1e-5), rel=1e-9)
    # Within 1e-3 of basic composition (3 uploads of 1): the RDP conversion reaches it only as
    # the order grows without bound.
    assert 3.0 <= ledger.epsilon <= 3.0 + 1e-3


def test_everyone_every_round_is_charged_every_round():
    uploads = SelectiveUploads(BUDGET, threshold=0.0, clients=4, cohort=4)
    assert _ledger(uploads, 20).epsilon == pytest.approx(
        rdp_composition_epsilon(1.0, 20, 1e-5), rel=1e-9
    )


def test_random_order_is_amplified_by_sampling_without_replacement():
    uploads = SelectiveUploads(BUDGET, threshold=0.0, clients=10, cohort=2, order="random")
    amplified = math.log1p(0.2 * math.expm1(1.0))
    curve = uploads.round_privacy(round_num=7)
    orders = np.asarray(curve.orders)
    np.testing.assert_allclose(curve.rdp, randomized_response_rdp(orders, amplified))
    assert uploads.uploads_by(30) == 30
    # Far below charging all 30 rounds in full, and within reach of the ~6 uploads expected.
    epsilon = _ledger(uploads, 30).epsilon
    assert epsilon < 0.3 * rdp_composition_epsilon(1.0, 30, 1e-5)
    assert epsilon == pytest.approx(
        rdp_composition_epsilon(math.log1p(0.2 * math.expm1(1.0)), 30, 1e-5), rel=1e-9
    )


def test_description_reports_the_split_and_honest_assumptions():
    uploads = SelectiveUploads(BUDGET, threshold=0.001, clients=10, cohort=1)
    described = uploads.describe()
    assert described["selection_epsilon"] + described["answer_epsilon"] == pytest.approx(1.0)
    assert described["laplace_scales"]["answer"] == pytest.approx(BUDGET.answer_scale)
    assert "not per parameter" in uploads.assumptions()[0]
    assert uploads.relation == dp_accounting.NeighboringRelation.REPLACE_ONE
    assert "at most 100 coordinates" in uploads.steps()[0]


@pytest.mark.parametrize("changes", [{"cohort": 0}, {"cohort": 11}, {"order": "sequential"}])
def test_rejects_settings_without_meaning(changes):
    settings = dict(budget=BUDGET, threshold=0.0, clients=10, cohort=2)
    with pytest.raises(ValueError):
        SelectiveUploads(**{**settings, **changes})
