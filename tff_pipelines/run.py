"""The run loop: sample a cohort, run one TFF round, account, record, checkpoint; repeat.

Order within a round matters for `--resume`: the privacy ledger is charged for the round before
anything derived from it is written, metrics are appended, then the checkpoint is replaced. A
crash loses at most the round in flight; on resume, metrics past the checkpoint are dropped and
the round is redone with the same cohort, data order and noise.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mechanisms.example_level import poisson_steps
from mechanisms.schedules import ValidationSchedule
from tff_pipelines import checkpoint, runtime
from tff_pipelines.averaging import ModelAverage, suffix_start
from tff_pipelines.data import (
    ClientSampler,
    FederatedData,
    Standardizer,
    build_federated_data,
    load_source,
)
from tff_pipelines.errors import RunError
from tff_pipelines.evaluate import Evaluator
from tff_pipelines.export import write_model_card
from tff_pipelines.models import ModelShape
from tff_pipelines.privacy import PrivacyPlan, needs_dimension, plan_privacy
from tff_pipelines.spec import Spec, dump_resolved, load_spec

METRICS = "metrics.jsonl"
PRIVACY = "privacy.json"
RESOLVED_SPEC = "spec.resolved.yaml"
SAVED_MODEL = "saved_model"


@dataclass
class RunResult:
    run_dir: Path
    rounds: int
    planned_rounds: int
    final_metrics: dict[str, Any]
    privacy: dict[str, Any]
    stopped_by_budget: bool
    saved_model: Path | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def run_directory(spec: Spec, out: str | os.PathLike | None) -> Path:
    return Path(out) if out is not None else Path(spec.output.dir)


def prepare_data(spec: Spec) -> FederatedData:
    d = spec.data
    dataset = load_source(
        d.source,
        path=d.path,
        features=d.features,
        label=d.label,
        client_key=d.client_key,
        task=d.task,
        examples=d.examples,
        dim=d.dim,
        classes=d.classes,
        seed=spec.seed,
    )
    return build_federated_data(
        dataset,
        clients=d.clients,
        partition=d.partition,
        dirichlet_alpha=d.dirichlet_alpha,
        shards_per_client=d.shards_per_client,
        test_fraction=d.test_fraction,
        standardize=d.standardize,
        standardize_target=d.standardize_target,
        seed=spec.seed,
    )


def model_shape(data: FederatedData) -> ModelShape:
    return ModelShape(
        input_dim=int(data.input_dim),
        num_classes=int(data.num_classes),
        image_shape=tuple(data.image_shape) if data.image_shape else None,
    )


def plan_for_data(spec: Spec, data: FederatedData, source: str = "<spec>") -> PrivacyPlan:
    """The privacy plan of `spec` trained on `data`: what `tffp run` accounts with."""
    return plan_privacy(
        spec,
        dimension=privacy_dimension(spec, model_shape(data)),
        client_sizes=[len(x) for x, _ in data.clients],
        source=source,
    )


def privacy_dimension(spec: Spec, shape: ModelShape) -> int | None:
    """The model dimension, for mechanisms that need it (building a Keras model needs TF)."""
    if not needs_dimension(spec):
        return None
    from tff_pipelines.models import trainable_dimension

    return trainable_dimension(spec.model, shape)


class ClientDatasets:
    """Per-round tf.data datasets, each local epoch batched on its own.

    shuffle: the client's examples in a fresh order, cut into batches (no batch spans two epochs,
    so an example is in one batch per epoch, as DP-SGD's per-epoch accounting assumes).
    poisson: ceil(n / B) batches per epoch, each holding every example independently with
    probability B / n; sizes vary and a batch may be empty. The batches are slices of one array
    (no Python generator), so TFF can serialise the dataset; the slicing function costs ~25 ms of
    tracing per client and round, so shuffled data keeps tf.data's own batching.

    Everything derives from (seed, round, client) alone, so a resumed round sees the same batches.
    """

    def __init__(self, data: FederatedData, shape: ModelShape, spec: Spec):
        import tensorflow as tf

        self._tf = tf
        self._clients = data.clients
        self._regression = shape.task == "regression"
        self._epochs = spec.training.local_epochs
        self._batch = spec.training.batch_size
        self._poisson = spec.training.batching == "poisson"
        self._seed = spec.seed

    def for_round(self, round_num: int, client_ids: np.ndarray) -> list:
        return [self._dataset(round_num, int(c)) for c in client_ids]

    def _dataset(self, round_num: int, client: int):
        x, y = self._clients[client]
        rng = np.random.default_rng([self._seed, round_num, client])
        if self._poisson:
            return self._poisson_batches(rng, x, y)
        epochs = None
        for _ in range(self._epochs):
            order = rng.permutation(len(x))
            epoch = self._tf.data.Dataset.from_tensor_slices(self._examples(x, y, order))
            epoch = epoch.batch(self._batch)
            epochs = epoch if epochs is None else epochs.concatenate(epoch)
        return epochs

    def _poisson_batches(self, rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
        n = len(x)
        steps, rate = poisson_steps(n, self._batch) * self._epochs, min(1.0, self._batch / n)
        batches = [np.flatnonzero(rng.random(n) < rate) for _ in range(steps)]
        sizes = np.array([len(batch) for batch in batches], np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        order = np.concatenate(batches).astype(np.int64)
        tf = self._tf
        examples = {k: tf.constant(v) for k, v in self._examples(x, y, order).items()}
        return tf.data.Dataset.from_tensor_slices((starts, sizes)).map(
            lambda start, size: {k: v[start : start + size] for k, v in examples.items()}
        )

    def _examples(self, x: np.ndarray, y: np.ndarray, order: np.ndarray) -> dict[str, np.ndarray]:
        labels = y[order].astype(np.float32).reshape(-1, 1) if self._regression else y[order]
        return {"x": x[order].astype(np.float32, copy=False), "y": labels}


def _flatten_metrics(prefix: str, tree: Any, out: dict[str, Any]) -> None:
    if isinstance(tree, dict):
        for k, v in tree.items():
            _flatten_metrics(f"{prefix}_{k}" if prefix else k, v, out)
        return
    value = np.asarray(tree)
    if value.ndim == 0:
        item = value.item()
        # An empty Poisson cohort averages nothing: NaN, which JSON cannot carry.
        out[prefix] = None if isinstance(item, float) and not math.isfinite(item) else item


def round_record(
    round_num: int,
    cohort: int,
    tff_metrics,
    eval_metrics,
    epsilon,
    seconds,
    target: Standardizer | None = None,
):
    record: dict[str, Any] = {"round": round_num, "clients": cohort}
    train: dict[str, Any] = {}
    _flatten_metrics("train", dict(tff_metrics["client_work"]["train"]), train)
    record.update(train if target is None else _in_target_units(train, float(target.scale)))
    aggregator = dict(tff_metrics.get("aggregator", {}))
    aggregator.pop("clients", None)  # same as "clients" above
    _flatten_metrics("agg", aggregator, record)
    if eval_metrics is not None:
        _flatten_metrics("eval", eval_metrics, record)
    record["epsilon"] = epsilon
    record["round_seconds"] = round(seconds, 4)
    return record


# How a regression metric scales when the target is multiplied by s (losses are the MSE).
_TARGET_UNIT_POWER = {"loss": 2, "mean_squared_error": 2, "mean_absolute_error": 1}


def _in_target_units(train: dict[str, Any], scale: float) -> dict[str, Any]:
    """Training metrics on standardised targets, stated in the target's units like the test
    metrics (an MSE on z-scores times scale² is exactly the MSE in the original units)."""
    out = dict(train)
    for name, value in train.items():
        power = _TARGET_UNIT_POWER.get(name.removeprefix("train_"))
        if power is not None and value is not None:
            out[name] = value * scale**power
    return out


def _json_number(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def _read_metrics(path: Path, up_to_round: int) -> list[dict[str, Any]]:
    """Records of the checkpointed rounds; a line torn by a kill is past them, so skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record["round"] <= up_to_round:
            records.append(record)
    return records


