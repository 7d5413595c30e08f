"""Seconds per round on the reference workload, every variant measured in one process.

Workload (tff-stack.md): MNIST-5k, MLP 784-128-10, 100 clients, 10 per round, 1 local epoch,
batch 20. Variants: (a) a hand-written plain TFF FedAvg loop, (b) our pipeline with
`mechanism: none`, (c) our pipeline with `gaussian`, (d) centralized Keras on the same examples.
Distributed DP, Poisson-sampled cohorts (rate 0.1) and 16 bits: (e) `none`, (f) `smm`, (g) `ddg`,
(h) `skellam`; f/e, g/e and h/e are what the secure-sum mechanisms cost. SecAgg+ computing the
sum of (f) for real: (i) no dropout, (j) 10% of each cohort dropping (max_dropout 0.3); i/f is
what the masking protocol adds.
The variants are interleaved over several passes (these machines are noisy) and the median round
is reported. A pipeline round is timed end to end (sampling, training, accounting, metrics,
TensorBoard, checkpoint); the plain loop around data preparation and `next`. Both shuffle client
data in NumPy, so the ratio measures what the framework adds, not a different input pipeline.

    uv run python bench/round_time.py [--rounds 25] [--passes 3] [--only fij] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from tff_pipelines import runtime

runtime.silence_tensorflow()

import numpy as np  # noqa: E402

from tff_pipelines.data import build_federated_data, load_source  # noqa: E402
from tff_pipelines.run import run  # noqa: E402
from tff_pipelines.spec import parse_spec  # noqa: E402

CLIENTS, COHORT, BATCH, LR = 100, 10, 20, 0.1
WARMUP = 2  # first rounds include tracing and worker start-up


DISTRIBUTED = {
    "smm": {"target_epsilon": 8.0, "bits": 16},
    "ddg": {"noise_multiplier": 1.0, "bits": 16},
    "skellam": {"noise_multiplier": 1.0, "bits": 16},
}


SECAGG = {
    "i": {"protocol": "secagg"},
    "j": {"protocol": "secagg", "dropout_rate": 0.1, "max_dropout": 0.3},
}


def reference_spec(
    mechanism: str, rounds: int, sampling: str = "fixed", secure_aggregation: dict | None = None
) -> dict:
    privacy = {"mechanism": mechanism}
    if mechanism == "gaussian":
        privacy.update(clip=1.0, noise_multiplier=1.0)
    privacy.update(DISTRIBUTED.get(mechanism, {}))
    return {
        "name": f"bench_{mechanism}",
        "seed": 0,
        "data": {"source": "mnist5k", "clients": CLIENTS},
        "model": {"type": "mlp", "hidden": [128]},
        "training": {
            "rounds": rounds,
            "clients_per_round": COHORT,
            "sampling": sampling,
            "batch_size": BATCH,
            "client_optimizer": {"name": "sgd", "learning_rate": LR},
        },
        "privacy": privacy,
        "evaluation": {"every": 0},
        "output": {"export": False, "plots": False},
        "secure_aggregation": secure_aggregation or {},
    }


def pipeline_round_seconds(
    mechanism: str, rounds: int, sampling: str = "fixed", secure_aggregation: dict | None = None
) -> tuple[list[float], int]:
    spec = parse_spec(reference_spec(mechanism, rounds, sampling, secure_aggregation))
    stamps: list[float] = []
    examples: list[int] = []

    def on_round(record):
        stamps.append(time.perf_counter())
        examples.append(record["train_num_examples"])

    with tempfile.TemporaryDirectory() as out:
        run(spec, out, progress=False, log=lambda m: None, on_round=on_round)
    # Round k's time: from the end of round k-1 to the end of round k. The last round also
    # evaluates, so it is left out.
    times = np.diff(stamps)[WARMUP - 1 : -1].tolist()
    return times, int(np.median(examples))


def plain_tff_round_seconds(rounds: int) -> tuple[list[float], int]:
    """The loop a TFF user writes by hand, on the same clients."""
    import collections

    import tensorflow as tf
    import tensorflow_federated as tff

    data = build_federated_data(load_source("mnist5k", seed=0), clients=CLIENTS, seed=0)
    spec = collections.OrderedDict(
        x=tf.TensorSpec([None, 784], tf.float32), y=tf.TensorSpec([None], tf.int32)
    )

    def model_fn():
        model = tf.keras.Sequential(
            [
                tf.keras.layers.InputLayer(input_shape=(784,)),
                tf.keras.layers.Dense(128, activation="relu"),
                tf.keras.layers.Dense(10),
            ]
        )
        return tff.learning.models.from_keras_model(
            model,
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            input_spec=spec,
            metrics=[tf.keras.metrics.SparseCategoricalAccuracy()],
        )

    process = tff.learning.algorithms.build_weighted_fed_avg(
        model_fn,
        client_optimizer_fn=tff.learning.optimizers.build_sgdm(LR),
        server_optimizer_fn=tff.learning.optimizers.build_sgdm(1.0),
    )
    state = process.initialize()
    rng = np.random.default_rng(0)
    times, examples = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        cohort = rng.choice(CLIENTS, COHORT, replace=False)
        datasets = []
        for c in cohort:
            x, y = data.clients[c]
            order = rng.permutation(len(x))  # shuffled like the pipeline does, outside the graph
            datasets.append(
                tf.data.Dataset.from_tensor_slices(
                    collections.OrderedDict(x=x[order], y=y[order])
                ).batch(BATCH)
            )
        output = process.next(state, datasets)
        state = output.state
        times.append(time.perf_counter() - start)
        examples.append(int(output.metrics["client_work"]["train"]["num_examples"]))
    return times[WARMUP:], int(np.median(examples))


def centralized_examples_per_second(epochs: int = 3) -> float:
    import tensorflow as tf

    data = build_federated_data(load_source("mnist5k", seed=0), clients=CLIENTS, seed=0)
    x = np.concatenate([c[0] for c in data.clients])
    y = np.concatenate([c[1] for c in data.clients])
    model = tf.keras.Sequential(
        [
            tf.keras.layers.InputLayer(input_shape=(784,)),
            tf.keras.layers.Dense(128, activation="relu"),
            tf.keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.SGD(LR),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # warm-up: tracing
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0)
    return epochs * len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--only", help="measure only these variants (letters), print them")
    args = parser.parse_args()

    variants = {
        "a": lambda: plain_tff_round_seconds(args.rounds),
        "b": lambda: pipeline_round_seconds("none", args.rounds),
        "c": lambda: pipeline_round_seconds("gaussian", args.rounds),
        "e": lambda: pipeline_round_seconds("none", args.rounds, "poisson"),
        "f": lambda: pipeline_round_seconds("smm", args.rounds, "poisson"),
        "g": lambda: pipeline_round_seconds("ddg", args.rounds, "poisson"),
        "h": lambda: pipeline_round_seconds("skellam", args.rounds, "poisson"),
        "i": lambda: pipeline_round_seconds("smm", args.rounds, "poisson", SECAGG["i"]),
        "j": lambda: pipeline_round_seconds("smm", args.rounds, "poisson", SECAGG["j"]),
    }
    if args.only:
        variants = {key: variants[key] for key in args.only}
    samples: dict[str, list[float]] = {key: [] for key in variants}
    examples: dict[str, int] = {}
    with runtime.session():
        for _ in range(args.passes):
            for key, measure in variants.items():
                times, per_round = measure()
                samples[key] += times
                examples[key] = per_round
    if args.only:
        for key, times in samples.items():
            print(f"{key}: median {statistics.median(times):.3f} s over {len(times)} rounds")
        return
    central = centralized_examples_per_second()
    median = {k: statistics.median(v) for k, v in samples.items()}
    result = {
        "workload": "mnist5k, MLP 784-128-10, 100 clients, 10 per round, 1 epoch, batch 20",
        "machine": f"{platform.processor() or platform.machine()}, {len(samples['a'])} rounds "
        f"per variant over {args.passes} interleaved passes",
        "seconds_per_round": {
            "a_plain_tff": median["a"],
            "b_pipeline_none": median["b"],
            "c_pipeline_gaussian": median["c"],
            "e_pipeline_none_poisson": median["e"],
            "f_pipeline_smm_16bits": median["f"],
            "g_pipeline_ddg_16bits": median["g"],
            "h_pipeline_skellam_16bits": median["h"],
            "i_pipeline_smm_secagg": median["i"],
            "j_pipeline_smm_secagg_10pct_dropout": median["j"],
        },
        "examples_per_second": {
            "b_pipeline_none": examples["b"] / median["b"],
            "d_centralized_keras": central,
        },
        "ratios": {
            "b/a": median["b"] / median["a"],
            "c/a": median["c"] / median["a"],
            "b/d examples per second": examples["b"] / median["b"] / central,
            "f/e": median["f"] / median["e"],
            "g/e": median["g"] / median["e"],
            "h/e": median["h"] / median["e"],
            "i/f": median["i"] / median["f"],
            "j/f": median["j"] / median["f"],
        },
        "targets": {"b/a": 1.10, "c/a": 1.20, "f/e": 1.2, "g/e": 1.2, "h/e": 1.2, "i/f": 1.5},
    }
    print("| variant | s/round | examples/s |")
    print("|---|---|---|")
    print(f"| (a) plain TFF FedAvg loop | {median['a']:.3f} | {examples['a'] / median['a']:,.0f} |")
    print(
        f"| (b) pipeline, mechanism none | {median['b']:.3f} | {examples['b'] / median['b']:,.0f} |"
    )
    print(f"| (c) pipeline, gaussian | {median['c']:.3f} | {examples['c'] / median['c']:,.0f} |")
    print(f"| (d) centralized Keras | — | {central:,.0f} |")
    for key, label in (
        ("e", "(e) pipeline, none, Poisson cohorts"),
        ("f", "(f) pipeline, smm 16 bits"),
        ("g", "(g) pipeline, ddg 16 bits"),
        ("h", "(h) pipeline, skellam 16 bits"),
        ("i", "(i) pipeline, smm 16 bits, SecAgg+"),
        ("j", "(j) pipeline, smm 16 bits, SecAgg+, 10% dropout"),
    ):
        print(f"| {label} | {median[key]:.3f} | {examples[key] / median[key]:,.0f} |")
    ratios = result["ratios"]
    print(
        f"\nb/a = {ratios['b/a']:.3f} (target ≤ 1.10), c/a = {ratios['c/a']:.3f} "
        f"(target ≤ 1.20), b/d examples/s = {ratios['b/d examples per second']:.3f}"
    )
    print(
        f"f/e (smm) = {ratios['f/e']:.3f}, g/e (ddg) = {ratios['g/e']:.3f}, "
        f"h/e (skellam) = {ratios['h/e']:.3f} (target ≤ 1.2)"
    )
    print(
        f"i/f (SecAgg+) = {ratios['i/f']:.3f} (target ≤ 1.5), "
        f"j/f (SecAgg+, 10% dropout) = {ratios['j/f']:.3f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
