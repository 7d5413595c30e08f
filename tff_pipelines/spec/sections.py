"""The Spec dataclass tree: the single definition of every field, its type, default and bounds.

`schema.py` turns these annotations and field metadata into the JSON Schema that validates files,
so a field is declared once, here.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import field
from typing import Any, Final, Literal, get_args

# Adding a choice is one line: extend the Literal. The tuples are derived from it.
Source = Literal["mnist5k", "digits", "boston", "pima", "breast_cancer", "synthetic", "csv", "npz"]
Task = Literal["auto", "classification", "regression"]
Partition = Literal["iid", "dirichlet", "shards", "natural"]
ModelType = Literal["logreg", "mlp", "cnn", "factory"]
Initializer = Literal["default", "zeros"]
Algorithm = Literal["fedavg", "fedsgd", "dssgd"]
Weighting = Literal["auto", "examples", "uniform"]
Sampling = Literal["fixed", "poisson", "round_robin"]
Batching = Literal["shuffle", "poisson"]
OptimizerName = Literal["sgd", "adam", "adagrad", "rmsprop", "yogi", "adamw"]
Mechanism = Literal["none", "gaussian", "smm", "ddg", "skellam", "dpsgd", "svt"]
Download = Literal["most_updated", "random"]
Selection = Literal["largest", "random_threshold"]
Rotation = Literal["hadamard", "dft"]
SubsamplingBound = Literal["general", "tight"]
Accountant = Literal["rdp", "pld", "zcdp"]
UserLevelMechanism = Literal["none", "gaussian", "smm", "ddg", "skellam"]
ScheduleKind = Literal[
    "none", "constant", "time_based", "exponential", "step", "polynomial", "validation_based"
]
SecureAggregationProtocol = Literal["auto", "none", "simulated", "secagg"]
Progress = Literal["auto", "always", "never"]

SOURCES: Final = get_args(Source)
MECHANISMS: Final = get_args(Mechanism)
# Noise added by the clients to integer vectors that a modular secure sum adds up.
DISTRIBUTED_MECHANISMS: Final = ("smm", "ddg", "skellam")
DISTRIBUTED_DEFAULTS: Final[Mapping[str, Any]] = {
    "bits": 16,
    "rotation": "hadamard",
    "modclip_prob": 1e-4,
    "subsampling_bound": "general",
    "beta": 0.0,
}
# SecAgg+ settings; null in a file means these.
SECAGG_DEFAULTS: Final[Mapping[str, Any]] = {
    "neighbours": "auto",
    "threshold": "auto",
    "dropout_rate": 0.0,
    "max_dropout": 0.0,
}
OPTIMIZERS: Final = get_args(OptimizerName)
USER_FILE_SOURCES: Final = ("csv", "npz")
IMAGE_SOURCES: Final = ("mnist5k", "digits")
BUILTIN_TASKS: Final[Mapping[str, str]] = {
    "mnist5k": "classification",
    "digits": "classification",
    "boston": "regression",
    "pima": "classification",
    "breast_cancer": "classification",
}
SYNTHETIC_EXAMPLES_DEFAULT: Final = 10_000
MAX_SEED: Final = 2**31 - 1  # fits an int32, so every RNG (NumPy, TF stateless ops) accepts it

FACTORY_PATTERN: Final = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
NAME_PATTERN: Final = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"

# Keyword arguments of tff.learning.optimizers.build_* (TFF 0.87) besides `learning_rate`, with the
# bounds those builders enforce: (minimum, maximum), None = unbounded.
Bounds = tuple[float | None, float | None]
OPTIMIZER_HYPERPARAMETERS: Final[Mapping[str, Mapping[str, Bounds]]] = {
    "sgd": {"momentum": (0.0, 1.0)},
    "adam": {"beta_1": (0.0, 1.0), "beta_2": (0.0, 1.0), "epsilon": (0.0, None)},
    "adagrad": {"initial_preconditioner_value": (0.0, None), "epsilon": (0.0, None)},
    "rmsprop": {"decay": (0.0, 1.0), "epsilon": (0.0, None)},
    "yogi": {
        "beta_1": (0.0, 1.0),
        "beta_2": (0.0, 1.0),
        "epsilon": (0.0, None),
        "initial_preconditioner_value": (0.0, None),
    },
    "adamw": {
        "beta_1": (0.0, 1.0),
        "beta_2": (0.0, 1.0),
        "epsilon": (0.0, None),
        "weight_decay": (0.0, None),
    },
}


def describe(
    *,
    doc: str,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: float | None = None,
    exclusive_maximum: float | None = None,
    pattern: str | None = None,
    nullable: bool = False,
) -> dict[str, Any]:
    """Field metadata: the user-facing description and JSON Schema bounds.

    Bounds on a list-typed field apply to its items. `nullable` allows null in the file for a
    field that is resolved to a value at load time.
    """
    constraints = {
        "minimum": minimum,
        "maximum": maximum,
        "exclusiveMinimum": exclusive_minimum,
        "exclusiveMaximum": exclusive_maximum,
        "pattern": pattern,
    }
    return {
        "doc": doc,
        "constraints": {key: value for key, value in constraints.items() if value is not None},
        "nullable": nullable,
    }


def describe_section(cls: type) -> dict[str, Any]:
    """Field metadata for a whole sub-section: its class docstring is its description."""
    return describe(doc=" ".join((inspect.getdoc(cls) or cls.__name__).split()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataSpec:
    """Where the examples come from and how they are split into clients."""

    source: Source = field(
        metadata=describe(doc="Dataset: a built-in one, 'synthetic', or a user 'csv'/'npz' file.")
    )
    path: str | None = field(
        default=None,
        metadata=describe(
            doc="File for csv/npz (required for those, forbidden otherwise). Relative to the spec "
            "file's directory; stored as an absolute path."
        ),
    )
    features: tuple[str, ...] | str | None = field(
        default=None,
        metadata=describe(
            doc="csv: feature column names (null = every column except label and client_key). "
            "npz: array key of the features (null = 'x')."
        ),
    )
    label: str | None = field(
        default=None,
        metadata=describe(
            doc="csv column / npz key of the label (null = 'label' for csv, 'y' for npz)."
        ),
    )
    client_key: str | None = field(
        default=None,
        metadata=describe(
            doc="csv column / npz key naming each example's client; needed by partition 'natural'."
        ),
    )
    task: Task = field(
        default="auto",
        metadata=describe(doc="'auto' infers classification or regression from the label."),
    )
    clients: int = field(
        default=100, metadata=describe(minimum=1, doc="Population size: the number of clients.")
    )
    partition: Partition = field(
        default="iid",
        metadata=describe(
            doc="How training examples are split into clients: iid, label-skewed (dirichlet, "
            "shards), or by data.client_key (natural)."
        ),
    )
    dirichlet_alpha: float = field(
        default=0.5,
        metadata=describe(
            exclusive_minimum=0, doc="Dirichlet concentration; smaller = more label skew."
        ),
    )
    shards_per_client: int = field(
        default=2,
        metadata=describe(
            minimum=1, doc="Label-sorted shards each client gets (partition 'shards')."
        ),
    )
    test_fraction: float = field(
        default=0.2,
        metadata=describe(
            minimum=0,
            exclusive_maximum=1,
            doc="Fraction held out as a central test set for evaluation.",
        ),
    )
    standardize: bool = field(
        default=True, metadata=describe(doc="Z-score features using training-set statistics.")
    )
    standardize_target: bool = field(
        default=False,
        metadata=describe(
            doc="Regression only: train on z-scored targets (training-set statistics); "
            "evaluation, metrics and the SavedModel stay in the target's own units."
        ),
    )
    examples: int | None = field(
        default=None,
        metadata=describe(
            minimum=1,
            doc="synthetic: number of examples (null = 10000). Other sources: optional cap "
            "(seeded subsample).",
        ),
    )
    dim: int = field(
        default=20, metadata=describe(minimum=1, doc="synthetic only: feature dimension.")
    )
    classes: int = field(
        default=2,
        metadata=describe(minimum=0, doc="synthetic only: number of classes (0 = regression)."),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """The Keras model trained federatedly. `model: mlp` is shorthand for `model: {type: mlp}`."""

    type: ModelType = field(
        default="mlp",
        metadata=describe(
            doc="Architecture; 'factory' calls model.factory. Giving only factory implies it."
        ),
    )
    hidden: tuple[int, ...] = field(
        default=(128,), metadata=describe(minimum=1, doc="mlp: hidden layer widths.")
    )
    filters: tuple[int, ...] = field(
        default=(32, 64), metadata=describe(minimum=1, doc="cnn: filters per conv layer.")
    )
    kernel_size: int = field(
        default=3, metadata=describe(minimum=1, doc="cnn: convolution kernel size.")
    )
    dense: int = field(
        default=128,
        metadata=describe(minimum=1, doc="cnn: width of the dense layer after the convs."),
    )
    dropout: float = field(
        default=0.0, metadata=describe(minimum=0, exclusive_maximum=1, doc="Dropout rate.")
    )
    factory: str | None = field(
        default=None,
        metadata=describe(
            pattern=FACTORY_PATTERN,
            doc="'package.module:function' returning an uncompiled Keras model; required when "
            "type is 'factory'.",
        ),
    )
    initializer: Initializer = field(
        default="default",
        metadata=describe(
            doc="Initial weights. default: Keras's (Glorot uniform kernels, zero biases, seeded "
            "by the spec's seed); zeros: every weight starts at 0, logreg only (hidden units "
            "started equal would stay equal). A linear model's loss is convex, so zeros loses "
            "nothing, and DP-SGD's clipped, noisy steps need not first undo a random start."
        ),
    )
    bias: bool = field(
        default=True,
        metadata=describe(
            doc="Whether the output layer adds a learned bias (built-in models). false suits a "
            "linear model on centred data (data.standardize, data.standardize_target), whose "
            "least-squares intercept is then 0: under DP-SGD that is one coordinate fewer to "
            "clip and to noise."
        ),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizerSpec:
    """A TFF optimizer: `name`, `learning_rate`, and the builder's other keyword arguments."""

    name: OptimizerName = "sgd"
    learning_rate: float = 0.1
    hyperparameters: tuple[tuple[str, float], ...] = ()

    def kwargs(self) -> dict[str, float]:
        """Keyword arguments for the matching tff.learning.optimizers.build_* function."""
        return {"learning_rate": self.learning_rate, **dict(self.hyperparameters)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelMixSpec:
    """dpsgd only: ModelMix (Xiao, Wan & Devadas 2022). Every DP-SGD step on a client starts from
    a uniform random mix of its last two states, pushed at least tau apart per coordinate, and the
    accountant credits that randomness (their Theorem 4.1, with privacy.coordinate_clip_p and
    privacy.subsampling_bound). With server: true the server also steps from a random mix of the
    last two global models, tau scaled by both learning rates; that federated mapping is this
    project's, not the paper's, and as post-processing it claims no privacy."""

    tau: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            doc="Minimum gap between the two states, as a multiple of the client learning rate "
            "(the paper: 0.15). null = no ModelMix.",
        ),
    )
    server: bool = field(
        default=True,
        metadata=describe(
            doc="Also mix the last two global models at the server (gap tau times the client "
            "and server learning rates)."
        ),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class DssgdSpec:
    """algorithm dssgd only: one turn of a participant (Shokri & Shmatikov 2015). It downloads
    download_fraction of the global parameters into its local model, trains local_epochs epochs
    of plain SGD, and uploads at most upload_fraction of its update's coordinates, each
    truncated to [-bound, bound]; the server adds the uploads to the global model. A round holds
    clients_per_round turns in parallel, in the order training.sampling gives (round_robin or
    fixed, i.e. random). With privacy.mechanism svt the upload is the sparse vector technique."""

    upload_fraction: float = field(
        default=0.1,
        metadata=describe(
            minimum=0, maximum=1, doc="theta_u: at most this fraction of coordinates uploaded."
        ),
    )
    download_fraction: float = field(
        default=1.0,
        metadata=describe(
            minimum=0, maximum=1, doc="theta_d: fraction of global parameters downloaded."
        ),
    )
    download: Download = field(
        default="most_updated",
        metadata=describe(
            doc="Which global parameters: most_updated (most uploads so far) or random."
        ),
    )
    selection: Selection = field(
        default="largest",
        metadata=describe(
            doc="Without DP: largest (the largest |update| coordinates) or random_threshold "
            "(random among those with |update| > threshold). svt selects by itself."
        ),
    )
    threshold: float = field(
        default=0.0,
        metadata=describe(minimum=0, doc="tau: random_threshold's and svt's threshold."),
    )
    bound: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            doc="gamma: every uploaded value truncated to [-gamma, gamma]; svt needs it. "
            "null = no truncation.",
        ),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class AveragingSpec:
    """The model a run publishes (evaluated, checkpointed, exported) as the mean of the global
    models of the run's last rounds (suffix averaging: Polyak & Juditsky 1992; Shamir & Zhang
    2013): noisy training wanders around the optimum, and the mean cancels much of that noise.
    Training itself continues from the last global model. The mean is post-processing of models
    the server released, so it costs no privacy."""

    suffix: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            maximum=1,
            doc="Fraction of training.rounds whose global models are averaged: the last "
            "round(suffix x rounds) of them, at least the last one. null = publish the last "
            "global model. A run that max_epsilon stops before the suffix publishes its last.",
        ),
    )
    decay: float = field(
        default=1.0,
        metadata=describe(
            exclusive_minimum=0,
            maximum=1,
            doc="1 = the uniform mean over the suffix; below 1 the mean becomes an exponential "
            "moving average with this decay once it has averaged 1 / (1 - decay) models.",
        ),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingSpec:
    """The federated training loop."""

    algorithm: Algorithm = field(
        default="fedavg",
        metadata=describe(
            doc="fedavg: local epochs then average; fedsgd: one gradient step per round; dssgd: "
            "Distributed Selective SGD (Shokri & Shmatikov 2015, training.dssgd): participants "
            "keep local models, download part of the global one and upload a few coordinates "
            "of their update."
        ),
    )
    weighting: Weighting = field(
        default="auto",
        metadata=describe(
            doc="Weight of each client update in the average. auto = examples without DP, uniform "
            "with a DP mechanism."
        ),
    )
    rounds: int = field(default=10, metadata=describe(minimum=1, doc="Number of federated rounds."))
    clients_per_round: int = field(
        default=10,
        metadata=describe(
            minimum=1, doc="Cohort size per round (the expected size under poisson sampling)."
        ),
    )
    sampling: Sampling = field(
        default="fixed",
        metadata=describe(
            doc="fixed: exactly clients_per_round clients without replacement; poisson: each "
            "client independently with probability clients_per_round / data.clients; "
            "round_robin (dssgd only): the next clients_per_round clients of a fixed cycle, "
            "Shokri & Shmatikov's round-robin exchange (fixed is their random order)."
        ),
    )
    local_epochs: int = field(
        default=1, metadata=describe(minimum=1, doc="Passes over local data per round (fedavg).")
    )
    batch_size: int = field(
        default=20,
        metadata=describe(
            minimum=1, doc="Client batch size (the expected batch size under poisson batching)."
        ),
    )
    batching: Batching = field(
        default="shuffle",
        metadata=describe(
            doc="How a client cuts its data into batches each local epoch. shuffle: a fresh "
            "random order, cut into batches of batch_size. poisson: ceil(n / batch_size) steps, "
            "each taking every one of the client's n examples independently with probability "
            "batch_size / n (Abadi et al.'s lots; dpsgd then claims amplification by sampling)."
        ),
    )
    client_optimizer: OptimizerSpec = field(
        default=OptimizerSpec(name="sgd", learning_rate=0.1),
        metadata=describe(
            doc="Optimizer on each client: a mapping with name, learning_rate and that optimizer's "
            "other hyper-parameters."
        ),
    )
    server_optimizer: OptimizerSpec = field(
        default=OptimizerSpec(name="sgd", learning_rate=1.0),
        metadata=describe(
            doc="Optimizer applying the averaged update on the server (same form as "
            "client_optimizer)."
        ),
    )
    modelmix: ModelMixSpec = field(
        default_factory=ModelMixSpec, metadata=describe_section(ModelMixSpec)
    )
    dssgd: DssgdSpec = field(default_factory=DssgdSpec, metadata=describe_section(DssgdSpec))
    averaging: AveragingSpec = field(
        default_factory=AveragingSpec, metadata=describe_section(AveragingSpec)
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScheduleSpec:
    """Noise decay (Yu et al. 2019): the noise multiplier of round t = 0, 1, ... (gaussian: of the
    server's noise; dpsgd: of every local epoch in that round, and with local_epochs 1 a round is
    one epoch). Training stops before
    the round that would take epsilon past privacy.max_epsilon. Each kind reads only its own
    parameters: constant (initial_sigma); time_based: initial_sigma / (1 + decay_rate·t);
    exponential: initial_sigma·exp(-decay_rate·t); step: initial_sigma·factor^floor(t/period);
    polynomial: (initial_sigma - final_sigma)·(1 - t/period)^power + final_sigma;
    validation_based: every period rounds, if the mean evaluation accuracy of the last window
    rounds gained less than threshold over the window before, sigma is multiplied by factor."""

    kind: ScheduleKind = field(
        default="none", metadata=describe(doc="none: privacy.noise_multiplier every round.")
    )
    initial_sigma: float | None = field(
        default=None, metadata=describe(exclusive_minimum=0, doc="Noise multiplier of round 0.")
    )
    decay_rate: float | None = field(
        default=None, metadata=describe(minimum=0, doc="time_based, exponential: k.")
    )
    factor: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0, doc="step, validation_based: sigma is multiplied by this."
        ),
    )
    period: int | None = field(
        default=None,
        metadata=describe(
            minimum=1,
            doc="step: rounds between decays; polynomial: rounds to reach final_sigma; "
            "validation_based: rounds between checks.",
        ),
    )
    final_sigma: float | None = field(
        default=None,
        metadata=describe(exclusive_minimum=0, doc="polynomial: sigma from period on."),
    )
    power: float | None = field(
        default=None, metadata=describe(exclusive_minimum=0, doc="polynomial: exponent.")
    )
    threshold: float | None = field(
        default=None,
        metadata=describe(doc="validation_based: least gain in mean accuracy that keeps sigma."),
    )
    window: int | None = field(
        default=None,
        metadata=describe(minimum=1, doc="validation_based: evaluations averaged per side (m)."),
    )

    def parameters(self) -> dict[str, Any]:
        """The parameters set in the file (what `mechanisms.schedules` is built from)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "kind" and getattr(self, f.name) is not None
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserLevelSpec:
    """dpsgd only: user-level DP on top of example-level DP-SGD. Each client's model delta is
    clipped to clip and released by this mechanism as privacy.mechanism would release it:
    gaussian (the server adds the noise) or smm, ddg, skellam (the clients add integer noise to
    a modular secure sum, simulated or SecAgg+; bits, rotation, gamma, mu, beta, modclip_prob
    and the secure_aggregation section are read for it). So each client as a whole is protected too.
    Accounted separately with RDP, per client (neighbours by the cohort sampling); privacy.json
    reports both units, each with its own epsilon."""

    mechanism: UserLevelMechanism = field(
        default="none", metadata=describe(doc="none: the server takes the plain mean.")
    )
    clip: float = field(
        default=1.0,
        metadata=describe(exclusive_minimum=0, doc="L2 clip norm of each client's model delta."),
    )
    noise_multiplier: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            doc="gaussian, ddg, skellam: standard deviation of the noise in the sum, divided by "
            "clip (smm: privacy.mu).",
        ),
    )
    target_epsilon: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            doc="Calibrate noise_multiplier so the user-level epsilon after all rounds is this.",
        ),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrivacySpec:
    """Differential privacy of each client's contribution: (epsilon, delta) at the client level."""

    mechanism: Mechanism = field(
        default="none",
        metadata=describe(
            doc="Privacy mechanism. none: no DP. gaussian: central DP-FedAvg, the server adds "
            "noise. smm (Skellam mixture), ddg (distributed discrete Gaussian), skellam: "
            "distributed DP, the clients add integer noise and a modular secure sum adds up. "
            "dpsgd: example-level DP, every client trains with DP-SGD and the server averages. "
            "svt (algorithm dssgd): every upload is the sparse vector technique, "
            "privacy.upload_epsilon-DP for the participant's data."
        ),
    )
    clip: float = field(
        default=1.0,
        metadata=describe(
            exclusive_minimum=0,
            doc="L2 clip norm of each client's update; dpsgd: of each example's gradient.",
        ),
    )
    noise_multiplier: float | None = field(
        default=None,
        metadata=describe(
            minimum=0,
            doc="gaussian, ddg, skellam: standard deviation of the noise in the sum, divided by "
            "clip; dpsgd: of the noise in each batch's sum of clipped gradients, divided by clip.",
        ),
    )
    target_epsilon: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            doc="Calibrate the noise (noise_multiplier, mu for smm, upload_epsilon for svt) so "
            "epsilon after all rounds reaches this.",
        ),
    )
    upload_epsilon: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            doc="svt: epsilon of each participant's upload (pure DP for its whole local data); "
            "uploads compose over rounds. Set this or target_epsilon.",
        ),
    )
    max_epsilon: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0, doc="Never run a round that would take epsilon past this."
        ),
    )
    schedule: ScheduleSpec = field(
        default_factory=ScheduleSpec, metadata=describe_section(ScheduleSpec)
    )
    user_level: UserLevelSpec = field(
        default_factory=UserLevelSpec, metadata=describe_section(UserLevelSpec)
    )
    delta: float = field(
        default=1e-5,
        metadata=describe(
            exclusive_minimum=0, exclusive_maximum=1, doc="Delta of the (epsilon, delta) guarantee."
        ),
    )
    accountant: Accountant = field(
        default="rdp",
        metadata=describe(
            doc="rdp: Renyi DP (dp_accounting); pld: privacy loss distributions (dp_accounting); "
            "zcdp: zero-concentrated DP as Yu et al. 2019 account (rho = 1/(2 sigma^2) per "
            "Gaussian release, q^2/sigma^2 per Poisson-sampled step, rho adds up), gaussian and "
            "dpsgd only; the epsilon reported is the larger of the zCDP figure and the exact RDP "
            "one, and privacy.json shows both. pld with dpsgd and Poisson batches on clients of "
            "different sizes charges each round one event that bounds every client (the "
            "smallest client's rate, the largest one's step count). smm, ddg, skellam and "
            "ModelMix are accounted with their own RDP curves: 'rdp' only."
        ),
    )
    bits: int | None = field(
        default=None,
        metadata=describe(
            minimum=2,
            maximum=32,
            doc="smm, ddg, skellam: bits per coordinate of the secure sum; it adds in Z_M with "
            "M = 2^bits. null = 16.",
        ),
    )
    rotation: Rotation | None = field(
        default=None,
        metadata=describe(
            doc="smm, ddg, skellam: random rotation that spreads each update over all "
            "coordinates before rounding. null = hadamard.",
        ),
    )
    modclip_prob: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            exclusive_maximum=0.5,
            doc="smm, ddg, skellam: target probability that one coordinate of the sum wraps "
            "around modulo M; sets the scale when gamma is not given. null = 1e-4.",
        ),
    )
    gamma: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            doc="smm: scale factor, updates are multiplied by gamma before rounding (mixture-norm "
            "bound c = (gamma*clip)^2). ddg, skellam: rounding granularity, updates are divided "
            "by gamma (TFF's convention, scale = 1/gamma). null = derived from bits and "
            "modclip_prob.",
        ),
    )
    mu: float | None = field(
        default=None,
        metadata=describe(
            exclusive_minimum=0,
            doc="smm: Poisson mean of each client's noise per coordinate (Skellam(mu, mu), "
            "variance 2*mu). Set this or target_epsilon.",
        ),
    )
    subsampling_bound: SubsamplingBound | None = field(
        default=None,
        metadata=describe(
            doc="smm, and dpsgd with training.modelmix: RDP bound for Poisson sampling; "
            "'general' (Zhu & Wang 2019, holds for any mechanism) or 'tight' (the authors' "
            "form, reproduces their numbers). null = general.",
        ),
    )
    coordinate_clip_p: int | None = field(
        default=None,
        metadata=describe(
            minimum=1,
            doc="dpsgd with training.modelmix: after the L2 clip, clamp every coordinate of each "
            "example's gradient to clip / sqrt(p) (ModelMix's refined clipping; the paper: 25 or "
            "100). null = no clamp.",
        ),
    )
    beta: float | None = field(
        default=None,
        metadata=describe(
            minimum=0,
            exclusive_maximum=1,
            doc="ddg, skellam: conditional rounding; redraws the rounding until the norm bound "
            "that holds with probability 1 - beta is met (smaller sensitivity). 0 = off. "
            "null = 0.",
        ),
    )

    @property
    def is_private(self) -> bool:
        return self.mechanism != "none"

    @property
    def aggregation_mechanism(self) -> str:
        """What releases the clients' aggregate: the mechanism, or with dpsgd the user level's."""
        return self.user_level.mechanism if self.mechanism == "dpsgd" else self.mechanism

    @property
    def is_distributed(self) -> bool:
        """Noise is added by the clients and the sum is secure: smm, ddg, skellam (alone, or as
        the user level on top of dpsgd)."""
        return self.aggregation_mechanism in DISTRIBUTED_MECHANISMS

    def setting(self, name: str) -> Any:
        """A distributed-mechanism field with its documented default filled in."""
        value = getattr(self, name)
        return DISTRIBUTED_DEFAULTS[name] if value is None else value


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecureAggregationSpec:
    """Secure aggregation of client updates."""

    protocol: SecureAggregationProtocol = field(
        default="auto",
        metadata=describe(
            doc="How client updates are summed. 'secagg': the SecAgg+ protocol (Bonawitz et al. "
            "2017; Bell et al. 2020: key agreement, Shamir-shared keys, masks that cancel in the "
            "sum, dropout recovery) computes every round's modular sum; smm, ddg and skellam only. "
            "'simulated': the modular sum computed in the clear, as secure aggregation would "
            "return it. 'none': a plain sum. 'auto' = simulated for smm, ddg and skellam, else "
            "none."
        ),
    )
    neighbours: int | Literal["all", "auto"] | None = field(
        default=None,
        metadata=describe(
            minimum=2,
            doc="secagg: how many other clients each client pairs masks with (k, even, below "
            "clients_per_round); 'all' = every other client (original SecAgg); 'auto' = the "
            "smallest even k >= 2*log2(clients_per_round) (SecAgg+'s O(log n) degree; Bell et "
            "al. derive the constant from the corruption and dropout they tolerate). In a round "
            "with fewer clients, all of them pair. null = auto.",
        ),
    )
    threshold: int | Literal["auto"] | None = field(
        default=None,
        metadata=describe(
            minimum=1,
            doc="secagg: how many of a client's neighbours must answer to rebuild its secrets "
            "(t, with k/2 < t <= k, so the server never gets both secrets of one client); "
            "'auto' = k/2 + 1, the most dropouts tolerated. In a round whose cohort forces fewer "
            "neighbours, t shrinks in proportion and stays above half. null = auto.",
        ),
    )
    dropout_rate: float | None = field(
        default=None,
        metadata=describe(
            minimum=0,
            exclusive_maximum=1,
            doc="secagg, simulation: each client of a round drops out after the masks are agreed "
            "and before it uploads, with this probability (seeded). null = 0.",
        ),
    )
    max_dropout: float | None = field(
        default=None,
        metadata=describe(
            minimum=0,
            exclusive_maximum=1,
            doc="secagg: the fraction of a cohort that may drop out. Clients add enough noise "
            "that any cohort - floor(max_dropout*cohort) of them carry the accounted noise; a "
            "round with more dropouts is refused (nothing released, the model unchanged). "
            "Higher values cost modulus headroom. null = 0.",
        ),
    )

    def resolved(self, mechanism: str) -> str:
        if self.protocol != "auto":
            return self.protocol
        return "simulated" if mechanism in DISTRIBUTED_MECHANISMS else "none"

    def setting(self, name: str) -> Any:
        """A SecAgg+ field with its documented default filled in."""
        value = getattr(self, name)
        return SECAGG_DEFAULTS[name] if value is None else value


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvaluationSpec:
    """Evaluation on the central test set."""

    every: int = field(
        default=1,
        metadata=describe(minimum=0, doc="Evaluate every N rounds; 0 = only after the last round."),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RuntimeSpec:
    """How the run behaves on this machine; does not change results."""

    progress: Progress = field(
        default="auto",
        metadata=describe(doc="Progress bar; auto = only when stdout is a terminal and not in CI."),
    )
    checkpoint_every: int = field(
        default=1, metadata=describe(minimum=1, doc="Checkpoint every N rounds.")
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutputSpec:
    """What a run writes, and where."""

    dir: str = field(
        default="runs/{name}",
        metadata=describe(
            doc="Output directory; '{name}' becomes the spec name. Relative to the current working "
            "directory, not the spec file."
        ),
    )
    export: bool = field(
        default=True, metadata=describe(doc="Export the trained model as saved_model/.")
    )
    tensorboard: bool = field(default=True, metadata=describe(doc="Write TensorBoard summaries."))
    plots: bool = field(default=True, metadata=describe(doc="Write metric and privacy plots."))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Spec:
    """A validated run description with every default filled in."""

    name: str = field(
        default="run",
        metadata=describe(
            pattern=NAME_PATTERN, doc="Run name (letters, digits, '_', '.', '-'); used in paths."
        ),
    )
    seed: int = field(
        default=0,
        metadata=describe(
            minimum=0,
            maximum=MAX_SEED,
            nullable=True,
            doc="Seeds data split, client sampling, initialisation and noise. null = draw a fresh "
            "seed at load time (recorded in the resolved spec, so the run can be reproduced).",
        ),
    )
    data: DataSpec = field(metadata=describe(doc=inspect.getdoc(DataSpec)))
    model: ModelSpec = field(default_factory=ModelSpec, metadata=describe_section(ModelSpec))
    training: TrainingSpec = field(
        default_factory=TrainingSpec, metadata=describe_section(TrainingSpec)
    )
    privacy: PrivacySpec = field(
        default_factory=PrivacySpec, metadata=describe_section(PrivacySpec)
    )
    secure_aggregation: SecureAggregationSpec = field(
        default_factory=SecureAggregationSpec, metadata=describe_section(SecureAggregationSpec)
    )
    evaluation: EvaluationSpec = field(
        default_factory=EvaluationSpec, metadata=describe_section(EvaluationSpec)
    )
    runtime: RuntimeSpec = field(
        default_factory=RuntimeSpec, metadata=describe_section(RuntimeSpec)
    )
    output: OutputSpec = field(default_factory=OutputSpec, metadata=describe_section(OutputSpec))

    @property
    def weighting(self) -> Literal["examples", "uniform"]:
        """training.weighting with 'auto' decided: DP bounds each client, so it weighs uniformly."""
        if self.training.weighting != "auto":
            return self.training.weighting
        return "uniform" if self.privacy.is_private else "examples"

    def replace_seed(self, seed: int) -> Spec:
        """The same spec with another seed (e.g. for repeated runs)."""
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be an int in [0, {MAX_SEED}], got {seed!r}")
        return dataclasses.replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-serialisable, fully resolved mapping in the spec file format."""
        return _plain(self)


def _plain(value: Any) -> Any:
    if isinstance(value, OptimizerSpec):
        return {"name": value.name, **value.kwargs()}
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
