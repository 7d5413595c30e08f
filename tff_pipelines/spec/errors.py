"""Problems found in a spec, and the one exception that carries all of them."""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

from tff_pipelines.errors import InputError

OVERRIDE_SOURCE: Final = "(from --set)"


class _NoValue:
    """Marks a problem about a field that has no value (missing, or an unknown key)."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_VALUE"

    def __reduce__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()


def show_value(value: Any) -> str:
    """Formats a value the way it would be written in a spec file (JSON/YAML flow style)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where (`file`, dotted `path`), what was given, what is allowed.

    `value` is NO_VALUE for a missing or unknown field.
    """

    file: str
    path: str
    value: Any
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        if self.value is not NO_VALUE:
            where += f" = {show_value(self.value)}"
        return f"{where}: {self.message}"


class SpecError(InputError):
    """Raised with every problem at once, so a user fixes a spec in one pass, not one per run."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("SpecError needs at least one problem")
        self.problems: list[Problem] = list(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        count = len(self.problems)
        header = f"invalid spec ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([header, *(f"  {problem}" for problem in self.problems)])


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Suffix for 'unknown X' messages: the closest candidate, or the full list if none is close."""
    options = list(candidates)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "expected one of: " + ", ".join(options)
