"""How fast the SMM, DDG and Skellam accountants answer, against the targets the run loop needs.

Two measurements per mechanism, each the median of several cold runs (the subsampling weight
cache is cleared first):
- epsilon after each of 10,000 rounds: one round's RDP curve, then `counts * curve` for every
  round count, converted with `epsilons_from_rdp` (target < 50 ms);
- calibration for a target epsilon (target < 1 s): SMM's `smm_calibrate_mu_total`; for DDG and
  Skellam a geometric bisection on the noise multiplier z in which every evaluation recomputes
  TFF's scale and the post-rounding sensitivities from z (a sketch of the production loop).

    uv run python bench/accounting_speed.py [--repeats 7] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from mechanisms.accounting import subsampled
from mechanisms.accounting.bisection import least_passing
from mechanisms.accounting.ddg import DISTRIBUTED_ORDERS, ddg_round_rdp, skellam_round_rdp
from mechanisms.accounting.rdp import epsilons_from_rdp
from mechanisms.accounting.smm import (
    SMM_ORDERS,
    smm_calibrate_mu_total,
    smm_epsilon,
    smm_round_rdp,
)
from mechanisms.scaling import sensitivity_bounds, tff_scale

ROUNDS = 10_000
DELTA = 1e-5
EPSILON_TARGET_MS = 50.0
CALIBRATION_TARGET_MS = 1000.0

# smm.md's composed test point and ddg-skellam.md's 16-bit setting.
SMM = {"c": 4096.0, "mu_total": 1428.0, "rate": 240 / 60000}
DISTRIBUTED = {"bits": 16, "clip": 1.0, "clients": 100, "dim": 65536, "wrap_probability": 1e-4}
DISTRIBUTED_RATE = 0.01
CALIBRATION = {"target_epsilon": 3.0, "rounds": 1000}
Z_TOLERANCE = 1e-4  # relative, like the Gaussian calibration


def distributed_round_rdp(mechanism: str, noise_multiplier: float) -> np.ndarray:
    """One round's curve at noise multiplier z, with the scale and sensitivities z implies."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a scale <= 1 warning is irrelevant to timing
        scale = tff_scale(noise_multiplier=noise_multiplier, **DISTRIBUTED)
    l2, l1 = sensitivity_bounds(
        clip=DISTRIBUTED["clip"], scale=scale, dim=DISTRIBUTED["dim"], beta=0.0
    )
    common = {
        "l2": l2,
        "l1": l1,
        "sigma": noise_multiplier * DISTRIBUTED["clip"] / math.sqrt(DISTRIBUTED["clients"]),
        "clients": DISTRIBUTED["clients"],
        "scale": scale,
        "rate": DISTRIBUTED_RATE,
    }
    if mechanism == "ddg":
        return ddg_round_rdp(**common, dim=DISTRIBUTED["dim"])
    return skellam_round_rdp(**common)


def epsilons_per_round(orders: tuple[int, ...], curve: Callable[[], np.ndarray]) -> np.ndarray:
    counts = np.arange(1, ROUNDS + 1, dtype=np.float64)[:, None]
    epsilons, _ = epsilons_from_rdp(orders, counts * curve(), DELTA)
    return epsilons


def calibrate_noise_multiplier(mechanism: str) -> float:
    """Smallest z (to Z_TOLERANCE) meeting the calibration target; bisection on log z."""
    rounds, target = CALIBRATION["rounds"], CALIBRATION["target_epsilon"]

    def meets_target(z: float) -> bool:
        rdp = rounds * distributed_round_rdp(mechanism, z)
        return float(epsilons_from_rdp(DISTRIBUTED_ORDERS, rdp, DELTA)[0]) <= target

    low, high = 1.0, 1.0
    if meets_target(high):
        while meets_target(low):
            high, low = low, low / 2
    else:
        while not meets_target(high):
            low, high = high, high * 2
            if high > 1e3:
                raise ValueError(f"{mechanism}: no z up to 1000 meets the target")
    return least_passing(meets_target, low, high, relative_tolerance=Z_TOLERANCE)