class RoundLog:
    """Where each round's record goes: a line of metrics.jsonl and TensorBoard scalars."""

    def __init__(self, run_dir: Path, kept: list[dict[str, Any]], tensorboard: bool):
        import tensorflow as tf

        self._tf = tf
        self._path = run_dir / METRICS
        # Rewritten, not appended to: a resumed run drops records past its checkpoint.
        self._path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._writer = (
            tf.summary.create_file_writer(str(run_dir / "tensorboard")) if tensorboard else None
        )

    def write(self, record: dict[str, Any]) -> None:
        with open(self._path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            with self._writer.as_default(step=record["round"]):
                for key, value in record.items():
                    if key != "round" and isinstance(value, int | float):
                        self._tf.summary.scalar(key.replace("_", "/", 1), value)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_dotted(value, path + "."))
        else:
            flat[path] = value
    return flat


def _check_resume_spec(spec: Spec, run_dir: Path) -> Spec:
    """On resume the run's own resolved spec rules; a changed spec is an error, not a surprise.

    The seed and output directory may differ (seed: null draws anew; --out moves the run).
    """
    stored = load_spec(run_dir / RESOLVED_SPEC)
    given, kept = _dotted(spec.to_dict()), _dotted(stored.to_dict())
    ignored = {"seed", "output.dir"}
    keys = (given.keys() | kept.keys()) - ignored
    changed = sorted(k for k in keys if given.get(k) != kept.get(k))
    if changed:
        raise RunError(
            f"{run_dir}: the spec differs from the one this run started with "
            f"({', '.join(changed)}); resume with the original spec or start a new --out"
        )
    return stored


