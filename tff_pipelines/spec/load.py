"""load_spec / parse_spec: file or mapping in, a valid Spec (or every problem at once) out."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tff_pipelines.spec.build import build, fill_defaults, normalize_shorthands, resolve
from tff_pipelines.spec.errors import OVERRIDE_SOURCE, Problem, SpecError
from tff_pipelines.spec.overrides import apply_overrides
from tff_pipelines.spec.read import read_spec_file
from tff_pipelines.spec.rules import View, rule_problems
from tff_pipelines.spec.sections import Spec
from tff_pipelines.spec.validate import schema_problems


def load_spec(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Spec:
    """Reads, overrides and validates a .yaml/.yml/.toml spec; relative data.path is taken from
    the spec file's directory."""
    mapping = read_spec_file(path)
    base_dir = Path(os.path.abspath(path)).parent
    return parse_spec(mapping, source=str(path), overrides=overrides, base_dir=base_dir)


def parse_spec(
    mapping: Mapping[str, Any],
    source: str = "<spec>",
    overrides: Iterable[str] = (),
    *,
    base_dir: str | os.PathLike[str] | None = None,
) -> Spec:
    """Like load_spec, from an already-parsed mapping; `source` names it in problems and relative
    data.path is taken from `base_dir` (default: the current directory)."""
    if not isinstance(mapping, Mapping):
        message = f"the top level must be a mapping, not {type(mapping).__name__}"
        raise SpecError([Problem(file=source, path="", value=mapping, message=message)])
    raw = copy.deepcopy(dict(mapping))
    normalize_shorthands(raw)
    overridden, problems = apply_overrides(raw, overrides)
    normalize_shorthands(raw)

    def locate(path: str) -> str:
        from_override = any(path == o or path.startswith((f"{o}.", f"{o}[")) for o in overridden)
        return OVERRIDE_SOURCE if from_override else source

    bad_paths: set[str] = set()
    for path, value, message in schema_problems(raw):
        bad_paths.add(path)
        problems.append(Problem(file=locate(path), path=path, value=value, message=message))
    filled = fill_defaults(raw)
    view = View(filled, bad_paths)
    for path, message in rule_problems(view):
        problems.append(
            Problem(file=locate(path), path=path, value=view.get(path), message=message)
        )
    if problems:
        raise SpecError(problems)
    resolve(filled, Path(base_dir) if base_dir is not None else Path.cwd())
    return build(filled)


def dump_resolved(spec: Spec, path: str | os.PathLike[str]) -> Path:
    """Writes the fully resolved spec as YAML; load_spec on it gives an equal Spec."""
    header = "# Resolved spec: every default filled in and load-time values (seed, paths) fixed.\n"
    body = yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True)
    target = Path(path)
    target.write_text(header + body, encoding="utf-8")
    return target
