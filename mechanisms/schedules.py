"""Noise schedules: the noise multiplier σ_t of epoch (or round) t = 0, 1, ..., as in Yu et al.,
"Differentially Private Model Publishing for Deep Learning" (IEEE S&P 2019).

A schedule only says how σ moves; `spend` says how many epochs a privacy budget affords. Every
schedule is a pure function of t (and, for the validation-based one, of the accuracy history), so
a resumed run recomputes the same σ without saved state.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Relative slack on the budget, so that float rounding in a sum of per-epoch costs does not drop
# an epoch that the budget was sized for (e.g. constant σ for exactly N epochs).
BUDGET_RELATIVE_TOLERANCE = 1e-12


class NoiseSchedule(Protocol):
    def sigma(self, t: int, validation: Sequence[float] = ()) -> float:
        """Noise multiplier of epoch `t`; `validation[i]` is the accuracy measured after epoch i
        (read only by schedules that adapt to it)."""
        ...


@dataclass(frozen=True)
class ConstantSchedule:
    """σ_t = initial_sigma."""

    initial_sigma: float

    def __post_init__(self) -> None:
        _check_positive("initial_sigma", self.initial_sigma)

    def sigma(self, t: int, validation: Sequence[float] = ()) -> float:
        _check_epoch(t)
        return float(self.initial_sigma)


@dataclass(frozen=True)
class TimeBasedSchedule:
    """σ_t = initial_sigma / (1 + decay_rate·t)."""

    initial_sigma: float
    decay_rate: float

    def __post_init__(self) -> None:
        _check_positive("initial_sigma", self.initial_sigma)
        _check_non_negative("decay_rate", self.decay_rate)

    def sigma(self, t: int, validation: Sequence[float] = ()) -> float:
        _check_epoch(t)
        return self.initial_sigma / (1.0 + self.decay_rate * t)


@dataclass(frozen=True)
class ExponentialSchedule:
    """σ_t = initial_sigma · exp(−decay_rate·t)."""

    initial_sigma: float
    decay_rate: float

    def __post_init__(self) -> None:
        _check_positive("initial_sigma", self.initial_sigma)
        _check_non_negative("decay_rate", self.decay_rate)

    def sigma(self, t: int, validation: Sequence[float] = ()) -> float:
        _check_epoch(t)
        return self.initial_sigma * math.exp(-self.decay_rate * t)


@dataclass(frozen=True)
class StepSchedule:
    """σ_t = initial_sigma · factor^floor(t / period): σ is multiplied by `factor` every `period`
    epochs."""

    initial_sigma: float
    factor: float
    period: int

    def __post_init__(self) -> None:
        _check_positive("initial_sigma", self.initial_sigma)
        _check_positive("factor", self.factor)
        _check_period(self.period)

    def sigma(self, t: int, validation: Sequence[float] = ()) -> float:
        _check_epoch(t)
        return self.initial_sigma * self.factor ** (t // self.period)


@dataclass(frozen=True)
class PolynomialSchedule:
    """σ_t = (initial_sigma − final_sigma)·(1 − t/period)^power + final_sigma for t < period, and
    final_sigma from epoch `period` on."""

    initial_sigma: float
    final_sigma: float
    period: int
    power: float

    def __post_init__(self) -> None:
        _check_positive("initial_sigma", self.initial_sigma)
        _check_positive("final_sigma", self.final_sigma)
        _check_period(self.period)
        _check_positive("power", self.power)

    def sigma(self, t: int, validation: Sequence[float] = ()) -> float:
        _check_epoch(t)
        if t >= self.period:
            return float(self.final_sigma)
        remaining = (1.0 - t / self.period) ** self.power
        return (self.initial_sigma - self.final_sigma) * remaining + self.final_sigma


@dataclass(frozen=True)
class ValidationSchedule:
    """σ multiplied by `factor` whenever validation accuracy stops improving.

    Checks happen before epochs t = period, 2·period, ...; the check before epoch c reads the
    per-epoch accuracies validation[0..c−1]. Its "last m checks" are the m most recent ones,
    validation[c−m .. c−1], and "the previous" are the m before those, validation[c−2m .. c−m−1]
    (m = `window`). If mean(last) − mean(previous), an absolute gain in accuracy, is below
    `threshold`, σ is multiplied by `factor` from epoch c on. A check with fewer than 2m
    accuracies behind it (c < 2m) decides nothing. So σ_t = initial_sigma · factor^(number of
    checks at epochs <= t that found too little gain).
    """

    initial_sigma: float
    period: int
    factor: float
    threshold: float
    window: int

    def __post_init__(self) -> None:
        _check_positive("initial_sigma", self.initial_sigma)
        _check_period(self.period)
        _check_positive("factor", self.factor)
        if not _is_real(self.threshold) or not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be a positive integer, got {self.window!r}")

    def decay_epochs(self, t: int, validation: Sequence[float]) -> list[int]:
        """The check epochs c <= t at which σ was decayed."""
        _check_epoch(t)
        m = self.window
        decayed = []
        for check in range(self.period, t + 1, self.period):
            if check < 2 * m:
                continue
            if len(validation) < check:
                raise ValueError(
                    f"the validation-based schedule needs the accuracy after each of epochs "
                    f"0..{check - 1} to give σ at epoch {t}; got {len(validation)} values"
                )
            windows = validation[check - 2 * m : check]
            if not all(math.isfinite(accuracy) for accuracy in windows):
                raise ValueError(f"validation accuracies must be finite, got {list(windows)}")
            last = math.fsum(windows[m:]) / m
            previous = math.fsum(windows[:m]) / m
            if last - previous < self.threshold:
                decayed.append(check)
        return decayed

    def sigma(self, t: int, validation: Sequence[float] = ()) -> float:
        return self.initial_sigma * self.factor ** len(self.decay_epochs(t, validation))


_SCHEDULES: dict[str, type] = {
    "constant": ConstantSchedule,
    "time_based": TimeBasedSchedule,
    "exponential": ExponentialSchedule,
    "step": StepSchedule,
    "polynomial": PolynomialSchedule,
    "validation_based": ValidationSchedule,
}


def schedule_parameters(kind: str) -> list[str]:
    """The parameters a schedule of `kind` takes, all required."""
    if kind not in _SCHEDULES:
        raise ValueError(f"noise schedule kind must be one of {sorted(_SCHEDULES)}, got {kind!r}")
    return list(_SCHEDULES[kind].__dataclass_fields__)


def schedule_from_settings(kind: str, **params: Any) -> NoiseSchedule:
    """The schedule named `kind` with exactly the parameters of its dataclass."""
    expected = schedule_parameters(kind)
    schedule_type = _SCHEDULES[kind]
    unknown = sorted(set(params) - set(expected))
    missing = [name for name in expected if name not in params]
    if unknown or missing:
        raise ValueError(
            f"a {kind} noise schedule takes parameters {expected}"
            + (f"; unknown: {unknown}" if unknown else "")
            + (f"; missing: {missing}" if missing else "")
        )
    return schedule_type(**params)


def fits_budget(spent_rho: float, budget_rho: float) -> bool:
    """Whether having spent `spent_rho` stays within `budget_rho` (up to float rounding)."""
    return spent_rho <= budget_rho * (1.0 + BUDGET_RELATIVE_TOLERANCE)


def spend(
    schedule: NoiseSchedule,
    *,
    budget_rho: float,
    per_epoch_rho: Callable[[float], float],
    max_epochs: int,
    validation: Sequence[float] = (),
) -> list[float]:
    """σ of each epoch the budget affords, at most `max_epochs`: training stops before the first
    epoch whose cost `per_epoch_rho(σ_t)` would take the cumulative ρ past `budget_rho`.

    `validation` is the accuracy history for schedules that read it; it must cover every epoch
    whose σ depends on it.
    """
    if not (math.isfinite(budget_rho) and budget_rho > 0):
        raise ValueError(f"budget_rho must be positive and finite, got {budget_rho}")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 0:
        raise ValueError(f"max_epochs must be a non-negative integer, got {max_epochs!r}")
    sigmas: list[float] = []
    spent = 0.0
    for t in range(max_epochs):
        sigma = schedule.sigma(t, validation)
        rho = per_epoch_rho(sigma)
        if math.isnan(rho) or rho < 0:
            raise ValueError(f"per_epoch_rho returned {rho} for σ = {sigma}")
        if not fits_budget(spent + rho, budget_rho):
            break
        spent += rho
        sigmas.append(sigma)
    return sigmas


def _check_epoch(t: int) -> None:
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ValueError(f"epoch index t must be a non-negative integer, got {t!r}")


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_positive(name: str, value: float) -> None:
    if not (_is_real(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value}")


def _check_non_negative(name: str, value: float) -> None:
    if not (_is_real(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be non-negative and finite, got {value}")


def _check_period(period: int) -> None:
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"period must be a positive integer, got {period!r}")
