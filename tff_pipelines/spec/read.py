"""Reading spec files (YAML or TOML) into plain mappings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tff_pipelines.spec.errors import NO_VALUE, Problem, SpecError


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader with YAML 1.2 floats and duplicate keys rejected.

    PyYAML follows YAML 1.1, where `1e-5` (no dot) is a string: the most natural way to write a
    delta would fail validation. A duplicate key would silently drop the first value.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_FLOAT_WITH_EXPONENT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT_WITH_EXPONENT, list("-+0123456789.")
)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a .yaml/.yml/.toml file, or SpecError naming the file."""
    name = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise _file_error(name, f"unknown extension '{suffix}': use .yaml, .yml or .toml")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _file_error(name, f"cannot read: {error}") from error
    if suffix == ".toml":
        try:
            content: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise _file_error(name, f"TOML parse error: {error}") from error
    else:
        try:
            content = yaml.load(text, Loader=SpecLoader)  # SpecLoader is a SafeLoader
        except yaml.YAMLError as error:
            raise _file_error(name, f"YAML parse error: {_describe_yaml_error(error)}") from error
    if content is None or content == {}:
        raise _file_error(name, "the file is empty")
    if not isinstance(content, dict):
        raise _file_error(name, f"the top level must be a mapping, not {type(content).__name__}")
    return content


def parse_value(text: str) -> Any:
    """A YAML scalar or flow value, as in a spec file: `3`, `0.5`, `1e-5`, `null`, `[64, 32]`."""
    return yaml.load(text, Loader=SpecLoader)  # SpecLoader is a SafeLoader


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _file_error(name: str, message: str) -> SpecError:
    return SpecError([Problem(file=name, path="", value=NO_VALUE, message=message)])
