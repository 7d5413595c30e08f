"""Distributed Selective SGD (Shokri & Shmatikov, CCS 2015) as a process the run loop drives.

Participants keep their own models across rounds and share only part of them: in its turn a
client downloads a fraction θ_d of the global parameters into its local model, trains locally,
and uploads at most c = floor(θ_u·|w|) coordinates of its change Δw, each truncated to [−γ, γ],
optionally through the sparse vector technique (`mechanisms.svt`, ε-DP per upload). The server
adds the uploads to the global model and counts how often each parameter was updated (the "most
updated" download reads those counts).

TFF clients are stateless, so the local models live in this process's state (flat float32, one
row per client) and a round passes its cohort's rows in as CLIENTS-placed values and takes the
trained rows back. Everything else of a round, download, training, selection, the server's sum,
is one TFF computation compiled once. The state is plain numpy (dicts of arrays), so the run
loop's checkpoint saves and restores it; randomness is stateless, keyed by (seed, round, client),
so a resumed run continues exactly as one that never stopped.

Privacy: only the SVT upload is private, ε per upload against any change of the client's whole
local dataset, whatever `local_epochs` (every Δw is truncated to [−γ, γ]). Downloads read only
the server's state, itself post-processing of released uploads. A client that takes T turns
spends T·ε (basic composition, valid adaptively; McSherry's critique of the paper's "ε per
parameter"), which the accountant must charge, not this module. The training metrics are
computed on private data and released in the clear, as in every other client work here.
"""

from __future__ import annotations

import collections
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from mechanisms.svt import SvtBudget, draw_noise, numeric_sparse

DownloadKind = Literal["most_updated", "random"]
SelectionKind = Literal["largest", "random_threshold"]

_SEED_MASK = (1 << 64) - 1
# Domain separation from the other mechanisms that key randomness on (seed, round).
_DSSGD_STREAM = int.from_bytes(b"dssgd", "big")


@dataclass(frozen=True)
class SelectiveSgdSettings:
    """One DSSGD configuration; the symbols are the paper's."""

    upload_fraction: float  # θ_u: at most floor(θ_u·|w|) coordinates uploaded (0 = standalone)
    download_fraction: float  # θ_d: floor(θ_d·|w|) global parameters downloaded per turn
    download: DownloadKind  # which ones: the most updated on the server, or random ones
    selection: SelectionKind  # no-DP selection: top |Δw_j|, or random among |Δw_j| > τ
    threshold: float  # τ: of random_threshold, and of the SVT
    bound: float  # γ: every uploaded value is truncated to [−γ, γ]; inf = no truncation (no DP)
    learning_rate: float  # plain SGD on the client
    local_epochs: int
    svt_epsilon: float | None  # ε of one SVT upload; None uploads without DP
    seed: int

    def __post_init__(self) -> None:
        for name in ("upload_fraction", "download_fraction"):
            value = getattr(self, name)
            if not _is_real(value) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.download not in ("most_updated", "random"):
            raise ValueError(f"download must be most_updated or random, got {self.download!r}")
        if self.selection not in ("largest", "random_threshold"):
            raise ValueError(
                f"selection must be largest or random_threshold, got {self.selection!r}"
            )
        if not _is_real(self.threshold) or not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be a finite number, got {self.threshold!r}")
        if not _is_real(self.learning_rate) or not 0 < self.learning_rate < math.inf:
            raise ValueError(
                f"learning_rate must be a finite number > 0, got {self.learning_rate!r}"
            )
        if not _is_real(self.bound) or not self.bound > 0:
            raise ValueError(f"bound must be > 0 (inf: no truncation), got {self.bound!r}")
        if self.svt_epsilon is not None and not math.isfinite(self.bound):
            raise ValueError("the sparse vector technique needs a finite bound (sensitivity 2γ)")
        if not _is_int(self.local_epochs) or self.local_epochs < 1:
            raise ValueError(f"local_epochs must be an integer >= 1, got {self.local_epochs!r}")
        if self.svt_epsilon is not None and (
            not _is_real(self.svt_epsilon)
            or not math.isfinite(self.svt_epsilon)
            or not self.svt_epsilon > 0
        ):
            raise ValueError(f"svt_epsilon must be None or > 0, got {self.svt_epsilon!r}")
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    def upload_count(self, size: int) -> int:
        """c = floor(θ_u·|w|), the most coordinates one client uploads per turn."""
        return math.floor(self.upload_fraction * size)

    def download_count(self, size: int) -> int:
        """floor(θ_d·|w|), the global parameters a client downloads per turn."""
        return math.floor(self.download_fraction * size)

    def svt_budget(self, size: int) -> SvtBudget | None:
        """The SVT's Laplace scales for models of `size` parameters; None without DP or when
        nothing is uploaded (c = 0 releases nothing)."""
        count = self.upload_count(size)
        if self.svt_epsilon is None or count == 0:
            return None
        return SvtBudget(epsilon=float(self.svt_epsilon), count=count, bound=float(self.bound))


