"""Command-line overrides `section.field=value`, applied to the raw mapping before validation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from tff_pipelines.spec.errors import NO_VALUE, OVERRIDE_SOURCE, Problem, did_you_mean
from tff_pipelines.spec.read import parse_value
from tff_pipelines.spec.schema import cached_json_schema


def apply_overrides(
    mapping: dict[str, Any], overrides: Iterable[str]
) -> tuple[list[str], list[Problem]]:
    """Sets each override in `mapping` (in place); returns the dotted paths set and the problems."""
    applied: list[str] = []
    problems: list[Problem] = []
    for text in overrides:
        path_text, sep, value_text = text.partition("=")
        path_text = path_text.strip()
        if not sep or not path_text:
            problems.append(_problem(text, NO_VALUE, "expected section.field=value"))
            continue
        keys = path_text.split(".")
        unknown = _unknown_key(keys)
        if unknown is not None:
            problems.append(_problem(*unknown))
            continue
        try:
            value = parse_value(value_text)
        except yaml.YAMLError as error:
            problems.append(_problem(path_text, value_text, f"cannot parse the value: {error}"))
            continue
        _set(mapping, keys, value)
        applied.append(path_text)
    return applied, problems


def _problem(path: str, value: Any, message: str) -> Problem:
    return Problem(file=OVERRIDE_SOURCE, path=path, value=value, message=message)


def _unknown_key(keys: list[str]) -> tuple[str, Any, str] | None:
    """(path, value, message) for the first key that is not a field of the schema, if any."""
    node: Mapping[str, Any] = cached_json_schema()
    for depth, key in enumerate(keys):
        allowed = _field_schemas(node)
        if key not in allowed:
            path = ".".join(keys[: depth + 1])
            if not allowed:
                return path, NO_VALUE, f"unknown field: {'.'.join(keys[:depth])} has no fields"
            return path, NO_VALUE, f"unknown field; {did_you_mean(key, list(allowed))}"
        node = allowed[key]
    return None


def _field_schemas(node: Mapping[str, Any]) -> dict[str, Any]:
    """Every property a schema node can have, including those of its alternatives and branches."""
    fields: dict[str, Any] = {}
    for key, sub in node.get("properties", {}).items():
        if isinstance(sub, Mapping):
            fields.setdefault(key, sub)
        else:
            fields.setdefault(key, {})
    for alternative in node.get("anyOf", []):
        fields.update(_field_schemas(alternative))
    for branch in node.get("allOf", []):
        for key, sub in _field_schemas(branch.get("then", {})).items():
            fields.setdefault(key, sub)
    return fields


def _set(mapping: dict[str, Any], keys: list[str], value: Any) -> None:
    node = mapping
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
        node[key] = child
        node = child
    node[keys[-1]] = value
