"""JSON Schema (draft 2020-12) of the spec file format, derived from the sections.py dataclasses."""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from typing import Any, Literal

from tff_pipelines.spec.sections import (
    OPTIMIZER_HYPERPARAMETERS,
    OPTIMIZERS,
    ModelSpec,
    OptimizerSpec,
    Spec,
)

DRAFT: typing.Final = "https://json-schema.org/draft/2020-12/schema"

_SCALAR_TYPES: typing.Final = {bool: "boolean", int: "integer", float: "number", str: "string"}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file: every field with description, default, enum and bounds."""
    return copy.deepcopy(cached_json_schema())


@functools.cache
def cached_json_schema() -> dict[str, Any]:
    """Shared, read-only copy of json_schema() for the validator; never mutate it."""
    schema = {
        "$schema": DRAFT,
        "title": "tff-pipelines spec",
        "description": "A private federated learning run: data, model, training, privacy, outputs.",
    }
    schema.update(_section_schema(Spec))
    return schema


def _section_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in dataclasses.fields(cls):
        node = _field_schema(hints[field.name], field)
        properties[field.name] = node
        if "default" not in node:
            required.append(field.name)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _field_schema(hint: Any, field: dataclasses.Field) -> dict[str, Any]:
    meta = field.metadata
    if hint is OptimizerSpec:
        node = _optimizer_schema()
    elif dataclasses.is_dataclass(hint):
        node = _section_schema(hint)
        if hint is ModelSpec:  # shorthand `model: mlp`
            node = {"anyOf": [_type_schema(typing.get_type_hints(ModelSpec)["type"]), node]}
    else:
        node = _type_schema(hint)
        constraints = dict(meta.get("constraints", {}))
        target = node.setdefault("items", {}) if _is_array(node) and constraints else node
        target.update(constraints)
        if meta.get("nullable"):
            node = _with_null(node)
    result = {"description": meta["doc"], **node}
    if field.default is not dataclasses.MISSING:
        result["default"] = _jsonable(field.default)
    elif field.default_factory is not dataclasses.MISSING:
        result["default"] = {}
    return result


def _type_schema(hint: Any) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin is Literal:
        # No "type" beside "enum": a wrong type would otherwise be reported twice.
        return {"enum": list(typing.get_args(hint))}
    if origin in (typing.Union, types.UnionType):
        return _union_schema([_type_schema(arg) for arg in typing.get_args(hint)])
    if origin is tuple:
        item, ellipsis = typing.get_args(hint)
        if ellipsis is not Ellipsis:
            raise TypeError(f"only tuple[X, ...] is supported, got {hint}")
        return {"type": "array", "items": _type_schema(item)}
    if hint is type(None):
        return {"type": "null"}
    if hint in _SCALAR_TYPES:
        return {"type": _SCALAR_TYPES[hint]}
    raise TypeError(f"no JSON Schema for annotation {hint!r}")


def _union_schema(members: list[dict[str, Any]]) -> dict[str, Any]:
    enums = [m for m in members if "enum" in m]
    if enums and all("enum" in m or m == {"type": "null"} for m in members):
        # Literal[...] | None: one enum with null among the choices.
        values = [v for m in enums for v in m["enum"]]
        return {"enum": values + [None] * (len(enums) < len(members))}
    if enums:
        # int | Literal["all", ...] (| None): a typed branch and an enum branch.
        typed = [m for m in members if "enum" not in m and m != {"type": "null"}]
        values = [v for m in enums for v in m["enum"]]
        values += [None] * (len(typed) + len(enums) < len(members))
        return {"anyOf": [_union_schema(typed), {"enum": values}]}
    merged: dict[str, Any] = {"type": []}
    for member in members:
        if set(member) - {"type", "items"}:
            raise TypeError(f"cannot merge {member} into a union type")
        merged["type"].append(member["type"])
        if "items" in member:
            merged["items"] = member["items"]
    return merged


def _with_null(node: dict[str, Any]) -> dict[str, Any]:
    kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
    return {**node, "type": [*kinds, "null"]}


def _is_array(node: dict[str, Any]) -> bool:
    kinds = node["type"] if isinstance(node.get("type"), list) else [node.get("type")]
    return "array" in kinds


def _optimizer_schema() -> dict[str, Any]:
    """`name` picks which builder keyword arguments are allowed, via one if/then per optimizer."""
    branches = []
    for name in OPTIMIZERS:
        hyperparameters = OPTIMIZER_HYPERPARAMETERS[name]
        allowed: dict[str, Any] = {"name": True, "learning_rate": True}
        for key, (low, high) in hyperparameters.items():
            bound: dict[str, Any] = {"type": "number"}
            if low is not None:
                bound["minimum"] = low
            if high is not None:
                bound["maximum"] = high
            allowed[key] = bound
        # A missing name means sgd, so only the sgd branch matches a mapping without one.
        condition: dict[str, Any] = {"properties": {"name": {"const": name}}}
        if name != "sgd":
            condition["required"] = ["name"]
        branches.append(
            {"if": condition, "then": {"properties": allowed, "additionalProperties": False}}
        )
    return {
        "type": "object",
        "properties": {
            "name": {
                "description": "Which tff.learning.optimizers builder to use.",
                "enum": list(OPTIMIZERS),
                "default": "sgd",
            },
            "learning_rate": {
                "description": "Learning rate (required).",
                "type": "number",
                "exclusiveMinimum": 0,
            },
        },
        "required": ["learning_rate"],
        "allOf": branches,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, OptimizerSpec):
        return {"name": value.name, **value.kwargs()}
    if dataclasses.is_dataclass(value):
        return {}
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    return value