class SelectiveSgdProcess:
    """DSSGD rounds over `num_clients` participants that each keep a local model.

    Duck-types `tff.learning.templates.LearningProcess` for the run loop (`initialize`, `next`,
    `get_model_weights`, `set_model_weights`), except that `next` also needs the ids of the
    round's clients: whose local models to train. All clients of a round download from the same
    global model; the server adds all their uploads.
    """

    takes_client_ids = True  # the run loop passes the cohort's ids to `next`

    @property
    def round_computation(self) -> tff.Computation:
        """The one TFF computation of a round (what `tffp inspect` shows)."""
        return self._round

    def __init__(
        self,
        model_fn: Callable[[], tff.learning.models.VariableModel],
        settings: SelectiveSgdSettings,
        num_clients: int,
    ):
        if not _is_int(num_clients) or num_clients < 1:
            raise ValueError(f"num_clients must be an integer >= 1, got {num_clients!r}")
        self._model_fn = model_fn
        self._settings = settings
        self._num_clients = int(num_clients)
        with tf.Graph().as_default():  # keep this model's variables out of the global graph
            model = model_fn()
            weights_type = tff.learning.models.weights_type_from_model(model)
            aggregate_metrics = tff.learning.metrics.sum_then_finalize(model.metric_finalizers())
            data_type = tff.SequenceType(tff.types.tensorflow_to_type(model.input_spec))
        self._layout = FlatLayout.of(weights_type.trainable)
        self._non_trainable_specs = [(tuple(t.shape), t.dtype) for t in weights_type.non_trainable]
        self._round = _build_round(
            model_fn,
            settings,
            self._layout,
            non_trainable_type=weights_type.non_trainable,
            data_type=data_type,
            aggregate_metrics=aggregate_metrics,
        )
        # The train metrics of a round without clients: NaN means, zero counts.
        self._no_train = _empty_like(self._round.type_signature.result[2].member)

    @property
    def settings(self) -> SelectiveSgdSettings:
        return self._settings

    @property
    def num_parameters(self) -> int:
        """|w|: trainable parameters, the length of every flat model and upload."""
        return self._layout.size

    def initialize(self) -> dict[str, Any]:
        """Global weights from `model_fn`'s initializers, zero update counts, every local model
        equal to the global one, round 0."""
        weights = tff.learning.models.ModelWeights.from_model(self._model_fn())
        return self._state(
            tf.nest.map_structure(lambda v: v.numpy(), weights),
            counts=np.zeros(self._layout.size, np.int64),
            round_num=0,
        )

    def next(
        self,
        state: dict[str, Any],
        client_data: Sequence[tf.data.Dataset],
        client_ids: Sequence[int],
    ) -> tff.learning.templates.LearningProcessOutput:
        """One round: every client in `client_ids` takes a turn on its dataset in parallel."""
        ids = [int(i) for i in client_ids]
        if len(ids) != len(client_data):
            raise ValueError(f"{len(client_data)} datasets for {len(ids)} client ids")
        if len(set(ids)) != len(ids):
            raise ValueError(f"a client takes at most one turn per round, got ids {ids}")
        if any(not 0 <= i < self._num_clients for i in ids):
            raise ValueError(f"client ids must be in [0, {self._num_clients}), got {ids}")
        round_num = int(state["round"])
        local = np.asarray(state["local_trainable"], np.float32)
        if not ids:  # TFF cannot run a round without clients; nothing changes but the round
            return tff.learning.templates.LearningProcessOutput(
                {**state, "round": np.int64(round_num + 1)}, self._metrics(self._no_train, 0, 0)
            )
        server, new_local, train = self._round(
            np.asarray(state["global_trainable"], np.float32),
            [np.asarray(w) for w in state["global_non_trainable"]],
            np.asarray(state["update_counts"], np.int64),
            [local[i] for i in ids],
            list(client_data),
            [self._client_seed(round_num, i) for i in ids],
        )
        local = local.copy()
        for i, row in zip(ids, new_local, strict=True):
            local[i] = row
        new_state = {
            "global_trainable": np.asarray(server["global_trainable"], np.float32),
            "global_non_trainable": [np.asarray(w) for w in state["global_non_trainable"]],
            "update_counts": np.asarray(server["update_counts"], np.int64),
            "local_trainable": local,
            "round": np.int64(round_num + 1),
        }
        metrics = self._metrics(_to_python(train), int(server["uploaded"]), len(ids))
        return tff.learning.templates.LearningProcessOutput(new_state, metrics)

    def _metrics(self, train, uploaded: int, clients: int) -> collections.OrderedDict:
        offered = clients * self._layout.size
        return collections.OrderedDict(
            client_work=collections.OrderedDict(train=train),
            aggregator=collections.OrderedDict(
                uploaded=uploaded,
                upload_fraction_realised=uploaded / offered if offered else 0.0,
            ),
        )

    def get_model_weights(self, state: dict[str, Any]) -> tff.learning.models.ModelWeights:
        """The global model."""
        return tff.learning.models.ModelWeights(
            self._layout.unflatten(np.asarray(state["global_trainable"])),
            [np.asarray(w) for w in state["global_non_trainable"]],
        )

    def set_model_weights(
        self, state: dict[str, Any], weights: tff.learning.models.ModelWeights
    ) -> dict[str, Any]:
        """The global model AND every local model set to `weights`; counts and round kept."""
        return self._state(weights, counts=state["update_counts"], round_num=int(state["round"]))

    def _state(self, weights, *, counts, round_num: int) -> dict[str, Any]:
        flat = self._layout.flatten(weights.trainable)
        non_trainable = [
            np.asarray(w, d).reshape(s)
            for w, (s, d) in zip(weights.non_trainable, self._non_trainable_specs, strict=True)
        ]
        return {
            "global_trainable": flat,
            "global_non_trainable": non_trainable,
            "update_counts": np.array(counts, np.int64),
            "local_trainable": np.tile(flat, (self._num_clients, 1)),
            "round": np.int64(round_num),
        }

    def local_model_weights(
        self, state: dict[str, Any], client: int
    ) -> tff.learning.models.ModelWeights:
        """Client `client`'s own model (its non-trainable weights are the global model's)."""
        if not 0 <= int(client) < self._num_clients:
            raise ValueError(f"client must be in [0, {self._num_clients}), got {client}")
        return tff.learning.models.ModelWeights(
            self._layout.unflatten(np.asarray(state["local_trainable"])[int(client)]),
            [np.asarray(w) for w in state["global_non_trainable"]],
        )

    def _client_seed(self, round_num: int, client: int) -> np.ndarray:
        """int64[2] for tf.random.stateless_*: (seed, round, client) hashed by SeedSequence."""
        entropy = [int(self._settings.seed) & _SEED_MASK, round_num, client, _DSSGD_STREAM]
        words = np.random.SeedSequence(entropy).generate_state(2, np.uint64)
        return words.view(np.int64)


