"""Per-field validation: jsonschema errors against json_schema(), translated into Problems."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import jsonschema
from jsonschema.exceptions import ValidationError

from tff_pipelines.spec.errors import NO_VALUE, did_you_mean, show_value
from tff_pipelines.spec.schema import cached_json_schema
from tff_pipelines.spec.sections import FACTORY_PATTERN, NAME_PATTERN

PathItem = str | int

_TYPE_WORDS: Final = {
    "integer": "an integer",
    "number": "a finite number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
_PATTERN_HINTS: Final = {
    FACTORY_PATTERN: "must look like 'package.module:function'",
    NAME_PATTERN: "may only use letters, digits, '_', '.' and '-', and not start with '.' or '-'",
}


def format_path(path: Sequence[PathItem]) -> str:
    """Dotted path with list indices in brackets: model.hidden[1]."""
    text = ""
    for item in path:
        if isinstance(item, int):
            text += f"[{item}]"
        else:
            text += f".{item}" if text else item
    return text


def schema_problems(instance: Any) -> Iterator[tuple[str, Any, str]]:
    """(path, value, message) for every field that breaks the schema, at most one per path."""
    seen: set[str] = set()
    for error in _validator().iter_errors(instance):
        for path, value, message in _translate(error):
            if path not in seen:
                seen.add(path)
                yield path, value, message


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    # JSON has no NaN or infinity; a NaN would pass every bound check, so reject non-finite numbers.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "number",
        lambda _, value: (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ),
    )
    validator_class = jsonschema.validators.extend(
        jsonschema.Draft202012Validator, type_checker=checker
    )
    return validator_class(cached_json_schema())


def _translate(error: ValidationError) -> Iterator[tuple[str, Any, str]]:
    path = list(error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                message = f"unknown field; {did_you_mean(str(key), allowed)}"
                yield format_path([*path, key]), NO_VALUE, message
    elif kind == "required":
        for key in error.validator_value:
            if key not in error.instance:
                yield format_path([*path, key]), NO_VALUE, "required field is missing"
    elif kind in ("anyOf", "oneOf"):
        yield from _translate_alternatives(error)
    else:
        yield format_path(path), error.instance, _message(error)


def _translate_alternatives(error: ValidationError) -> Iterator[tuple[str, Any, str]]:
    """Reports the errors of the one alternative whose type fits, else what types would fit."""
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errors
        for errors in by_branch.values()
        if not any(sub.validator in ("type", "enum") and not sub.relative_path for sub in errors)
    ]
    if len(fitting) == 1:
        for sub in fitting[0]:
            yield from _translate(sub)
        return
    options = [_describe(branch) for branch in error.validator_value]
    yield format_path(error.absolute_path), error.instance, "must be " + " or ".join(options)


def _describe(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of: " + ", ".join("null" if v is None else str(v) for v in schema["enum"])
    kinds = schema.get("type", [])
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return " or ".join(_TYPE_WORDS[kind] for kind in kinds)


def _message(error: ValidationError) -> str:
    kind, bound = error.validator, error.validator_value
    if kind == "type":
        return "must be " + _describe(error.schema)
    if kind == "enum":
        message = "must be one of: " + ", ".join(show_value(value) for value in bound)
        if isinstance(error.instance, str):
            close = did_you_mean(error.instance, [str(v) for v in bound])
            if close.startswith("did you mean"):
                message += f"; {close}"
        return message
    if kind == "const":
        return f"must be {show_value(bound)}"
    if kind == "minimum":
        return f"must be at least {bound}"
    if kind == "maximum":
        return f"must be at most {bound}"
    if kind == "exclusiveMinimum":
        return f"must be greater than {bound}"
    if kind == "exclusiveMaximum":
        return f"must be less than {bound}"
    if kind == "pattern":
        return _PATTERN_HINTS.get(bound, f"must match the pattern {bound}")
    if kind == "minItems":
        return f"must have at least {bound} item{'s' if bound != 1 else ''}"
    return error.message
