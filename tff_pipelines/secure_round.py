"""A learning round cut at its sum, with the SecAgg+ protocol in between.

No TFF runtime performs secure aggregation (its secure-sum intrinsics become plain sums in test
contexts). A secagg run therefore compiles each round into two TFF computations, everything up
to the clients' uploads and everything after their sum, and runs the protocol between them, as a
deployment's aggregation service would. State, types and model weights are those of the ordinary
learning process (its initialize and get/set_model_weights are used as they are), so checkpoints,
resume and export work unchanged.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow_federated as tff
import tree

from mechanisms.discretized import fewest_survivors
from mechanisms.factory import SplitAggregation
from secure_agg.errors import SecAggAbort
from secure_agg.parameters import SecAggSettings
from secure_agg.secagg import Dropouts, secure_sum

_DROPOUT_STREAM = 0x5EC  # the simulated dropouts and the neighbour graph draw from their own stream


@dataclass(frozen=True)
class LearningComponents:
    """The processes a tff.learning algorithm composes, kept apart so the round can be cut."""

    distributor: tff.templates.MeasuredProcess
    client_work: tff.templates.MeasuredProcess
    finalizer: tff.templates.MeasuredProcess


class RoundRefused(Exception):
    """Secure aggregation refused the round: nothing was released and the model is unchanged.
    `output` carries the state to continue from and the round's metrics."""

    def __init__(self, reason: str, output: tff.learning.templates.LearningProcessOutput):
        super().__init__(reason)
        self.output = output


class SecureAggregationProcess:
    """A learning process whose rounds sum the clients' uploads with SecAgg+.

    Duck-types `tff.learning.templates.LearningProcess` for the run loop: `initialize`,
    `next`, `get_model_weights`, `set_model_weights`; `upload` and `finish` are the two TFF
    computations of a round. `next` raises `RoundRefused` when the
    protocol cannot release the sum (too many dropouts for the noise or for the threshold).
    """

    def __init__(
        self,
        base: tff.learning.templates.LearningProcess,
        components: LearningComponents,
        aggregation: SplitAggregation,
        *,
        settings: SecAggSettings,
        expected_clients: int,
        bits: int,
        seed: int,
    ):
        self._settings = settings
        self._expected = expected_clients
        self._bits = bits
        self._seed = seed
        self.initialize = base.initialize
        self.get_model_weights = base.get_model_weights
        self.set_model_weights = base.set_model_weights
        self.get_hparams, self.set_hparams = base.get_hparams, base.set_hparams  # schedules
        self.upload, self.finish, self._skip = _cut_round(base, components, aggregation)
        _, total_type, summed_type, _, _ = self.finish.type_signature.parameter
        self._empty_total = np.zeros(total_type.member.shape, np.int64)
        self._zero_diagnostics = tree.map_structure(
            lambda t: np.zeros(t.shape, t.dtype),
            tff.structure.to_odict_or_tuple(summed_type.member),
        )

    def next(self, state, client_data) -> tff.learning.templates.LearningProcessOutput:
        uploads, diagnostics, held = self.upload(state, client_data)
        cohort = len(uploads)
        round_index = int(state.aggregator)  # the aggregator counts rounds, refused ones too
        settings = self._settings
        rng = np.random.default_rng([self._seed, round_index, _DROPOUT_STREAM])
        dropped = frozenset(np.flatnonzero(rng.random(cohort) < settings.dropout_rate))
        measured: dict[str, Any] = {"secagg_dropped": len(dropped)}
        try:
            if cohort == 0:  # nobody sampled: the empty sum carries no data
                total, uploaded = self._empty_total, ()
            else:
                result = secure_sum(
                    [np.asarray(u) for u in uploads],
                    bits=self._bits,
                    neighbours=settings.neighbours,
                    threshold=settings.threshold,
                    dropouts=Dropouts(before_upload=dropped),
                    min_survivors=fewest_survivors(cohort, settings.max_dropout),
                    graph_rng=rng,
                    expected_clients=self._expected if settings.neighbours is None else None,
                )
                total, uploaded = result.total.astype(np.int64), result.uploaded
                measured.update(_cost_metrics(result))
        except SecAggAbort as abort:
            measured["secagg_refused"] = 1
            output = self._refused(state, held, measured)
            raise RoundRefused(str(abort), output) from abort
        measured["secagg_refused"] = 0
        summed = _sum_of(diagnostics, uploaded, self._zero_diagnostics)
        new_state, metrics = self.finish(state, total, summed, np.int32(len(uploaded)), held)
        return tff.learning.templates.LearningProcessOutput(
            new_state, _with_aggregator_metrics(metrics, measured)
        )

    def _refused(self, state, held, measured):
        new_state = self._skip(state, held)
        metrics = collections.OrderedDict(
            client_work=held["client_work_measurements"],
            aggregator=collections.OrderedDict(clients=held["cohort"]),
        )
        return tff.learning.templates.LearningProcessOutput(
            new_state, _with_aggregator_metrics(metrics, measured)
        )