@dataclass(frozen=True)
class FlatLayout:
    """How a model's trainable tensors map to one flat float32 vector (in variable order)."""

    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, tensor_types) -> FlatLayout:
        shapes = []
        for t in tensor_types:
            if t.dtype != np.float32:
                raise ValueError(f"DSSGD needs float32 trainable weights, got {t.dtype}")
            if t.shape is None or None in tuple(t.shape):
                raise ValueError(f"trainable weights need static shapes, got {t.shape}")
            shapes.append(tuple(int(d) for d in t.shape))
        return cls(tuple(shapes))

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def flatten(self, tensors: Sequence[Any]) -> np.ndarray:
        arrays = [np.asarray(t, np.float32) for t in tensors]
        if [a.shape for a in arrays] != list(self.shapes):
            raise ValueError(f"weights of shapes {[a.shape for a in arrays]}, want {self.shapes}")
        return np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, np.float32)

    def unflatten(self, flat: np.ndarray) -> list[np.ndarray]:
        pieces = np.split(np.asarray(flat, np.float32), np.cumsum(self.sizes)[:-1])
        return [p.reshape(s).copy() for p, s in zip(pieces, self.shapes, strict=True)]

    def flatten_tensors(self, tensors: Sequence[tf.Tensor]) -> tf.Tensor:
        return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)

    def unflatten_tensor(self, flat: tf.Tensor) -> list[tf.Tensor]:
        pieces = tf.split(flat, self.sizes)
        return [tf.reshape(p, s) for p, s in zip(pieces, self.shapes, strict=True)]