def run(
    spec: Spec,
    out: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    source: str = "<spec>",
) -> RunResult:
    """Trains as the spec says, writing metrics, privacy report, checkpoints and the model.

    `on_round` is called with each round's record once the round is fully done (checkpointed).
    `source` names the spec file in errors.
    """
    started = time.monotonic()
    log = log or (lambda message: print(message, file=sys.stderr))
    run_dir = run_directory(spec, out)
    if resume:
        if not checkpoint.exists(run_dir):
            raise RunError(f"{run_dir}: nothing to resume (no {checkpoint.FILENAME})")
        spec = _check_resume_spec(spec, run_dir)
    elif checkpoint.exists(run_dir):
        done = checkpoint.load(run_dir).round
        raise RunError(
            f"{run_dir} already holds a run ({done} rounds done); use --resume to continue it "
            "or --out for a new directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        dump_resolved(spec, run_dir / RESOLVED_SPEC)

    data = prepare_data(spec)
    shape = model_shape(data)
    plan = plan_for_data(spec, data, source)
    if plan.example_level:
        _check_batches_fit_clients(spec, data, source)
    write_model_card(run_dir, shape, data.standardizer, data.target_standardizer)

    with runtime.session():
        training = _Training(spec, plan, data, shape, run_dir, log)
        done = training.resume() if resume else 0
        stopped_by_budget = training.loop(done, progress, on_round)
        return training.finish(stopped_by_budget, time.monotonic() - started)


def _check_batches_fit_clients(spec: Spec, data: FederatedData, source: str) -> None:
    """DP-SGD divides every batch's noisy sum by the nominal batch size: a client with fewer
    examples than that would train on mostly noise, so the spec is refused before training."""
    from tff_pipelines.spec.errors import Problem, SpecError

    smallest = min(len(x) for x, _ in data.clients)
    batch = spec.training.batch_size
    if batch > smallest:
        message = (
            f"is larger than the smallest client's data ({smallest} examples); DP-SGD divides "
            "each batch by the batch size, so use at most that many"
        )
        raise SpecError(
            [Problem(file=source, path="training.batch_size", value=batch, message=message)]
        )


def _write_round(round_log: RoundLog, record, run_dir: Path, snapshot: tuple | None) -> None:
    round_log.write(record)
    if snapshot is not None:
        checkpoint.save(run_dir, *snapshot)


class _Training:
    """One run's moving parts: the compiled process and its state, sampler, ledger, history."""

    def __init__(self, spec: Spec, plan: PrivacyPlan, data, shape, run_dir: Path, log):
        import tensorflow as tf
        import tensorflow_federated as tff

        from tff_pipelines.compile import compile_spec

        self.spec, self.plan, self.data, self.shape = spec, plan, data, shape
        self.run_dir, self.log = run_dir, log
        compiled = compile_spec(spec, shape, plan)
        self.process = compiled.process
        tf.keras.utils.set_random_seed(spec.seed)
        initial = tff.learning.models.ModelWeights.from_model(compiled.keras_model())
        self.state = self.process.set_model_weights(self.process.initialize(), initial)
        self.evaluator = Evaluator(
            compiled.keras_model(), shape, data.test, target=data.target_standardizer
        )
        self.sampler = ClientSampler(
            population=len(data.clients),
            clients_per_round=spec.training.clients_per_round,
            kind=spec.training.sampling,
            seed=spec.seed,
        )
        self._fetched: tuple[Any, Any] | None = None  # (state, its global model): global_weights
        averaging = spec.training.averaging
        self.average = None
        if averaging.suffix is not None:
            start = suffix_start(spec.training.rounds, averaging.suffix)
            self.average = ModelAverage(start, averaging.decay)
        self.ledger = plan.new_ledger()
        # dpsgd with privacy.user_level: the client-level guarantee, on a ledger of its own.
        self.user_ledger = plan.user_level.new_ledger() if plan.user_level is not None else None
        self.history: list[dict[str, Any]] = []

    def resume(self) -> int:
        """Restores the last checkpoint; returns the number of rounds it holds."""
        saved = checkpoint.load(self.run_dir)
        self.state = saved.restore_state(self.state)
        self.sampler.set_state(saved.meta["sampler"])
        self.ledger = type(self.ledger).from_dict(saved.meta["ledger"])
        if self.average is not None:
            self.average.restore(saved.meta["averaging"], saved.trainable)
        if self.user_ledger is not None:
            self.user_ledger = type(self.user_ledger).from_dict(saved.meta["user_ledger"])
        self.history = _read_metrics(self.run_dir / METRICS, saved.round)
        self.log(f"resuming {self.run_dir} after round {saved.round}")
        return saved.round

    def loop(self, done: int, progress, on_round) -> bool:
        """Runs rounds done+1.. until the last or the budget; True if the budget stopped it."""
        from tff_pipelines import report
        from tff_pipelines.secure_round import RoundRefused

        spec, plan = self.spec, self.plan
        rounds, every = spec.training.rounds, spec.evaluation.every
        # Every round costs the same unless a schedule moves the noise (or DSSGD charges only
        # some rounds): state it once.
        unscheduled = None if plan.varies_by_round else plan.round_privacy()
        user_event = plan.user_level.round_privacy() if plan.user_level is not None else None
        datasets = ClientDatasets(self.data, self.shape, spec)
        round_log = RoundLog(self.run_dir, self.history, spec.output.tensorboard)
        bar = report.progress_bar(spec, total=rounds, initial=done, enabled=progress)
        # Files are written on one background thread while the next round trains (training runs
        # in the TFF worker process; this thread only waits on it). Everything written is
        # snapshotted here first, and each write waits for the previous one: same order, and
        # its errors surface.
        io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tffp-io")
        written: Future | None = None
        last_saved = done
        stopped_by_budget = False
        try:
            for round_num in range(done + 1, rounds + 1):
                validation = self._validation_accuracies()
                event = (
                    unscheduled
                    if unscheduled is not None
                    else plan.round_privacy(round_num, validation)
                )
                if self._over_budget(event):
                    self.log(
                        f"stopping before round {round_num}: it would take epsilon from "
                        f"{self.ledger.epsilon:.4g} past privacy.max_epsilon = "
                        f"{plan.max_epsilon:g}"
                    )
                    stopped_by_budget = True
                    break
                round_started = time.perf_counter()
                sigma = self._schedule_noise(round_num, validation)
                cohort = self.sampler.sample()
                try:
                    round_data = datasets.for_round(round_num, cohort)
                    if getattr(self.process, "takes_client_ids", False):  # keeps local models
                        output = self.process.next(self.state, round_data, cohort)
                    else:
                        output = self.process.next(self.state, round_data)
                except RoundRefused as refused:
                    self.log(
                        f"round {round_num} refused by secure aggregation, model unchanged: "
                        f"{refused}"
                    )
                    output = refused.output
                self.state = output.state
                if self.average is not None and self.average.takes(round_num):
                    self.average.update(round_num, self.global_weights().trainable)
                if plan.private:
                    self.ledger.record(event)
                if self.user_ledger is not None:
                    self.user_ledger.record(user_event)
                evaluated = None
                if (every and round_num % every == 0) or round_num == rounds:
                    evaluated = self.evaluator(self.published_weights())
                record = round_record(
                    round_num,
                    len(cohort),
                    output.metrics,
                    evaluated,
                    _json_number(self.ledger.epsilon) if plan.private else None,
                    time.perf_counter() - round_started,
                    target=self.data.target_standardizer,
                )
                if sigma is not None:
                    record["noise_multiplier"] = sigma
                if self.average is not None:
                    record["averaged_models"] = self.average.count
                if self.user_ledger is not None:
                    record["user_epsilon"] = _json_number(self.user_ledger.epsilon)
                self.history.append(record)
                snapshot = None
                if round_num % spec.runtime.checkpoint_every == 0 or round_num == rounds:
                    snapshot = self.snapshot(round_num)
                    last_saved = round_num
                if written is not None:
                    written.result()
                written = io.submit(_write_round, round_log, record, self.run_dir, snapshot)
                bar.update(record)
                if on_round is not None:
                    on_round(record)
        finally:
            bar.close()
            io.shutdown(wait=True)
            round_log.close()
        if written is not None:
            written.result()
        # Not in `finally`: after an interruption the state may be a round ahead of the history.
        if self.completed != last_saved:
            checkpoint.save(self.run_dir, *self.snapshot(self.completed))
        return stopped_by_budget

    def _validation_accuracies(self) -> list[float]:
        """Evaluation accuracy after each round so far (what a validation-based schedule reads;
        the rules make it evaluate every round)."""
        if not isinstance(self.plan.schedule, ValidationSchedule):
            return []
        accuracies = [record.get("eval_accuracy") for record in self.history]
        if any(a is None for a in accuracies):
            raise RunError(
                "a validation_based noise schedule needs the evaluation accuracy of every round; "
                "this task reports none (use another schedule kind)"
            )
        return accuracies

    def _schedule_noise(self, round_num: int, validation: list[float]) -> float | None:
        """This round's scheduled noise multiplier, set in the clients' DP-SGD state."""
        from mechanisms.float32 import float32_at_least

        if self.plan.schedule is None:
            return None
        sigma = self.plan.noise_multiplier(round_num, validation)
        if not self.plan.example_level:
            return sigma  # the central Gaussian follows its table by the aggregator's round
        hparams = self.process.get_hparams(self.state)
        hparams["client_work"]["noise_multiplier"] = float32_at_least(sigma)
        self.state = self.process.set_hparams(self.state, hparams)
        return sigma

    def _over_budget(self, event) -> bool:
        """Would recording `event` take epsilon past privacy.max_epsilon?"""
        plan = self.plan
        if not plan.private or plan.max_epsilon is None:
            return False
        return self.ledger.epsilon_after(event) > plan.max_epsilon

    @property
    def completed(self) -> int:
        return self.history[-1]["round"] if self.history else 0

    def snapshot(self, round_num: int) -> tuple:
        """checkpoint.save's arguments, taken now: the sampler and ledger move on next round."""
        meta = {
            "sampler": self.sampler.get_state(),
            "ledger": self.ledger.to_dict(),
        }
        if self.user_ledger is not None:
            meta["user_ledger"] = self.user_ledger.to_dict()
        if self.average is not None:
            meta["averaging"] = self.average.to_dict()
        return round_num, self.state, self.published_weights(), meta

    def published_weights(self):
        """The model this run evaluates and exports: the last global model, or with
        training.averaging the average of the global models so far."""
        weights = self.global_weights()
        return weights if self.average is None else self.average.published(weights)

    def global_weights(self):
        """The current state's global model. Fetched from the learning process once per state:
        a round that averages, evaluates and checkpoints would otherwise copy it out three
        times."""
        if self._fetched is None or self._fetched[0] is not self.state:
            self._fetched = (self.state, self.process.get_model_weights(self.state))
        return self._fetched[1]

    def finish(self, stopped_by_budget: bool, seconds: float) -> RunResult:
        """privacy.json, the SavedModel and the plots, from the state the loop ended in."""
        from tff_pipelines import report
        from tff_pipelines.export import export_saved_model
        from tff_pipelines.secure_round import secure_sum_summary

        weights = self.published_weights()
        final_metrics = self.history[-1] if self.history else {}
        if self.history and "eval_loss" not in final_metrics:  # stopped early by the budget
            evaluated = self.evaluator(weights)
            final_metrics = {**final_metrics, **{f"eval_{k}": v for k, v in evaluated.items()}}
        plan = self.plan
        secagg = plan.secagg or (plan.user_level.secagg if plan.user_level is not None else None)
        privacy = plan.report(
            self.ledger if plan.private else None,
            rounds=self.completed,
            stopped_by_budget=stopped_by_budget,
            secure_sum=secure_sum_summary(self.history) if secagg is not None else None,
            noise_multipliers=[r["noise_multiplier"] for r in self.history]
            if plan.schedule is not None
            else None,
            user_ledger=self.user_ledger,
        )
        (self.run_dir / PRIVACY).write_text(json.dumps(privacy, indent=2) + "\n")
        saved_model = None
        if self.spec.output.export:
            weights.assign_weights_to(self.evaluator.model)
            saved_model = export_saved_model(
                self.evaluator.model,
                self.shape,
                self.run_dir / SAVED_MODEL,
                inputs=self.data.standardizer,
                target=self.data.target_standardizer,
            )
        result = RunResult(
            run_dir=self.run_dir,
            rounds=self.completed,
            planned_rounds=self.spec.training.rounds,
            final_metrics=final_metrics,
            privacy=privacy,
            stopped_by_budget=stopped_by_budget,
            saved_model=saved_model,
            seconds=seconds,
            history=self.history,
        )
        if self.spec.output.plots:
            report.write_plots(result)
        return result
