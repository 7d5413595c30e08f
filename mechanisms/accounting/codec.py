"""JSON form of what a round spent (DpEvents and RDP curves), for checkpoints and privacy.json.

Decoding only instantiates classes from `dp_accounting.dp_event`, never arbitrary modules named
in a file, so a checkpoint cannot make us import code.
"""

import math
from typing import Any

import attr
import dp_accounting
from dp_accounting import dp_event as dp_event_module

from mechanisms.accounting.rdp import RdpCurve, RoundPrivacy


def encode_float(value: float) -> float | str:
    """Strict JSON has no infinity: store it as the string "inf" (float() reads it back)."""
    return float(value) if math.isfinite(value) else str(float(value))


def encode_event(event: dp_accounting.DpEvent) -> dict[str, Any]:
    cls = type(event)
    if getattr(dp_event_module, cls.__name__, None) is not cls:
        raise ValueError(
            f"{cls.__name__} is not a dp_accounting.dp_event class; state custom mechanisms as an "
            "RdpCurve so the ledger stays serialisable"
        )
    encoded: dict[str, Any] = {"class_name": cls.__name__}
    for name, value in attr.asdict(event, recurse=False).items():
        encoded[name] = _encode_value(value)
    return encoded


def _encode_value(value: Any) -> Any:
    if isinstance(value, dp_accounting.DpEvent):
        return encode_event(value)
    if isinstance(value, list | tuple):
        return [_encode_value(item) for item in value]
    if isinstance(value, float):
        return encode_float(value)
    return value


def decode_event(encoded: dict[str, Any]) -> dp_accounting.DpEvent:
    fields = dict(encoded)
    name = fields.pop("class_name")
    cls = getattr(dp_event_module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, dp_accounting.DpEvent)):
        raise ValueError(f"unknown DpEvent class {name!r}")
    return cls(**{key: _decode_value(value) for key, value in fields.items()})


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "class_name" in value:
        return decode_event(value)
    if isinstance(value, list):
        return [_decode_value(item) for item in value]
    if value in ("inf", "-inf"):
        return float(value)
    return value


def encode_round(entry: RoundPrivacy) -> dict[str, Any]:
    if isinstance(entry, RdpCurve):
        return {
            "rdp_curve": {
                "orders": [encode_float(a) for a in entry.orders],
                "rdp": [encode_float(r) for r in entry.rdp],
            }
        }
    if isinstance(entry, dp_accounting.DpEvent):
        return {"dp_event": encode_event(entry)}
    raise TypeError(f"expected a dp_accounting.DpEvent or an RdpCurve, got {type(entry)}")


def decode_round(encoded: dict[str, Any]) -> RoundPrivacy:
    if "rdp_curve" in encoded:
        curve = encoded["rdp_curve"]
        return RdpCurve(
            orders=tuple(float(a) for a in curve["orders"]),
            rdp=tuple(float(r) for r in curve["rdp"]),
        )
    return decode_event(encoded["dp_event"])