# --- One client's turn, in TensorFlow -------------------------------------------------------


def download_mask(
    counts: tf.Tensor, *, count: int, kind: DownloadKind, seed: tf.Tensor
) -> tf.Tensor:
    """Which `count` global parameters a client downloads (bool [n]): the ones the server
    updated most often, ties broken by a random order drawn from `seed`, or random ones."""
    size = counts.shape[0]
    if count == 0:
        return tf.zeros([size], tf.bool)
    if count >= size:
        return tf.ones([size], tf.bool)
    # A random permutation: priority[j] is parameter j's place in a random order.
    priority = tf.random.experimental.stateless_shuffle(tf.range(size, dtype=tf.int64), seed)
    if kind == "most_updated":
        key = tf.cast(counts, tf.int64) * size + priority  # counts first, the order breaks ties
    elif kind == "random":
        key = priority
    else:
        raise ValueError(f"unknown download kind {kind!r}")
    chosen = tf.math.top_k(key, k=count, sorted=False).indices
    return _mask_of(chosen, size)


def select_upload(
    update: tf.Tensor,
    *,
    settings: SelectiveSgdSettings,
    budget: SvtBudget | None,
    seed: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """(values, selected): the dense upload of the flat Δw (0 where not selected) and its mask.

    Without DP the update's non-finite coordinates count as unchanged, and a coordinate that
    did not change is never uploaded (it would only raise its count)."""
    size = update.shape[0]
    count = settings.upload_count(size)
    if count == 0:
        return tf.zeros_like(update), tf.zeros([size], tf.bool)
    if settings.svt_epsilon is not None:
        noise = draw_noise(size, budget, seed)
        svt = numeric_sparse(update, threshold=settings.threshold, budget=budget, noise=noise)
        return svt.values, svt.selected
    finite = tf.where(tf.math.is_finite(update), update, tf.zeros_like(update))
    magnitude = tf.abs(finite)
    if settings.selection == "largest":
        chosen = tf.math.top_k(magnitude, k=count, sorted=False).indices
        selected = _mask_of(chosen, size) & (magnitude > 0)
    else:  # random_threshold: random priorities, −1 for those at or below τ
        above = magnitude > tf.cast(settings.threshold, update.dtype)
        priority = tf.random.stateless_uniform([size], seed, dtype=tf.float32)
        priority = tf.where(above, priority, -tf.ones_like(priority))
        chosen = tf.math.top_k(priority, k=count, sorted=False).indices
        selected = _mask_of(chosen, size) & above
    bound = tf.cast(settings.bound, update.dtype)
    values = tf.where(selected, tf.clip_by_value(finite, -bound, bound), tf.zeros_like(update))
    return values, selected


def local_sgd(
    model: tff.learning.models.VariableModel,
    data: tf.data.Dataset,
    *,
    learning_rate: float,
    epochs: int,
) -> tf.Tensor:
    """`epochs` passes of plain SGD over `data` from the model's current weights; the model's
    metrics see every batch. Returns the number of examples trained on (int64)."""
    variables = model.trainable_variables
    rate = tf.constant(learning_rate, tf.float32)

    def step(examples, batch):
        with tf.GradientTape() as tape:
            output = model.forward_pass(batch, training=True)
        gradients = tape.gradient(
            output.loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        for variable, gradient in zip(variables, gradients, strict=True):
            variable.assign_sub(rate * gradient)
        return examples + tf.cast(output.num_examples, tf.int64)

    return data.repeat(epochs).reduce(tf.constant(0, tf.int64), step)


def _mask_of(indices: tf.Tensor, size: int) -> tf.Tensor:
    return tf.scatter_nd(indices[:, None], tf.ones_like(indices, tf.bool), [size])


# --- The round as TFF computations ----------------------------------------------------------


def _build_round(
    model_fn: Callable[[], tff.learning.models.VariableModel],
    settings: SelectiveSgdSettings,
    layout: FlatLayout,
    *,
    non_trainable_type,
    data_type,
    aggregate_metrics,
):
    size = layout.size
    download_count = settings.download_count(size)
    budget = settings.svt_budget(size)
    flat_type = tff.TensorType(np.float32, [size])
    counts_type = tff.TensorType(np.int64, [size])
    seed_type = tff.TensorType(np.int64, [2])

    @tff.tensorflow.computation(
        flat_type, non_trainable_type, counts_type, flat_type, data_type, seed_type
    )
    def client_turn(global_flat, non_trainable, counts, local_flat, data, seed):
        model = model_fn()

        @tf.function
        def turn(global_flat, non_trainable, counts, local_flat, data, seed):
            download_seed, upload_seed = tf.unstack(tf.random.experimental.stateless_split(seed))
            taken = download_mask(
                counts, count=download_count, kind=settings.download, seed=download_seed
            )
            before = tf.where(taken, global_flat, local_flat)
            for variable, value in zip(
                model.trainable_variables, layout.unflatten_tensor(before), strict=True
            ):
                variable.assign(value)
            for variable, value in zip(
                model.non_trainable_variables, tf.nest.flatten(non_trainable), strict=True
            ):
                variable.assign(value)
            local_sgd(
                model, data, learning_rate=settings.learning_rate, epochs=settings.local_epochs
            )
            after = layout.flatten_tensors([tf.identity(v) for v in model.trainable_variables])
            values, selected = select_upload(
                after - before, settings=settings, budget=budget, seed=upload_seed
            )
            return (
                values,
                tf.cast(selected, tf.int32),
                after,
                model.report_local_unfinalized_metrics(),
            )

        return turn(global_flat, non_trainable, counts, local_flat, data, seed)

    values_type, mask_type = client_turn.type_signature.result[:2]

    @tff.tensorflow.computation(flat_type, counts_type, values_type, mask_type)
    def server_update(global_flat, counts, summed_values, summed_masks):
        return collections.OrderedDict(
            global_trainable=global_flat + summed_values,
            update_counts=counts + tf.cast(summed_masks, tf.int64),
            uploaded=tf.reduce_sum(tf.cast(summed_masks, tf.int64)),
        )

    @tff.federated_computation(
        tff.FederatedType(flat_type, tff.SERVER),
        tff.FederatedType(non_trainable_type, tff.SERVER),
        tff.FederatedType(counts_type, tff.SERVER),
        tff.FederatedType(flat_type, tff.CLIENTS),
        tff.FederatedType(data_type, tff.CLIENTS),
        tff.FederatedType(seed_type, tff.CLIENTS),
    )
    def round_fn(global_flat, non_trainable, counts, local_flat, data, seeds):
        outputs = tff.federated_map(
            client_turn,
            (
                tff.federated_broadcast(global_flat),
                tff.federated_broadcast(non_trainable),
                tff.federated_broadcast(counts),
                local_flat,
                data,
                seeds,
            ),
        )
        server = tff.federated_map(
            server_update,
            (
                global_flat,
                counts,
                tff.federated_sum(outputs[0]),
                tff.federated_sum(outputs[1]),
            ),
        )
        return server, outputs[2], aggregate_metrics(outputs[3])

    return round_fn


def _to_python(structure) -> collections.OrderedDict:
    """TFF's result structure as nested OrderedDicts of numpy values (what the run loop reads)."""
    if isinstance(structure, Mapping):
        return collections.OrderedDict((k, _to_python(v)) for k, v in structure.items())
    return np.asarray(structure)


def _empty_like(value_type) -> Any:
    if isinstance(value_type, tff.StructType):
        return collections.OrderedDict(
            (name, _empty_like(member)) for name, member in tff.structure.iter_elements(value_type)
        )
    dtype = np.dtype(value_type.dtype)
    fill = np.nan if np.issubdtype(dtype, np.floating) else 0
    return np.full(value_type.shape, fill, dtype)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
