"""Spec → TFF learning process: model, algorithm, optimizers and the aggregation chain."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from mechanisms.factory import PrivateMeanFactory
from tff_pipelines.models import ModelShape, build_model, loss_and_metrics
from tff_pipelines.privacy import PrivacyPlan
from tff_pipelines.secure_round import LearningComponents, SecureAggregationProcess

_OPTIMIZER_BUILDERS = {
    "sgd": tff.learning.optimizers.build_sgdm,
    "adam": tff.learning.optimizers.build_adam,
    "adagrad": tff.learning.optimizers.build_adagrad,
    "rmsprop": tff.learning.optimizers.build_rmsprop,
    "yogi": tff.learning.optimizers.build_yogi,
    "adamw": tff.learning.optimizers.build_adamw,
}


@dataclass(frozen=True)
class CompiledSpec:
    """What a spec compiles to: the learning process and how to rebuild its Keras model."""

    process: tff.learning.templates.LearningProcess | SecureAggregationProcess
    shape: ModelShape
    keras_model: Callable[[], tf.keras.Model]
    weighting: str
    aggregation: list[str]


def input_spec(shape: ModelShape) -> collections.OrderedDict:
    """Batches as the client datasets yield them: flat float32 features, int or float labels."""
    if shape.task == "regression":
        label = tf.TensorSpec([None, 1], tf.float32)
    else:
        label = tf.TensorSpec([None], tf.int32)
    return collections.OrderedDict(x=tf.TensorSpec([None, shape.input_dim], tf.float32), y=label)


def build_optimizer(optimizer_spec) -> tff.learning.optimizers.Optimizer:
    return _OPTIMIZER_BUILDERS[optimizer_spec.name](**optimizer_spec.kwargs())


def compile_spec(spec, shape: ModelShape, plan: PrivacyPlan) -> CompiledSpec:
    def keras_model() -> tf.keras.Model:
        return build_model(spec.model, shape)

    loss, metrics = loss_and_metrics(shape)
    batch_spec = input_spec(shape)

    def model_fn() -> tff.learning.models.VariableModel:
        return tff.learning.models.from_keras_model(
            keras_model(),
            loss=loss,
            input_spec=batch_spec,
            metrics=[metric() for metric in metrics],
        )

    training = spec.training
    weighting = spec.weighting
    if training.algorithm == "dssgd":
        process = _dssgd_process(spec, model_fn, plan)
        return CompiledSpec(process, shape, keras_model, weighting, _dssgd_steps(spec, plan))
    server_optimizer = build_optimizer(training.server_optimizer)
    if plan.example_level:
        user_level, steps = None, ["mean of client updates (every client weighs 1)"]
        if plan.user_level is not None:
            user_level, steps = _aggregator(
                plan.user_level, training.clients_per_round, spec.seed, "uniform"
            )
        client_work = _dpsgd_client_work(model_fn, loss, plan.mechanism, spec.seed)
        finalizer = _modelmix_finalizer(spec, model_fn, server_optimizer)
        process = _dpsgd_process(model_fn, server_optimizer, client_work, user_level, finalizer)
        if plan.user_level is not None and plan.user_level.secagg is not None:
            components = _components(model_fn, server_optimizer, client_work, finalizer)
            process = _with_secagg(process, components, user_level, plan.user_level, spec)
        steps = [*plan.mechanism.steps(), *steps]
        return CompiledSpec(process, shape, keras_model, weighting, steps)
    aggregator, aggregation = _aggregator(plan, training.clients_per_round, spec.seed, weighting)
    if training.algorithm == "fedavg":
        client_optimizer = build_optimizer(training.client_optimizer)
        if weighting == "examples":
            process = tff.learning.algorithms.build_weighted_fed_avg(
                model_fn,
                client_optimizer_fn=client_optimizer,
                server_optimizer_fn=server_optimizer,
                model_aggregator=aggregator,
            )
        else:
            process = tff.learning.algorithms.build_unweighted_fed_avg(
                model_fn,
                client_optimizer_fn=client_optimizer,
                server_optimizer_fn=server_optimizer,
                model_aggregator=aggregator,
            )
    elif training.algorithm == "fedsgd":
        # FedSGD takes weighted factories only; ours ignore the weights, as DP requires.
        weighted = aggregator
        if isinstance(aggregator, tff.aggregators.UnweightedAggregationFactory):
            weighted = tff.aggregators.as_weighted_aggregator(aggregator)
        process = tff.learning.algorithms.build_fed_sgd(
            model_fn, server_optimizer_fn=server_optimizer, model_aggregator=weighted
        )
    else:
        raise ValueError(f"unknown training.algorithm {training.algorithm!r}")
    if plan.secagg is not None:
        components = _components(model_fn, server_optimizer, _client_work(training, model_fn))
        process = _with_secagg(process, components, aggregator, plan, spec)
    return CompiledSpec(process, shape, keras_model, weighting, aggregation)


def _dssgd_process(spec, model_fn, plan: PrivacyPlan):
    """Distributed Selective SGD: participants keep local models; the process holds them."""
    from tff_pipelines.selective_sgd import SelectiveSgdProcess, SelectiveSgdSettings

    training, dssgd = spec.training, spec.training.dssgd
    settings = SelectiveSgdSettings(
        upload_fraction=dssgd.upload_fraction,
        download_fraction=dssgd.download_fraction,
        download=dssgd.download,
        selection=dssgd.selection,
        threshold=dssgd.threshold,
        bound=math.inf if dssgd.bound is None else dssgd.bound,
        learning_rate=training.client_optimizer.learning_rate,
        local_epochs=training.local_epochs,
        svt_epsilon=plan.mechanism.epsilon if plan.private else None,
        seed=spec.seed,
    )
    return SelectiveSgdProcess(model_fn, settings, num_clients=spec.data.clients)


def _dssgd_steps(spec, plan: PrivacyPlan) -> list[str]:
    dssgd = spec.training.dssgd
    download = (
        f"client: download {dssgd.download_fraction:g} of the global parameters "
        f"({dssgd.download.replace('_', ' ')}) into its local model, train "
        f"{spec.training.local_epochs} epoch(s) of SGD"
    )
    if plan.private:
        return [download, *plan.mechanism.steps()]
    bound = "" if dssgd.bound is None else f", each truncated to ±{dssgd.bound:g}"
    selection = dssgd.selection.replace("_", " ")
    return [
        download,
        f"client: upload at most {dssgd.upload_fraction:g} of the update's coordinates "
        f"({selection}){bound}; no DP",
        "server: adds the uploads to the global model",
    ]


def _with_secagg(process, components, aggregator, plan: PrivacyPlan, spec):
    """`process` with each round's sum computed by SecAgg+ between two TFF computations."""
    return SecureAggregationProcess(
        process,
        components,
        aggregator.create_split(
            process.get_model_weights.type_signature.result.trainable,
            secure_bits=plan.mechanism.bits,
        ),
        settings=plan.secagg,
        expected_clients=spec.training.clients_per_round,
        bits=plan.mechanism.bits,
        seed=spec.seed,
    )


