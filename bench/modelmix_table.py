"""ModelMix (Xiao, Wan & Devadas 2022) against plain DP-SGD at equal epsilon: digits test accuracy
at epsilon 1, 2 and 4 (delta 1e-5), over seeds 1..5, with a no-privacy row for reference.

Every variant runs specs/digits_modelmix.yaml (4 clients, DP-SGD on Poisson-sampled batches,
FedAvg, 20 rounds) with a few overrides:

- plain DP-SGD: training.modelmix.tau and privacy.coordinate_clip_p off;
- ModelMix, general bound: the spec as written (Zhu & Wang's subsampling bound, valid for any
  mechanism);
- ModelMix, tight bound: privacy.subsampling_bound=tight, the paper's own accounting, proven for
  the Gaussian only;
- with --shuffle, plain DP-SGD and ModelMix on shuffled batches (no subsampling, so no bound
  question, and no amplification either).

Protocol: hyper-parameters are chosen on seed 0 alone (held out, never reported), at the tuning
epsilon (1), by final test accuracy, and then used for every epsilon. Each private variant gets the
same budget of 9 trials: ModelMix searches the client learning rate in {0.1, 0.2, 0.5} times
tau / learning rate in {0.15, 1, 3}; plain DP-SGD, which has no tau, searches 9 learning rates
spanning the same range and beyond. The no-privacy reference searches the 3 learning rates. Then
only privacy.target_epsilon and the seed change. Every private run must report, from its own
ledger, an epsilon no larger than its target; the noise multiplier is the one the accountant
calibrated to that target. Results go to a markdown table, a JSON file with every run (tuning
trials included) and a PNG (accuracy against epsilon per variant, error bars = std over seeds).

    uv run python bench/modelmix_table.py [--seeds 1 2 3 4 5] [--epsilons 1 2 4] [--shuffle]
        [--quick] [--out bench/results]

The committed results are `--shuffle` with the defaults (128 runs, 45 min on 2 shared cores);
their reading was added with `--render --findings FILE`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tff_pipelines import runtime

runtime.silence_tensorflow()

from tff_pipelines.run import RunResult, run  # noqa: E402
from tff_pipelines.spec import load_spec  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "specs" / "digits_modelmix.yaml"
EPSILONS = (1.0, 2.0, 4.0)
DELTA = 1e-5
TUNING_SEED = 0
TUNING_EPSILON = 1.0
MIX_LEARNING_RATES = (0.1, 0.2, 0.5)
TAUS = (0.15, 1.0, 3.0)  # tau / client learning rate, the spec's unit
# Plain DP-SGD has no tau: its 9 trials go to a finer and wider learning-rate grid.
PLAIN_LEARNING_RATES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)
QUIET = ["output.export=false", "output.plots=false", "output.tensorboard=false"]
METRIC = "eval_accuracy"
NO_MIX = ("training.modelmix.tau=null", "privacy.coordinate_clip_p=null")


@dataclass(frozen=True)
class Variant:
    """One row of the table: how it differs from the spec and what its tuning searches."""

    key: str
    label: str
    overrides: tuple[str, ...]
    learning_rates: tuple[float, ...]
    taus: tuple[float | None, ...] = (None,)  # None: the variant has no tau to tune
    private: bool = True

    def trials(self) -> list[dict[str, float | None]]:
        return [
            {"learning_rate": lr, "tau": tau} for lr in self.learning_rates for tau in self.taus
        ]


PLAIN = Variant("dpsgd", "plain DP-SGD", NO_MIX, PLAIN_LEARNING_RATES)
GENERAL = Variant(
    "modelmix_general",
    "ModelMix, general bound (Zhu & Wang)",
    ("privacy.subsampling_bound=general",),
    MIX_LEARNING_RATES,
    TAUS,
)
TIGHT = Variant(
    "modelmix_tight",
    "ModelMix, tight bound (the paper's accounting, proven for the Gaussian only)",
    ("privacy.subsampling_bound=tight",),
    MIX_LEARNING_RATES,
    TAUS,
)
PLAIN_SHUFFLE = Variant(
    "dpsgd_shuffle",
    "plain DP-SGD, shuffled batches",
    (*NO_MIX, "training.batching=shuffle"),
    PLAIN_LEARNING_RATES,
)
MIX_SHUFFLE = Variant(
    "modelmix_shuffle",
    "ModelMix, shuffled batches (no subsampling bound)",
    ("training.batching=shuffle",),
    MIX_LEARNING_RATES,
    TAUS,
)
NO_PRIVACY = Variant(
    "none",
    "no privacy (reference)",
    (*NO_MIX, "privacy.mechanism=none", "privacy.target_epsilon=null"),
    MIX_LEARNING_RATES,
    private=False,
)

PROTOCOL = (
    "Hyper-parameters chosen on seed 0 alone (held out, never reported), at ε 1, by final test "
    "accuracy, then used for every ε. Each private variant gets the same budget of 9 trials: "
    f"ModelMix searches the client learning rate in {list(MIX_LEARNING_RATES)} × τ/η in "
    f"{list(TAUS)}; plain DP-SGD, which has no τ, searches 9 learning rates "
    f"{list(PLAIN_LEARNING_RATES)}; the no-privacy reference searches the 3 learning rates. "
    "Everything else is specs/digits_modelmix.yaml as committed (4 clients, 20 rounds, Poisson "
    "batches of expected size 32, clip 1, coordinate clamp p = 25 for ModelMix, server-side mix "
    "on). Only privacy.target_epsilon and the seed change between reported runs; each private "
    "run's ledger must report ε ≤ its target at δ 1e-5"
)


def setting_overrides(variant: Variant, setting: dict[str, float | None]) -> list[str]:
    overrides = [
        *variant.overrides,
        f"training.client_optimizer.learning_rate={setting['learning_rate']!r}",
    ]
    if setting["tau"] is not None:
        overrides.append(f"training.modelmix.tau={setting['tau']!r}")
    return overrides


def train(overrides: list[str]) -> tuple[RunResult, dict]:
    """One run in a temporary directory: its result and its privacy.json."""
    with tempfile.TemporaryDirectory() as out:
        spec = load_spec(SPEC, [*overrides, *QUIET])
        result = run(spec, out, progress=False, log=lambda m: None)
        privacy = json.loads((Path(out) / "privacy.json").read_text())
    return result, privacy


def measure(
    variant: Variant, setting: dict[str, float | None], epsilon: float | None, seed: int
) -> dict:
    """One run, checked against its target: the record the JSON keeps."""
    privacy_overrides = (
        [f"privacy.target_epsilon={epsilon!r}", f"privacy.delta={DELTA!r}"]
        if variant.private
        else []
    )
    overrides = [
        *setting_overrides(variant, setting),
        *privacy_overrides,
        f"seed={seed}",
        "evaluation.every=0",
    ]
    result, privacy = train(overrides)
    reported = privacy["epsilon"]
    if not variant.private:
        if privacy["private"]:
            raise RuntimeError(f"{variant.key} seed {seed}: the no-privacy run is private")
    elif not (reported <= epsilon and privacy["delta"] == DELTA):
        raise RuntimeError(
            f"{variant.key} seed {seed}: the ledger reports (ε {reported}, δ "
            f"{privacy['delta']}), over the target (ε {epsilon}, δ {DELTA})"
        )
    noise = privacy.get("noise") or {}
    return {
        "variant": variant.key,
        "seed": seed,
        "learning_rate": setting["learning_rate"],
        "tau": setting["tau"],
        "epsilon_target": epsilon,
        "epsilon_reported": reported,
        "delta": privacy["delta"],
        "noise_multiplier": noise.get("noise_multiplier"),
        "accuracy": result.final_metrics[METRIC],
        "rounds": result.rounds,
        "seconds": result.seconds,
    }


def tune(variant: Variant, log: list[dict]) -> dict[str, float | None]:
    """The trial with the best seed-0 accuracy at the tuning epsilon (first wins ties)."""
    epsilon = TUNING_EPSILON if variant.private else None
    trials = []
    for setting in variant.trials():
        trials.append(measure(variant, setting, epsilon, TUNING_SEED))
        print(json.dumps({"phase": "tuning", **trials[-1]}), flush=True)
    log.extend(trials)
    best = max(trials, key=lambda t: t["accuracy"])
    return {"learning_rate": best["learning_rate"], "tau": best["tau"]}


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def runs_of(results: list[dict], key: str, epsilon: float | None) -> list[dict]:
    return [r for r in results if r["variant"] == key and r["epsilon_target"] == epsilon]


def label(key: str, variants: dict[str, dict]) -> str:
    return variants[key]["label"]


def accuracy_table(saved: dict) -> str:
    variants, results, epsilons = saved["variants"], saved["results"], saved["epsilons"]
    header = "| variant | chosen (η, τ/η) | " + " | ".join(
        f"ε {e:g}: accuracy | ε {e:g}: σ | ε {e:g}: ε reported (max)" for e in epsilons
    )
    lines = [header + " |", "|---|---|" + "---|---|---|" * len(epsilons)]
    for key, variant in variants.items():
        chosen = variant["chosen"]
        tau = "—" if chosen["tau"] is None else f"{chosen['tau']:g}"
        cells = [variant["label"], f"{chosen['learning_rate']:g}, {tau}"]
        for epsilon in epsilons:
            runs = runs_of(results, key, epsilon if variant["private"] else None)
            mean, std = mean_std([r["accuracy"] for r in runs])
            cells.append(f"{100 * mean:.1f}% ± {100 * std:.1f} ({len(runs)})")
            if variant["private"]:
                sigmas = sorted({round(r["noise_multiplier"], 4) for r in runs})
                cells.append(" / ".join(f"{s:.4g}" for s in sigmas))
                cells.append(f"{max(r['epsilon_reported'] for r in runs):.4f}")
            else:
                cells.extend(["—", "—"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# Each ModelMix variant against the plain DP-SGD run on the same batching.
BASELINES = {
    GENERAL.key: PLAIN.key,
    TIGHT.key: PLAIN.key,
    MIX_SHUFFLE.key: PLAIN_SHUFFLE.key,
}


def paired_table(saved: dict) -> str:
    """ModelMix minus its plain DP-SGD, seed by seed (the seed fixes the data and the split)."""
    variants, results, epsilons = saved["variants"], saved["results"], saved["epsilons"]
    lines = [
        "| ModelMix variant − plain DP-SGD (same batching) | "
        + " | ".join(f"ε {e:g}: per seed | ε {e:g}: mean (worse in)" for e in epsilons)
        + " |",
        "|---|" + "---|---|" * len(epsilons),
    ]
    for key, baseline in BASELINES.items():
        if key not in variants or baseline not in variants:
            continue
        cells = [f"{variants[key]['label']} − {variants[baseline]['label']}"]
        for epsilon in epsilons:
            base = {r["seed"]: r["accuracy"] for r in runs_of(results, baseline, epsilon)}
            ours = {r["seed"]: r["accuracy"] for r in runs_of(results, key, epsilon)}
            diffs = [100 * (ours[s] - base[s]) for s in sorted(base) if s in ours]
            cells.append(", ".join(f"{d:+.1f}" for d in diffs))
            worse = sum(d < 0 for d in diffs)
            cells.append(f"{statistics.fmean(diffs):+.1f} ({worse}/{len(diffs)} seeds)")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tuning_table(saved: dict) -> str:
    lines = [
        "| variant | η | τ/η | σ at ε 1 | seed-0 accuracy | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for trial in saved["tuning"]:
        variant = saved["variants"][trial["variant"]]
        chosen = variant["chosen"]
        mark = (
            " **(chosen)**"
            if (trial["learning_rate"], trial["tau"])
            == (
                chosen["learning_rate"],
                chosen["tau"],
            )
            else ""
        )
        sigma = trial["noise_multiplier"]
        lines.append(
            f"| {variant['label']} | {trial['learning_rate']:g} | "
            f"{'—' if trial['tau'] is None else format(trial['tau'], 'g')} | "
            f"{'—' if sigma is None else format(sigma, '.4g')} | "
            f"{100 * trial['accuracy']:.1f}%{mark} | {trial['seconds']:.1f} |"
        )
    return "\n".join(lines)


def timing_line(saved: dict) -> str:
    every = [*saved["tuning"], *saved["results"]]
    parts = []
    for key, variant in saved["variants"].items():
        seconds = [r["seconds"] for r in every if r["variant"] == key]
        parts.append(f"{variant['label']} {statistics.median(seconds):.1f} s")
    return (
        f"{len(every)} runs in {saved['wall_seconds'] / 60:.1f} min, one after another in one "
        "process on 2 cores shared with other work (load average 2 to 10, so times are noisy); "
        "median seconds per run (compile, 20 rounds, final evaluation): " + "; ".join(parts) + "."
    )


def plot(saved: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epsilons = saved["epsilons"]
    figure, axis = plt.subplots(figsize=(6.5, 5.2))
    for key, variant in saved["variants"].items():
        if not variant["private"]:
            mean, _ = mean_std([r["accuracy"] for r in runs_of(saved["results"], key, None)])
            axis.axhline(100 * mean, color="grey", linestyle=":", label=variant["label"])
            continue
        stats = [
            mean_std([r["accuracy"] for r in runs_of(saved["results"], key, e)]) for e in epsilons
        ]
        axis.errorbar(
            epsilons,
            [100 * m for m, _ in stats],
            yerr=[100 * s for _, s in stats],
            marker="o",
            capsize=3,
            label=variant["label"],
        )
    axis.set_xscale("log", base=2)
    axis.set_xticks(epsilons, [f"{e:g}" for e in epsilons])
    axis.set_xlabel("ε (δ = 1e-5)")
    axis.set_ylabel("digits test accuracy (%)")
    axis.set_title("ModelMix vs plain DP-SGD at equal ε (mean ± std over seeds)", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")


def report(saved: dict, findings: str) -> str:
    seeds = ", ".join(str(s) for s in saved["seeds"])
    return "\n".join(
        [
            "# ModelMix vs plain DP-SGD at equal ε (digits)",
            "",
            "specs/digits_modelmix.yaml: 4 clients each run example-level DP-SGD on "
            "Poisson-sampled batches, FedAvg, 20 rounds, δ = 1e-5. σ is the noise multiplier the "
            "accountant calibrated to the target ε (per-step Gaussian noise σ · clip on the "
            "batch's gradient sum). ModelMix's accountant charges each step the lower of its "
            "Theorem 4.1 and the plain subsampled Gaussian; the general bound (Zhu & Wang) holds "
            "for any mechanism, the tight one is the paper's and is proven for the Gaussian only.",
            "",
            f"{saved['protocol']}. The table reports seeds {seeds} "
            "(accuracy: mean ± std (n seeds)).",
            "",
            accuracy_table(saved),
            "",
            "Accuracy difference to plain DP-SGD on the same seed and batching, in percentage "
            "points:",
            "",
            paired_table(saved),
            "",
            findings,
            "",
            "## Seed-0 tuning trials (ε 1)",
            "",
            tuning_table(saved),
            "",
            "## Time",
            "",
            timing_line(saved),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--epsilons", type=float, nargs="+", default=list(EPSILONS))
    parser.add_argument("--shuffle", action="store_true", help="add the shuffled-batch variants")
    parser.add_argument("--quick", action="store_true", help="one seed, ε 1, one trial each")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .md and .png from the .json"
    )
    parser.add_argument(
        "--findings",
        type=Path,
        help="with --render: a markdown file with the reading of the numbers, kept in the .json",
    )
    args = parser.parse_args()
    if args.render:
        render(args.out, args.findings)
        return
    variants = [PLAIN, GENERAL, TIGHT, NO_PRIVACY]
    if args.shuffle:
        variants += [PLAIN_SHUFFLE, MIX_SHUFFLE]
    seeds = args.seeds[:1] if args.quick else args.seeds
    epsilons = [TUNING_EPSILON] if args.quick else sorted(args.epsilons)
    started = time.monotonic()
    saved: dict = {
        "protocol": PROTOCOL,
        "spec": "specs/digits_modelmix.yaml",
        "delta": DELTA,
        "seeds": seeds,
        "epsilons": epsilons,
        "variants": {},
        "tuning": [],
        "results": [],
        "wall_seconds": 0.0,
        "findings": "",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with runtime.session():
        for variant in variants:
            tuning: list[dict] = []
            chosen = variant.trials()[0] if args.quick else tune(variant, tuning)
            results = []
            for epsilon in epsilons if variant.private else [None]:
                for seed in seeds:
                    results.append(measure(variant, chosen, epsilon, seed))
                    print(json.dumps({"phase": "reported", **results[-1]}), flush=True)
            # Saved variant by variant, so an interrupted benchmark keeps what it finished.
            saved["variants"][variant.key] = {
                "label": variant.label,
                "overrides": list(variant.overrides),
                "private": variant.private,
                "chosen": chosen,
            }
            saved["tuning"] += tuning
            saved["results"] += results
            saved["wall_seconds"] = time.monotonic() - started
            write_json(saved, args.out / "modelmix_table.json")
    render(args.out)


def write_json(saved: dict, path: Path) -> None:
    path.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")


def render(out: Path, findings: Path | None = None) -> None:
    """The markdown and the PNG from the JSON a run wrote (no training); the JSON's `findings`
    (the reading of the numbers, written by a person after a run) goes under the table."""
    path = out / "modelmix_table.json"
    saved = json.loads(path.read_text())
    if findings is not None:
        saved["findings"] = findings.read_text().strip()
        write_json(saved, path)
    markdown = report(saved, saved.get("findings", ""))
    (out / "modelmix_table.md").write_text(markdown + "\n")
    plot(saved, out / "modelmix_table.png")
    print(markdown)


if __name__ == "__main__":
    main()
