"""A NumPy replica of specs/boston_dpsgd.yaml's training, for what one TFF run cannot show.

One federated DP-SGD run is one noise draw, and on Boston single runs at ε 0.5 vary by about 5
MSE. The replica trains the same way (the spec's data split, clipping, Poisson batches of each
client, noise multiplier from the same privacy plan, FedAvg and suffix averaging) hundreds of
times faster, so it can average many noise draws per seed: the expected test MSE of
the spec, which `pysyft_table.py`'s one draw per seed only estimates. It was also how the spec
was tuned, on held-out seeds.

    uv run python bench/boston_replica.py --seeds 1 2 3 4 5 15 16 17 18 19 --draws 40

Only the spec's own settings are replicated: a linear model (`model.type: logreg`, zero start),
one local epoch of plain SGD per round, full participation, server learning rate 1.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tff_pipelines import runtime

runtime.silence_tensorflow()

# bench/ is on the path when this script runs
from pysyft_table import least_squares_mse  # noqa: E402

from tff_pipelines.run import plan_for_data, prepare_data  # noqa: E402
from tff_pipelines.spec import Spec, load_spec  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "specs" / "boston_dpsgd.yaml"
DELTA = 1e-5


@dataclass(frozen=True)
class Replica:
    """The spec's training on one seed's data, ready to draw noise."""

    clients: list[tuple[np.ndarray, np.ndarray]]  # standardised features (+1 column if bias)
    test: tuple[np.ndarray, np.ndarray]  # the same features, targets in their own units
    target_mean: float
    target_scale: float
    noise_multiplier: float
    spec: Spec

    @classmethod
    def of(cls, spec: Spec) -> Replica:
        _check_replicable(spec)
        data = prepare_data(spec)
        sigma = 0.0
        if spec.privacy.mechanism != "none":
            sigma = float(plan_for_data(spec, data).mechanism.noise_multiplier)
        target = data.target_standardizer

        def features(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x, np.float64)
            return np.c_[x, np.ones(len(x))] if spec.model.bias else x

        return cls(
            clients=[(features(x), np.asarray(y, np.float64)) for x, y in data.clients],
            test=(features(data.test[0]), np.asarray(data.test[1], np.float64)),
            target_mean=float(target.mean) if target else 0.0,
            target_scale=float(target.scale) if target else 1.0,
            noise_multiplier=sigma,
            spec=spec,
        )

    def test_mse(self, draw: int) -> float:
        """Test MSE of the published model after a full run whose randomness is `draw`'s."""
        spec, rng = self.spec, np.random.default_rng(draw)
        batch, lr = spec.training.batch_size, spec.training.client_optimizer.learning_rate
        clip, rounds = spec.privacy.clip, spec.training.rounds
        suffix = spec.training.averaging.suffix
        first_averaged = rounds - max(1, round(rounds * suffix)) if suffix else rounds - 1
        weights = np.zeros(self.test[0].shape[1])
        average, averaged = np.zeros_like(weights), 0
        for round_num in range(rounds):
            local = [
                self._local_epoch(weights, x, y, batch, lr, clip, rng) for x, y in self.clients
            ]
            weights = np.mean(local, axis=0)
            if round_num >= first_averaged:
                averaged += 1
                average += (weights - average) / averaged
        x, y = self.test
        prediction = x @ average * self.target_scale + self.target_mean
        return float(np.mean((prediction - y) ** 2))

    def _local_epoch(self, weights, x, y, batch, lr, clip, rng) -> np.ndarray:
        weights = weights.copy()
        for _ in range(math.ceil(len(y) / batch)):
            taken = rng.random(len(y)) < batch / len(y)
            xb, yb = x[taken], y[taken]
            gradients = 2 * (xb @ weights - yb)[:, None] * xb  # of the squared error
            norms = np.linalg.norm(gradients, axis=1, keepdims=True)
            gradients *= np.minimum(1.0, clip / np.maximum(norms, 1e-12))
            noise = rng.normal(0.0, self.noise_multiplier * clip, weights.shape)
            weights -= lr * (gradients.sum(axis=0) + noise) / batch
        return weights


def _check_replicable(spec: Spec) -> None:
    training, model = spec.training, spec.model
    checks = {
        "model.type logreg": model.type == "logreg",
        "model.initializer zeros": model.initializer == "zeros",
        "privacy.mechanism dpsgd or none": spec.privacy.mechanism in ("dpsgd", "none"),
        "training.batching poisson": training.batching == "poisson",
        "training.local_epochs 1": training.local_epochs == 1,
        "every client every round": training.clients_per_round == spec.data.clients,
        "client optimizer plain sgd": training.client_optimizer.name == "sgd"
        and not training.client_optimizer.hyperparameters,
        "server sgd at learning rate 1": training.server_optimizer.name == "sgd"
        and training.server_optimizer.learning_rate == 1.0
        and not training.server_optimizer.hyperparameters,
        "averaging without decay": training.averaging.decay == 1.0,
        "a regression task": spec.data.standardize_target,
        "boston on 2 clients (the least-squares floor's split)": spec.data.source == "boston"
        and spec.data.clients == 2,
    }
    missing = [name for name, holds in checks.items() if not holds]
    if missing:
        raise SystemExit(f"the replica covers only: {', '.join(missing)}")


def _shown(path: Path) -> str:
    """The spec's path relative to the project when it lies inside it (results are committed)."""
    root = SPEC.parent.parent
    resolved = path.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 15, 16, 17, 18, 19])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--draws", type=int, default=40, help="noise draws per seed")
    parser.add_argument("--set", action="append", default=[], help="spec overrides, as tffp's")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    rows = []
    for epsilon in args.epsilons:
        per_seed, floors = [], []
        for seed in args.seeds:
            overrides = [f"seed={seed}", f"privacy.target_epsilon={epsilon!r}"]
            replica = Replica.of(
                load_spec(args.spec, [*args.set, *overrides, f"privacy.delta={DELTA}"])
            )
            draws = [replica.test_mse(1000 * seed + k) for k in range(args.draws)]
            per_seed.append(float(np.mean(draws)))
            floors.append(least_squares_mse(seed))
        rows.append(
            {
                "epsilon": epsilon,
                "expected_mse": float(np.mean(per_seed)),
                "least_squares_mse": float(np.mean(floors)),
                "per_seed": dict(zip(map(str, args.seeds), per_seed, strict=True)),
                "draws": args.draws,
            }
        )
        print(
            f"ε {epsilon:g}: expected test MSE {rows[-1]['expected_mse']:.2f} over {args.draws} "
            f"noise draws per seed (least squares {rows[-1]['least_squares_mse']:.2f})",
            flush=True,
        )
    if args.out:
        args.out.write_text(
            json.dumps({"spec": _shown(args.spec), "seeds": args.seeds, "rows": rows}, indent=2)
            + "\n"
        )


if __name__ == "__main__":
    main()
