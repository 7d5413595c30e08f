import math

import pytest

from mechanisms.accounting.zcdp import epoch_rho, gaussian_rho
from mechanisms.schedules import (
    ConstantSchedule,
    ExponentialSchedule,
    PolynomialSchedule,
    StepSchedule,
    TimeBasedSchedule,
    ValidationSchedule,
    schedule_from_settings,
    spend,
)

# Yu et al.'s MNIST budget: constant σ = 8 for 100 epochs, 1/(2·8²) per reshuffled epoch.
MNIST_BUDGET = 100 / (2 * 8**2)


def test_budget_is_the_papers():
    assert MNIST_BUDGET == 0.78125


def test_formulas_by_hand():
    assert ConstantSchedule(8.0).sigma(37) == 8.0
    assert TimeBasedSchedule(10.0, 0.5).sigma(2) == 5.0
    assert ExponentialSchedule(10.0, math.log(2)).sigma(1) == pytest.approx(5.0, rel=1e-15)
    step = StepSchedule(10.0, 0.5, period=3)
    assert [step.sigma(t) for t in range(7)] == [10.0, 10.0, 10.0, 5.0, 5.0, 5.0, 2.5]
    polynomial = PolynomialSchedule(10.0, 2.0, period=4, power=2.0)
    # 8·(1 − t/4)² + 2, then 2 from epoch 4 on.
    assert [polynomial.sigma(t) for t in range(6)] == [10.0, 6.5, 4.0, 2.5, 2.0, 2.0]


def test_schedules_start_at_initial_sigma():
    for schedule in (
        TimeBasedSchedule(10.0, 0.0281),
        ExponentialSchedule(10.0, 0.0138),
        StepSchedule(10.0, 0.7008, 10),
        PolynomialSchedule(10.0, 2.0, 100, 3.5277),
        ValidationSchedule(10.0, 10, 0.8, 0.01, 5),
    ):
        assert schedule.sigma(0) == 10.0


def test_non_adaptive_schedules_ignore_validation():
    history = [0.1, 0.9, 0.2, 0.8] * 10
    for schedule in (
        ConstantSchedule(8.0),
        TimeBasedSchedule(10.0, 0.0281),
        ExponentialSchedule(10.0, 0.0138),
        StepSchedule(10.0, 0.7008, 10),
        PolynomialSchedule(10.0, 2.0, 100, 3.5277),
    ):
        assert [schedule.sigma(t, history) for t in range(50)] == [
            schedule.sigma(t) for t in range(50)
        ]


def _plateauing_history() -> list[float]:
    """Rises 0.02/epoch to epoch 14, flat until 39, rises 0.01/epoch to 49, flat to 59."""
    history = [0.5 + 0.02 * i for i in range(15)]
    history += [history[-1]] * 25
    history += [history[-1] + 0.01 * i for i in range(1, 11)]
    history += [history[-1]] * 10
    assert len(history) == 60
    return history


def test_validation_schedule_decays_where_accuracy_plateaus():
    schedule = ValidationSchedule(10.0, period=10, factor=0.8, threshold=0.01, window=5)
    history = _plateauing_history()
    # Check 10: epochs 5-9 vs 0-4 gain 0.1. Check 20: 15-19 vs 10-14 gain 0.04. Checks 30 and
    # 40: flat, gain 0, decay. Check 50: 45-49 vs 40-44 gain 0.05. Check 60: flat, decay.
    assert schedule.decay_epochs(65, history) == [30, 40, 60]
    sigmas = [schedule.sigma(t, history) for t in range(66)]
    assert sigmas[:30] == [10.0] * 30
    assert sigmas[30:40] == pytest.approx([8.0] * 10, rel=1e-15)
    assert sigmas[40:60] == pytest.approx([6.4] * 20, rel=1e-15)
    assert sigmas[60:] == pytest.approx([5.12] * 6, rel=1e-15)


def test_validation_schedule_reads_only_the_two_windows_before_the_check():
    schedule = ValidationSchedule(10.0, period=10, factor=0.5, threshold=0.01, window=3)
    # The check before epoch 10 compares epochs 7-9 with 4-6; epochs 0-3 must not matter.
    flat_windows = [0.0, 0.0, 0.0, 0.0] + [0.6] * 6
    assert schedule.decay_epochs(10, flat_windows) == [10]
    rising_windows = [0.9, 0.9, 0.9, 0.9] + [0.6] * 3 + [0.7] * 3
    assert schedule.decay_epochs(10, rising_windows) == []


def test_validation_gain_equal_to_threshold_does_not_decay():
    history = [0.5] * 2 + [0.75] * 2
    at_threshold = ValidationSchedule(1.0, period=4, factor=0.5, threshold=0.25, window=2)
    assert at_threshold.sigma(4, history) == 1.0
    above_threshold = ValidationSchedule(1.0, period=4, factor=0.5, threshold=0.2500001, window=2)
    assert above_threshold.sigma(4, history) == 0.5


