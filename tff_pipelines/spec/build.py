"""From a validated mapping to a Spec: fill defaults, resolve load-time values, build."""

from __future__ import annotations

import dataclasses
import os
import secrets
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tff_pipelines.spec.sections import (
    MAX_SEED,
    OPTIMIZER_HYPERPARAMETERS,
    SYNTHETIC_EXAMPLES_DEFAULT,
    OptimizerSpec,
    Spec,
)

_UNIONS = (typing.Union, types.UnionType)


def normalize_shorthands(mapping: dict[str, Any]) -> None:
    """`model: mlp` means `model: {type: mlp}`; a model with only `factory` means type factory."""
    model = mapping.get("model")
    if isinstance(model, str):
        mapping["model"] = model = {"type": model}
    if isinstance(model, dict) and "factory" in model and "type" not in model:
        model["type"] = "factory"


def fill_defaults(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping with every absent field set to its default (invalid parts are kept as given)."""
    return _fill(Spec, mapping)


def _fill(cls: type, given: Any) -> dict[str, Any]:
    given = given if isinstance(given, Mapping) else {}
    hints = typing.get_type_hints(cls)
    filled: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if field.name in given:
            value = given[field.name]
            if dataclasses.is_dataclass(hint) and hint is not OptimizerSpec:
                value = _fill(hint, value)
            elif hint is OptimizerSpec and isinstance(value, Mapping):
                value = {"name": "sgd", **value}
            filled[field.name] = value
        elif field.default is not dataclasses.MISSING:
            filled[field.name] = _plain_default(field.default)
        elif field.default_factory is not dataclasses.MISSING:
            filled[field.name] = _fill(hint, {})
    return filled


def _plain_default(value: Any) -> Any:
    if isinstance(value, OptimizerSpec):
        return {"name": value.name, **value.kwargs()}
    return value


def resolve(filled: dict[str, Any], base_dir: Path) -> None:
    """Decides what the file leaves to load time, so the resolved spec reproduces the run."""
    if filled["seed"] is None:
        filled["seed"] = secrets.randbelow(MAX_SEED + 1)
    data = filled["data"]
    if data["path"] is not None:
        path = Path(data["path"]).expanduser()
        data["path"] = os.path.normpath(path if path.is_absolute() else base_dir / path)
    if data["source"] == "synthetic" and data["examples"] is None:
        data["examples"] = SYNTHETIC_EXAMPLES_DEFAULT
    if data["source"] == "csv" and data["label"] is None:
        data["label"] = "label"
    if data["source"] == "npz":
        data["label"] = "y" if data["label"] is None else data["label"]
        data["features"] = "x" if data["features"] is None else data["features"]
    output = filled["output"]
    output["dir"] = output["dir"].replace("{name}", filled["name"])


def build(filled: Mapping[str, Any]) -> Spec:
    """The Spec for a filled, resolved and valid mapping."""
    return _build(Spec, filled)


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value) for name, value in values.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    """Normalises numbers and lists so YAML `1` and TOML `1.0` give equal Specs."""
    if hint is OptimizerSpec:
        hyperparameters = OPTIMIZER_HYPERPARAMETERS[value["name"]]
        return OptimizerSpec(
            name=value["name"],
            learning_rate=float(value["learning_rate"]),
            hyperparameters=tuple(
                (key, float(value[key])) for key in hyperparameters if key in value
            ),
        )
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if value is None:
        return None
    kinds = typing.get_args(hint) if typing.get_origin(hint) in _UNIONS else (hint,)
    if isinstance(value, list):
        item = next(typing.get_args(kind)[0] for kind in kinds if typing.get_origin(kind) is tuple)
        return tuple(_coerce(item, element) for element in value)
    if isinstance(value, bool | str):
        return value
    if float in kinds:
        return float(value)
    if int in kinds:
        return int(value)
    return value
