"""Privacy-utility table: final test accuracy of smm, ddg, skellam and central gaussian on
mnist5k, at epsilon 1, 3 and 8 (delta 1e-5) and 8 to 20 bits, same seeds and rounds for all.

Each run calibrates its noise to the target epsilon for the whole run and reports the epsilon
its ledger actually spent. Results go to a markdown table, a JSON file and a PNG (accuracy vs
bits, one panel per epsilon, gaussian as a dashed line: it does not depend on bits).

    uv run python bench/privacy_utility.py [--rounds 20] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tff_pipelines import runtime

runtime.silence_tensorflow()

from tff_pipelines.errors import InputError  # noqa: E402
from tff_pipelines.run import run  # noqa: E402
from tff_pipelines.spec import parse_spec  # noqa: E402

EPSILONS = (1.0, 3.0, 8.0)
BITS = (8, 10, 12, 16, 20)
DISTRIBUTED = ("smm", "ddg", "skellam")
CLIENTS, COHORT = 100, 50


def spec(mechanism: str, epsilon: float, bits: int | None, rounds: int, seed: int) -> dict:
    privacy = {"mechanism": mechanism, "target_epsilon": epsilon, "delta": 1e-5, "clip": 1.0}
    if bits is not None:
        privacy["bits"] = bits
    return {
        "name": f"pu_{mechanism}_{epsilon:g}_{bits}",
        "seed": seed,
        "data": {"source": "mnist5k", "clients": CLIENTS},
        "model": {"type": "logreg"},
        "training": {
            "rounds": rounds,
            "clients_per_round": COHORT,
            "sampling": "poisson",
            "batch_size": 10,
            "client_optimizer": {"name": "sgd", "learning_rate": 0.1},
            "server_optimizer": {"name": "sgd", "learning_rate": 1.0},
        },
        "privacy": privacy,
        "evaluation": {"every": 0},
        "output": {"export": False, "plots": False},
    }


def measure(mechanism: str, epsilon: float, bits: int | None, rounds: int, seed: int) -> dict:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        try:
            result = run(
                parse_spec(spec(mechanism, epsilon, bits, rounds, seed)),
                out,
                progress=False,
                log=lambda m: None,
            )
        except InputError as error:  # e.g. too few bits for the noise: say so in the table
            return {
                "mechanism": mechanism,
                "epsilon_target": epsilon,
                "bits": bits,
                "error": str(error).splitlines()[-1].strip(),
            }
        privacy = json.loads((Path(out) / "privacy.json").read_text())
        records = [json.loads(line) for line in (Path(out) / "metrics.jsonl").open()]
    noise = privacy["noise"]
    return {
        "mechanism": mechanism,
        "epsilon_target": epsilon,
        "bits": bits,
        "accuracy": result.final_metrics.get("eval_accuracy"),
        "epsilon_reported": privacy["epsilon"],
        "noise": noise.get("mu", noise.get("noise_multiplier")),
        "scale": noise.get("gamma") if mechanism == "smm" else noise.get("scale"),
        "wrapped_coordinates": sum(r.get("agg_wrapped_coordinates") or 0 for r in records),
        "seconds": time.monotonic() - started,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| ε target | mechanism | " + " | ".join(f"{b} bits" for b in BITS) + " |",
        "|---|---|" + "---|" * len(BITS),
    ]
    for epsilon in EPSILONS:
        for mechanism in (*DISTRIBUTED, "gaussian"):
            cells = []
            for bits in BITS:
                key = None if mechanism == "gaussian" else bits
                row = next(
                    r
                    for r in results
                    if r["mechanism"] == mechanism
                    and r["epsilon_target"] == epsilon
                    and r["bits"] == key
                )
                cells.append(
                    f"{row['accuracy']:.3f} (ε {row['epsilon_reported']:.3g})"
                    if "accuracy" in row
                    else "infeasible"
                )
                if mechanism == "gaussian":
                    cells = [cells[0]] + ["″"] * (len(BITS) - 1)
                    break
            lines.append(f"| {epsilon:g} | {mechanism} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(EPSILONS), figsize=(4 * len(EPSILONS), 3.4), sharey=True)
    for axis, epsilon in zip(axes, EPSILONS, strict=True):
        for mechanism in DISTRIBUTED:
            points = [
                (r["bits"], r["accuracy"])
                for r in results
                if r["mechanism"] == mechanism
                and r["epsilon_target"] == epsilon
                and r.get("accuracy") is not None
            ]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=mechanism)
        central = [
            r["accuracy"]
            for r in results
            if r["mechanism"] == "gaussian" and r["epsilon_target"] == epsilon
        ]
        if central:
            axis.axhline(central[0], linestyle="--", color="gray", label="gaussian (central)")
        axis.set_title(f"ε = {epsilon:g}, δ = 1e-5")
        axis.set_xlabel("bits per coordinate")
        axis.set_xticks(BITS)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[-1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    results = []
    with runtime.session():
        for epsilon in EPSILONS:
            results.append(measure("gaussian", epsilon, None, args.rounds, args.seed))
            for mechanism in DISTRIBUTED:
                for bits in BITS:
                    results.append(measure(mechanism, epsilon, bits, args.rounds, args.seed))
                    print(json.dumps(results[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "privacy_utility.json").write_text(
        json.dumps(
            {
                "workload": f"mnist5k, logreg, {CLIENTS} clients, {COHORT} per round (Poisson), "
                f"{args.rounds} rounds, seed {args.seed}",
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    markdown = table(results)
    (args.out / "privacy_utility.md").write_text(markdown + "\n")
    plot(results, args.out / "privacy_utility.png")
    print(markdown)


if __name__ == "__main__":
    main()