def test_validation_checks_need_two_windows_of_history():
    schedule = ValidationSchedule(1.0, period=2, factor=0.5, threshold=0.01, window=3)
    flat = [0.5] * 10
    # Checks at 2 and 4 have fewer than 6 accuracies behind them; 6 and 8 decide (and decay).
    assert schedule.decay_epochs(9, flat) == [6, 8]


def test_validation_schedule_is_a_pure_function_of_the_needed_history():
    schedule = ValidationSchedule(10.0, period=10, factor=0.8, threshold=0.01, window=5)
    history = _plateauing_history()
    assert schedule.sigma(35, history) == schedule.sigma(35, history[:30])
    with pytest.raises(ValueError, match=r"epochs 0\.\.29"):
        schedule.sigma(35, history[:29])
    with pytest.raises(ValueError, match="finite"):
        schedule.sigma(35, [*history[:25], math.nan, *history[26:]])


def test_constant_sigma_8_spends_the_budget_in_exactly_100_epochs():
    sigmas = spend(
        ConstantSchedule(8.0),
        budget_rho=MNIST_BUDGET,
        per_epoch_rho=gaussian_rho,
        max_epochs=1000,
    )
    assert sigmas == [8.0] * 100


def test_float_rounding_does_not_cost_an_epoch():
    sigma = 3.7
    rho = gaussian_rho(sigma)
    running = 0.0
    for _ in range(100):
        running += rho
    budget = 100 * rho
    assert running > budget  # summing the epochs really overshoots the budget by rounding
    sigmas = spend(
        ConstantSchedule(sigma), budget_rho=budget, per_epoch_rho=gaussian_rho, max_epochs=1000
    )
    assert len(sigmas) == 100


def test_spend_stops_before_the_epoch_that_would_overspend():
    sigmas = spend(
        ConstantSchedule(8.0),
        budget_rho=MNIST_BUDGET * (1 - 1e-9),
        per_epoch_rho=gaussian_rho,
        max_epochs=1000,
    )
    assert len(sigmas) == 99
    assert (
        len(spend(ConstantSchedule(8.0), budget_rho=1.0, per_epoch_rho=gaussian_rho, max_epochs=7))
        == 7
    )


def _epochs_by_hand(sigma_of_epoch, budget: float = MNIST_BUDGET) -> int:
    """Independent count: add 1/(2σ_t²) until the next epoch would pass the budget."""
    spent, epochs = 0.0, 0
    while True:
        cost = 1 / (2 * sigma_of_epoch(epochs) ** 2)
        if spent + cost > budget * (1 + 1e-12):
            return epochs
        spent += cost
        epochs += 1


def _polynomial_by_hand(t: int) -> float:
    return (10 - 2) * (1 - t / 100) ** 3.5277 + 2 if t < 100 else 2.0