def median_ms(task: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        subsampled._log_weights.cache_clear()
        start = time.perf_counter()
        result = task()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=str, default=None, help="write the results here")
    args = parser.parse_args()

    curves: dict[str, tuple[tuple[int, ...], Callable[[], np.ndarray]]] = {
        "smm": (SMM_ORDERS, lambda: smm_round_rdp(**SMM)),
        "ddg": (DISTRIBUTED_ORDERS, lambda: distributed_round_rdp("ddg", 1.0)),
        "skellam": (DISTRIBUTED_ORDERS, lambda: distributed_round_rdp("skellam", 1.0)),
    }
    calibrations: dict[str, Callable[[], float]] = {
        "smm": lambda: smm_calibrate_mu_total(
            CALIBRATION["target_epsilon"],
            rounds=CALIBRATION["rounds"],
            delta=DELTA,
            c=SMM["c"],
            rate=SMM["rate"],
        ),
        "ddg": lambda: calibrate_noise_multiplier("ddg"),
        "skellam": lambda: calibrate_noise_multiplier("skellam"),
    }

    results = []
    for mechanism, (orders, curve) in curves.items():
        curve_ms, _ = median_ms(curve, args.repeats)
        epsilon_ms, epsilons = median_ms(
            functools.partial(epsilons_per_round, orders, curve), args.repeats
        )
        calibration_ms, solution = median_ms(calibrations[mechanism], args.repeats)
        results.append(
            {
                "mechanism": mechanism,
                "orders": len(orders),
                "round_curve_ms": curve_ms,
                "epsilon_10k_rounds_ms": epsilon_ms,
                "epsilon_after_10k_rounds": float(epsilons[-1]),
                "calibration_ms": calibration_ms,
                "calibrated": {"smm": "mu_total"}.get(mechanism, "noise_multiplier"),
                "calibrated_value": float(solution),
            }
        )
    smm_check = smm_epsilon(
        c=SMM["c"],
        mu_total=results[0]["calibrated_value"],
        rate=SMM["rate"],
        rounds=CALIBRATION["rounds"],
        delta=DELTA,
    )
    assert smm_check.epsilon <= CALIBRATION["target_epsilon"]

    print(
        f"{ROUNDS} rounds, delta {DELTA:g}; calibration to epsilon {CALIBRATION['target_epsilon']}"
        f" over {CALIBRATION['rounds']} rounds; median of {args.repeats} cold runs"
    )
    header = f"{'mechanism':<9} {'orders':>6} {'curve ms':>9} {'eps x10k ms':>12} {'calib ms':>9}"
    print(header + "   calibrated")
    for r in results:
        print(
            f"{r['mechanism']:<9} {r['orders']:>6} {r['round_curve_ms']:>9.2f} "
            f"{r['epsilon_10k_rounds_ms']:>12.1f} {r['calibration_ms']:>9.1f}   "
            f"{r['calibrated']} = {r['calibrated_value']:.6g}"
        )
    print(
        f"targets: {EPSILON_TARGET_MS:g} ms for 10k-round epsilons, "
        f"{CALIBRATION_TARGET_MS:g} ms for calibration"
    )

    if args.json:
        payload = {
            "machine": {"platform": platform.platform(), "python": platform.python_version()},
            "rounds": ROUNDS,
            "delta": DELTA,
            "repeats": args.repeats,
            "targets_ms": {
                "epsilon_10k_rounds": EPSILON_TARGET_MS,
                "calibration": CALIBRATION_TARGET_MS,
            },
            "settings": {
                "smm": SMM,
                "distributed": {**DISTRIBUTED, "rate": DISTRIBUTED_RATE},
                "calibration": CALIBRATION,
            },
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)


if __name__ == "__main__":
    main()