def _cut_round(
    base: tff.learning.templates.LearningProcess,
    components: LearningComponents,
    aggregation: SplitAggregation,
):
    """(upload, finish, skip): the round up to the clients' uploads, the round from their sum,
    and the state after a round whose sum was never released."""
    state_type, data_type = base.next.type_signature.parameter
    distributor, client_work, finalizer = (
        components.distributor,
        components.client_work,
        components.finalizer,
    )

    @tff.federated_computation(state_type, data_type)
    def upload(state, data):
        distributed = distributor.next(state.distributor, state.global_model_weights)
        work = client_work.next(state.client_work, distributed.result, data)
        uploads, diagnostics, cohort = aggregation.encode(state.aggregator, work.result.update)
        held = tff.federated_zip(
            collections.OrderedDict(
                cohort=cohort,
                distributor_state=distributed.state,
                distributor_measurements=distributed.measurements,
                client_work_state=work.state,
                client_work_measurements=work.measurements,
            )
        )
        return uploads, diagnostics, held

    held_type = upload.type_signature.result[2]
    total_type = tff.FederatedType(aggregation.total_type, tff.SERVER)
    summed_type = tff.FederatedType(aggregation.diagnostics_type, tff.SERVER)
    clients_type = tff.FederatedType(np.int32, tff.SERVER)

    @tff.federated_computation(state_type, total_type, summed_type, clients_type, held_type)
    def finish(state, total, summed, clients, held):
        aggregated = aggregation.decode(state.aggregator, total, summed, clients)
        finalized = finalizer.next(state.finalizer, state.global_model_weights, aggregated.result)
        new_state = tff.federated_zip(
            tff.learning.templates.LearningAlgorithmState(
                global_model_weights=finalized.result,
                distributor=held.distributor_state,
                client_work=held.client_work_state,
                aggregator=aggregated.state,
                finalizer=finalized.state,
            )
        )
        metrics = tff.federated_zip(
            collections.OrderedDict(
                distributor=held.distributor_measurements,
                client_work=held.client_work_measurements,
                aggregator=aggregated.measurements,
                finalizer=finalized.measurements,
            )
        )
        return new_state, metrics

    @tff.federated_computation(state_type, held_type)
    def skip(state, held):
        return tff.federated_zip(
            tff.learning.templates.LearningAlgorithmState(
                global_model_weights=state.global_model_weights,
                distributor=held.distributor_state,
                client_work=held.client_work_state,
                aggregator=tff.federated_map(aggregation.skip_round, state.aggregator),
                finalizer=state.finalizer,
            )
        )

    return upload, finish, skip


def _sum_of(per_client: list, chosen, zero):
    """The diagnostics of the clients whose uploads are in the sum, added up (in the clear: they
    are simulation diagnostics, not covered by epsilon)."""
    picked = [per_client[i] for i in chosen]
    if not picked:
        return zero
    return tree.map_structure(
        lambda *xs: np.sum(xs, axis=0, dtype=np.asarray(xs[0]).dtype), *picked
    )


def _cost_metrics(result) -> dict[str, float]:
    cost = result.cost
    return {
        "secagg_neighbours": result.neighbours,
        "secagg_threshold": result.threshold,
        "secagg_upload_bytes": cost.upload_bytes_mean,
        "secagg_download_bytes": cost.download_bytes_mean,
        "secagg_expansion": cost.expansion,
        "secagg_client_seconds": cost.client_seconds,
        "secagg_server_seconds": cost.server_seconds,
    }


def _with_aggregator_metrics(metrics, measured: dict[str, Any]) -> collections.OrderedDict:
    merged = collections.OrderedDict(metrics)
    merged["aggregator"] = collections.OrderedDict(
        {**dict(merged.get("aggregator", {})), **measured}
    )
    return merged


def secure_sum_summary(history: list[dict[str, Any]]) -> dict[str, Any]:
    """What the protocol saw over a run's rounds, for privacy.json."""
    dropped = sum(r.get("agg_secagg_dropped") or 0 for r in history)
    cohorts = sum(r.get("clients") or 0 for r in history)
    refused = [r["round"] for r in history if r.get("agg_secagg_refused")]
    return {
        "clients_dropped": dropped,
        "observed_dropout": dropped / cohorts if cohorts else 0.0,
        "rounds_refused": len(refused),
        "refused_rounds": refused,
    }