MNIST_SCHEDULES = [
    ("constant", {"initial_sigma": 8.0}, lambda t: 8.0, 100),
    (
        "time_based",
        {"initial_sigma": 10.0, "decay_rate": 0.0281},
        lambda t: 10 / (1 + 0.0281 * t),
        50,
    ),
    (
        "exponential",
        {"initial_sigma": 10.0, "decay_rate": 0.0138},
        lambda t: 10 * math.exp(-0.0138 * t),
        60,
    ),
    (
        "step",
        {"initial_sigma": 10.0, "factor": 0.7008, "period": 10},
        lambda t: 10 * 0.7008 ** (t // 10),
        40,
    ),
    (
        "polynomial",
        {"initial_sigma": 10.0, "final_sigma": 2.0, "period": 100, "power": 3.5277},
        _polynomial_by_hand,
        40,
    ),
]


@pytest.mark.parametrize(("kind", "params", "by_hand", "expected_epochs"), MNIST_SCHEDULES)
def test_epochs_the_papers_mnist_budget_affords(kind, params, by_hand, expected_epochs):
    # Our reference says these parameters spend the budget of σ = 8 over 100 epochs; with
    # 1/(2σ_t²) per reshuffled epoch only the constant schedule lasts 100 epochs (see report).
    sigmas = spend(
        schedule_from_settings(kind, **params),
        budget_rho=MNIST_BUDGET,
        per_epoch_rho=lambda sigma: epoch_rho(sigma, batching="reshuffle"),
        max_epochs=10_000,
    )
    assert len(sigmas) == _epochs_by_hand(by_hand) == expected_epochs
    assert sigmas == pytest.approx([by_hand(t) for t in range(expected_epochs)], rel=1e-12)


def test_validation_schedule_through_spend():
    schedule = schedule_from_settings(
        "validation_based", initial_sigma=10.0, period=10, factor=0.8, threshold=0.01, window=5
    )
    history = _plateauing_history()
    # 30 epochs at σ = 10 (0.15), 10 at 8 (0.078125), then 0.0122 each at 6.4: 5 more fit in 0.3.
    sigmas = spend(
        schedule, budget_rho=0.3, per_epoch_rho=gaussian_rho, max_epochs=60, validation=history
    )
    expected = _epochs_by_hand(lambda t: schedule.sigma(t, history), budget=0.3)
    assert len(sigmas) == expected == 45
    assert sigmas[-6:] == pytest.approx([8.0] + [6.4] * 5, rel=1e-15)
    # More epochs than the history covers cannot be planned.
    with pytest.raises(ValueError, match="validation-based schedule needs"):
        spend(
            schedule, budget_rho=10.0, per_epoch_rho=gaussian_rho, max_epochs=80, validation=history
        )


def test_spend_with_poisson_epochs():
    rate, steps = 0.01, 100
    sigmas = spend(
        ConstantSchedule(4.0),
        budget_rho=1.0,
        per_epoch_rho=lambda s: epoch_rho(s, batching="poisson", rate=rate, steps=steps),
        max_epochs=10_000,
    )
    per_epoch = steps * rate**2 / 16
    assert len(sigmas) == math.floor(1.0 / per_epoch * (1 + 1e-12))


def test_schedule_from_settings_builds_each_kind():
    assert schedule_from_settings("constant", initial_sigma=2.0) == ConstantSchedule(2.0)
    assert schedule_from_settings("step", initial_sigma=2.0, factor=0.5, period=3) == (
        StepSchedule(2.0, 0.5, 3)
    )


@pytest.mark.parametrize(
    ("kind", "params", "parameter"),
    [
        ("cosine", {"initial_sigma": 1.0}, "kind"),
        ("constant", {}, "initial_sigma"),
        ("constant", {"initial_sigma": 1.0, "decay_rate": 0.1}, "decay_rate"),
        ("constant", {"initial_sigma": 0.0}, "initial_sigma"),
        ("constant", {"initial_sigma": -1.0}, "initial_sigma"),
        ("constant", {"initial_sigma": math.inf}, "initial_sigma"),
        ("constant", {"initial_sigma": "8"}, "initial_sigma"),
        ("time_based", {"initial_sigma": 1.0, "decay_rate": -0.1}, "decay_rate"),
        ("exponential", {"initial_sigma": 1.0, "decay_rate": math.nan}, "decay_rate"),
        ("step", {"initial_sigma": 1.0, "factor": 0.0, "period": 1}, "factor"),
        ("step", {"initial_sigma": 1.0, "factor": 0.5, "period": 0}, "period"),
        ("step", {"initial_sigma": 1.0, "factor": 0.5, "period": 2.5}, "period"),
        (
            "polynomial",
            {"initial_sigma": 1.0, "final_sigma": 0.0, "period": 5, "power": 1.0},
            "final_sigma",
        ),
        (
            "polynomial",
            {"initial_sigma": 1.0, "final_sigma": 0.5, "period": 5, "power": 0.0},
            "power",
        ),
        (
            "validation_based",
            {"initial_sigma": 1.0, "period": 5, "factor": 0.8, "threshold": 0.01, "window": 0},
            "window",
        ),
        (
            "validation_based",
            {"initial_sigma": 1.0, "period": 5, "factor": -0.8, "threshold": 0.01, "window": 2},
            "factor",
        ),
        (
            "validation_based",
            {"initial_sigma": 1.0, "period": 5, "factor": 0.8, "threshold": math.nan, "window": 2},
            "threshold",
        ),
    ],
)
def test_bad_settings_are_named(kind, params, parameter):
    with pytest.raises(ValueError, match=parameter):
        schedule_from_settings(kind, **params)


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: ConstantSchedule(1.0).sigma(-1), "t"),
        (lambda: ConstantSchedule(1.0).sigma(1.5), "t"),
        (
            lambda: spend(
                ConstantSchedule(1.0), budget_rho=0.0, per_epoch_rho=gaussian_rho, max_epochs=1
            ),
            "budget_rho",
        ),
        (
            lambda: spend(
                ConstantSchedule(1.0), budget_rho=1.0, per_epoch_rho=gaussian_rho, max_epochs=-1
            ),
            "max_epochs",
        ),
        (
            lambda: spend(
                ConstantSchedule(1.0), budget_rho=1.0, per_epoch_rho=lambda s: -1.0, max_epochs=1
            ),
            "per_epoch_rho",
        ),
    ],
)
def test_bad_arguments_are_named(call, parameter):
    with pytest.raises(ValueError, match=parameter):
        call()