def _dpsgd_client_work(model_fn, loss, mechanism, seed: int):
    """Every client trains with DP-SGD (example-level DP)."""
    from mechanisms.dpsgd import build_dpsgd_client_work

    return build_dpsgd_client_work(
        model_fn,
        per_example_loss=loss.call,
        learning_rate=mechanism.learning_rate,
        l2_clip=mechanism.clip,
        noise_multiplier=mechanism.noise_multiplier,
        batch_size=mechanism.batch_size,
        seed=seed,
        modelmix=mechanism.modelmix,
    )


def _modelmix_finalizer(spec, model_fn, server_optimizer):
    """With training.modelmix.server, the server steps from a random mix of the last two global
    models; its gap is τ in units of one client step through the server optimizer."""
    modelmix = spec.training.modelmix
    if modelmix.tau is None or not modelmix.server:
        return None
    from mechanisms.modelmix import build_modelmix_finalizer

    training = spec.training
    tau = (
        modelmix.tau
        * training.client_optimizer.learning_rate
        * training.server_optimizer.learning_rate
    )
    weights_type = tff.learning.models.weights_type_from_model(model_fn)
    return build_modelmix_finalizer(server_optimizer, weights_type, tau=tau, seed=spec.seed)


def _dpsgd_process(model_fn, server_optimizer, client_work, user_level=None, finalizer=None):
    """FedAvg whose clients run `client_work` (DP-SGD) and whose server takes the plain mean of
    their model deltas, or releases it with `user_level` (a PrivateMeanFactory adding
    client-level DP on top); `finalizer` replaces the server optimizer's (ModelMix)."""
    parts = _components(model_fn, server_optimizer, client_work, finalizer)

    @tff.tensorflow.computation
    def initial_weights():
        return tff.learning.models.ModelWeights.from_model(model_fn())

    factory = (
        tff.aggregators.MeanFactory()
        if user_level is None
        else tff.aggregators.as_weighted_aggregator(user_level)  # every weight is 1 anyway
    )
    return tff.learning.templates.compose_learning_process(
        initial_weights,
        parts.distributor,
        client_work,
        factory.create(initial_weights.type_signature.result.trainable, tff.TensorType(np.float32)),
        parts.finalizer,
    )


