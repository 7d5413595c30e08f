import json
import math

import dp_accounting
import pytest

from mechanisms.accounting import RdpCurve
from mechanisms.accounting.codec import decode_event, decode_round, encode_event, encode_round

EVENTS = [
    dp_accounting.PoissonSampledDpEvent(0.01, dp_accounting.GaussianDpEvent(1.1)),
    dp_accounting.SampledWithoutReplacementDpEvent(100, 10, dp_accounting.GaussianDpEvent(0.5)),
    dp_accounting.ComposedDpEvent(
        [
            dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(2.0), 3),
            dp_accounting.NoOpDpEvent(),
        ]
    ),
    dp_accounting.NonPrivateDpEvent(),
]


@pytest.mark.parametrize("event", EVENTS)
def test_event_round_trip_through_json(event):
    assert decode_event(json.loads(json.dumps(encode_event(event)))) == event


def test_curve_round_trip_keeps_infinity_in_strict_json():
    curve = RdpCurve(orders=(2.0, 64.0), rdp=(0.25, math.inf))
    text = json.dumps(encode_round(curve), allow_nan=False)
    assert decode_round(json.loads(text)) == curve


def test_refuses_classes_outside_dp_accounting():
    with pytest.raises(ValueError, match="unknown DpEvent"):
        decode_event({"class_name": "PrivacyAccountant"})

    class HomeMadeEvent(dp_accounting.DpEvent):
        pass

    with pytest.raises(ValueError, match="RdpCurve"):
        encode_event(HomeMadeEvent())