def _client_work(training, model_fn):
    """The client work tff.learning's builders make for this algorithm, with uniform client
    weighting (which DP requires)."""
    if training.algorithm == "fedavg":
        return tff.learning.templates.build_model_delta_client_work(
            model_fn,
            build_optimizer(training.client_optimizer),
            client_weighting=tff.learning.ClientWeighting.UNIFORM,
        )
    # TFF exposes FedSGD's client work only inside build_fed_sgd (TFF 0.87 is pinned).
    from tensorflow_federated.python.learning.algorithms import fed_sgd

    return fed_sgd._build_fed_sgd_client_work(model_fn, tff.learning.metrics.sum_then_finalize)


def _components(model_fn, server_optimizer, client_work, finalizer=None) -> LearningComponents:
    """Broadcast, `client_work` and the server optimizer's finalizer (or `finalizer`, e.g.
    ModelMix's), as tff.learning composes them."""
    weights_type = tff.learning.models.weights_type_from_model(model_fn)
    if finalizer is None:
        finalizer = tff.learning.templates.build_apply_optimizer_finalizer(
            server_optimizer, weights_type
        )
    return LearningComponents(
        distributor=tff.learning.templates.build_broadcast_process(weights_type),
        client_work=client_work,
        finalizer=finalizer,
    )


def _aggregator(plan: PrivacyPlan, cohort: int, seed: int, weighting: str):
    """The model-update aggregation factory and a one-line-per-step description of it."""
    if plan.private:
        mechanism = plan.mechanism
        client = [step for step in mechanism.steps() if step.startswith("client")]
        server = [step for step in mechanism.steps() if step.startswith("server")]
        total = "federated sum"
        if plan.secagg is not None:
            total = "SecAgg+ modular secure sum"
        elif plan.distributed:
            total = "modular secure sum (simulated: computed in the clear)"
        steps = [
            "count the cohort and tell the clients its size",
            "client: flatten the update",
            *client,
            f"{total} of the client vectors",
            *server,
            f"server: divide by the expected cohort ({cohort}), unflatten",
        ]
        return PrivateMeanFactory(mechanism, expected_clients=cohort, seed=seed), steps
    if weighting == "uniform":
        return tff.aggregators.UnweightedMeanFactory(), ["unweighted mean of client updates"]
    return None, ["mean of client updates weighted by examples (TFF default)"]
