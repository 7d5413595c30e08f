"""Cross-field rules: constraints that involve more than one field.

Each rule is a generator of (path, message) and reads fields through a `View` that stops the rule
(silently) as soon as it touches a field that already failed per-field validation, so one mistake
is reported once, by the check that understands it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mechanisms.scaling import min_bits
from secure_agg import parameters as secagg_parameters
from tff_pipelines.spec.errors import NO_VALUE
from tff_pipelines.spec.sections import (
    BUILTIN_TASKS,
    DISTRIBUTED_DEFAULTS,
    DISTRIBUTED_MECHANISMS,
    IMAGE_SOURCES,
    SECAGG_DEFAULTS,
    USER_FILE_SOURCES,
    DataSpec,
    DssgdSpec,
)

Finding = tuple[str, str]
Rule = Callable[["View"], Iterator[Finding]]


class Unusable(Exception):
    """A field a rule needs is invalid or missing; the rule has nothing to say."""


class View:
    """Read access to a defaults-filled spec mapping that hides fields with problems."""

    def __init__(self, filled: Mapping[str, Any], bad_paths: set[str]) -> None:
        self._filled = filled
        self._bad_paths = bad_paths

    def __getitem__(self, path: str) -> Any:
        if any(bad.startswith((f"{path}.", f"{path}[")) for bad in self._bad_paths):
            raise Unusable(path)  # e.g. model.hidden[1] is bad, so model.hidden is unusable
        node: Any = self._filled
        prefix = ""
        for key in path.split("."):
            prefix = f"{prefix}.{key}" if prefix else key
            if prefix in self._bad_paths or not isinstance(node, Mapping) or key not in node:
                raise Unusable(path)
            node = node[key]
        return node

    def get(self, path: str) -> Any:
        """The field's value, or NO_VALUE where __getitem__ would raise."""
        try:
            return self[path]
        except Unusable:
            return NO_VALUE

    def is_private(self) -> bool:
        return self["privacy.mechanism"] != "none"


def _aggregation(view: View) -> Any:
    """The mechanism that releases the clients' aggregate: privacy.mechanism, or with dpsgd the
    user-level mechanism on top (privacy.user_level.mechanism; NO_VALUE if that is invalid)."""
    mechanism = view["privacy.mechanism"]
    if mechanism == "dpsgd":
        return view.get("privacy.user_level.mechanism")
    return mechanism


def _cohort_fits_population(view: View) -> Iterator[Finding]:
    """training.clients_per_round must be at most data.clients."""
    clients = view["data.clients"]
    if view["training.clients_per_round"] > clients:
        yield "training.clients_per_round", f"must be at most data.clients ({clients})"


# The field that sets a mechanism's noise directly (else privacy.noise_multiplier).
_NOISE_FIELDS = {"smm": "privacy.mu", "svt": "privacy.upload_epsilon"}


def _noise_is_specified_once(view: View) -> Iterator[Finding]:
    """A DP mechanism needs exactly one of its noise field (privacy.mu for smm, else
    privacy.noise_multiplier) and privacy.target_epsilon."""
    if not view.is_private():
        return
    mechanism = view["privacy.mechanism"]
    noise_field = _NOISE_FIELDS.get(mechanism, "privacy.noise_multiplier")
    noise, target = view[noise_field], view["privacy.target_epsilon"]
    if view.get("privacy.schedule.kind") not in ("none", NO_VALUE):
        for path, value in ((noise_field, noise), ("privacy.target_epsilon", target)):
            if value is not None:
                yield path, "privacy.schedule sets the noise of every round: remove this"
        return
    if noise is not None and target is not None:
        message = f"set only one of {noise_field} and privacy.target_epsilon"
        yield noise_field, message
        yield "privacy.target_epsilon", message
    elif noise is None and target is None:
        yield (
            noise_field,
            f"mechanism '{mechanism}' needs {noise_field} or privacy.target_epsilon",
        )


# Which mechanisms read each mechanism-specific field; anything else set is a mistake.
_FIELD_MECHANISMS = {
    "noise_multiplier": ("gaussian", "ddg", "skellam", "dpsgd"),
    "bits": DISTRIBUTED_MECHANISMS,
    "rotation": DISTRIBUTED_MECHANISMS,
    "modclip_prob": DISTRIBUTED_MECHANISMS,
    "gamma": DISTRIBUTED_MECHANISMS,
    "mu": ("smm",),
    "subsampling_bound": ("smm",),
    "coordinate_clip_p": (),
    "beta": ("ddg", "skellam"),
    "upload_epsilon": ("svt",),
}


# Fields ModelMix reads besides the mechanism's own (dpsgd with training.modelmix.tau).
_MODELMIX_FIELDS = ("subsampling_bound", "coordinate_clip_p")


def _modelmix_on(view: View) -> bool:
    return view.get("training.modelmix.tau") not in (None, NO_VALUE)


def _fields_match_mechanism(view: View) -> Iterator[Finding]:
    """Mechanism-specific privacy fields are set only for mechanisms that read them."""
    mechanism = view["privacy.mechanism"]
    if mechanism == "none":
        return  # _no_noise_settings_without_mechanism speaks for noise_multiplier
    aggregation = _aggregation(view)
    modelmix = mechanism == "dpsgd" and _modelmix_on(view)
    for name, readers in _FIELD_MECHANISMS.items():
        read = mechanism in readers or (name != "noise_multiplier" and aggregation in readers)
        read = read or (modelmix and name in _MODELMIX_FIELDS)
        if not read and view.get(f"privacy.{name}") not in (None, NO_VALUE):
            users = [
                *readers,
                *(["dpsgd with training.modelmix"] if name in _MODELMIX_FIELDS else []),
            ]
            yield (
                f"privacy.{name}",
                f"is not used by mechanism '{mechanism}' (only by {', '.join(users)}); remove it",
            )


def _client_optimizer_is_plain_sgd(view: View) -> bool:
    """SGD with nothing but a learning rate (no momentum or other state): what dpsgd and dssgd
    clients run, whatever optimizer the spec could otherwise name."""
    optimizer = view.get("training.client_optimizer")
    if not isinstance(optimizer, Mapping):
        return True  # invalid or absent: the schema reports it
    extra = sorted(set(optimizer) - {"name", "learning_rate"})
    return optimizer.get("name", "sgd") == "sgd" and not any(optimizer[k] for k in extra)


def _dssgd_settings(view: View) -> Iterator[Finding]:
    """training.dssgd is read by algorithm dssgd only; dssgd runs plain SGD, exchanges in
    round-robin or random (fixed) order, and its only DP upload is svt, which needs a bound.
    round_robin sampling and svt belong to dssgd."""
    algorithm, mechanism = view["training.algorithm"], view["privacy.mechanism"]
    if algorithm != "dssgd":
        defaults = DssgdSpec()
        for name in ("upload_fraction", "download_fraction", "download", "selection", "threshold"):
            if view.get(f"training.dssgd.{name}") not in (getattr(defaults, name), NO_VALUE):
                yield f"training.dssgd.{name}", "is only used by training.algorithm 'dssgd'"
        if view.get("training.dssgd.bound") not in (None, NO_VALUE):
            yield "training.dssgd.bound", "is only used by training.algorithm 'dssgd'"
        if view.get("training.sampling") == "round_robin":
            yield "training.sampling", "'round_robin' is DSSGD's exchange order: needs 'dssgd'"
        if mechanism == "svt":
            yield "privacy.mechanism", "'svt' is DSSGD's upload: needs training.algorithm 'dssgd'"
        return
    if view.get("training.sampling") == "poisson":
        yield (
            "training.sampling",
            "dssgd exchanges in round_robin or fixed (random) order, not 'poisson'",
        )
    if mechanism not in ("none", "svt"):
        yield (
            "privacy.mechanism",
            f"dssgd uploads with 'svt' or without DP ('none'), not '{mechanism}'",
        )
    if not _client_optimizer_is_plain_sgd(view):
        yield (
            "training.client_optimizer",
            "dssgd participants run plain SGD: use {name: sgd, learning_rate: ...}",
        )
    if mechanism == "svt":
        if view.get("training.dssgd.bound") is None:
            yield "training.dssgd.bound", "svt needs a bound: its sensitivity is 2 x bound"
        if view.get("training.dssgd.upload_fraction") == 0:
            yield "training.dssgd.upload_fraction", "svt uploads nothing at 0: set it above 0"
        if view.get("privacy.accountant") in ("pld", "zcdp"):
            yield "privacy.accountant", "svt's pure-DP uploads are composed with RDP; use 'rdp'"


def _modelmix_is_dpsgd_accounted_with_rdp(view: View) -> Iterator[Finding]:
    """training.modelmix varies DP-SGD, and its accountant is an RDP curve."""
    if not _modelmix_on(view):
        if view.get("training.modelmix.server") is False:
            yield "training.modelmix.server", "is not used without training.modelmix.tau"
        return
    mechanism = view["privacy.mechanism"]
    if mechanism != "dpsgd":
        yield (
            "training.modelmix.tau",
            f"ModelMix varies DP-SGD: needs privacy.mechanism 'dpsgd', not '{mechanism}'",
        )
    elif view.get("privacy.accountant") in ("pld", "zcdp"):
        yield "privacy.accountant", "ModelMix is accounted with its own RDP curve; use 'rdp'"


def _distributed_needs_rdp_and_poisson(view: View) -> Iterator[Finding]:
    """smm, ddg and skellam have their own RDP accountants, for Poisson-sampled cohorts (or
    everyone in every round), and need a secure sum."""
    mechanism = _aggregation(view)
    if mechanism not in DISTRIBUTED_MECHANISMS:
        return
    on_top = view["privacy.mechanism"] == "dpsgd"  # then the user level is accounted with rdp
    if not on_top and view.get("privacy.accountant") in ("pld", "zcdp"):
        yield (
            "privacy.accountant",
            f"'{mechanism}' is accounted with its own RDP curve; use 'rdp'",
        )
    sampling, cohort, clients = (
        view.get("training.sampling"),
        view.get("training.clients_per_round"),
        view.get("data.clients"),
    )
    if sampling == "fixed" and NO_VALUE not in (cohort, clients) and cohort != clients:
        yield (
            "training.sampling",
            f"'{mechanism}' is accounted for Poisson-sampled cohorts: use 'poisson', or 'fixed' "
            "with every client in every round (clients_per_round = data.clients)",
        )
    if view.get("secure_aggregation.protocol") == "none":
        yield (
            "secure_aggregation.protocol",
            f"'{mechanism}' adds noise on the clients and needs a secure sum: use 'secagg', "
            "'simulated' or 'auto'",
        )


def _dpsgd_runs_plain_sgd_in_fedavg(view: View) -> Iterator[Finding]:
    """dpsgd replaces the clients' optimizer with DP-SGD: plain SGD (its learning rate is used),
    within FedAvg, with positive noise."""
    if view["privacy.mechanism"] != "dpsgd":
        return
    if view.get("training.algorithm") == "fedsgd":
        yield "training.algorithm", "'dpsgd' trains locally with DP-SGD: use 'fedavg'"
    if not _client_optimizer_is_plain_sgd(view):
        yield (
            "training.client_optimizer",
            "dpsgd clients run plain DP-SGD: use {name: sgd, learning_rate: ...} without momentum",
        )
    if view.get("privacy.noise_multiplier") == 0:
        yield "privacy.noise_multiplier", "must be greater than 0 for dpsgd"


# Mechanisms whose noise multiplier a schedule can move round by round.
_SCHEDULED_MECHANISMS = ("dpsgd", "gaussian")


def _schedule_has_its_parameters(view: View) -> Iterator[Finding]:
    """privacy.schedule: a kind for a mechanism it can drive, exactly that kind's parameters,
    and an evaluation every round when it reads the validation accuracy."""
    from mechanisms.schedules import schedule_parameters

    schedule = view["privacy.schedule"]
    kind = view["privacy.schedule.kind"]
    given = sorted(name for name, value in schedule.items() if name != "kind" and value is not None)
    if kind == "none":
        for name in given:
            yield f"privacy.schedule.{name}", "is not used without privacy.schedule.kind; remove it"
        return
    mechanism = view["privacy.mechanism"]
    if mechanism not in _SCHEDULED_MECHANISMS:
        yield (
            "privacy.schedule.kind",
            f"noise schedules drive {', '.join(_SCHEDULED_MECHANISMS)}, not '{mechanism}'",
        )
    expected = schedule_parameters(kind)
    for name in given:
        if name not in expected:
            yield (
                f"privacy.schedule.{name}",
                f"is not used by a {kind} schedule (it takes {', '.join(expected)}); remove it",
            )
    for name in expected:
        if name not in given:
            yield f"privacy.schedule.{name}", f"is required by a {kind} schedule"
    if kind == "validation_based" and mechanism != "dpsgd":
        yield (
            "privacy.schedule.kind",
            "validation_based drives dpsgd only: the server's noise table is fixed before "
            "training, and this schedule depends on the accuracy the run sees",
        )
    if kind == "validation_based" and view.get("evaluation.every") not in (1, NO_VALUE):
        yield (
            "evaluation.every",
            "must be 1 with a validation_based schedule, which reads the accuracy of every round",
        )


def _user_level_tops_dpsgd(view: View) -> Iterator[Finding]:
    """privacy.user_level adds client-level noise on top of dpsgd only, with exactly one of its
    noise (privacy.mu for smm, else its noise_multiplier) and its target_epsilon."""
    mechanism = view["privacy.user_level.mechanism"]
    noise = view["privacy.user_level.noise_multiplier"]
    target = view["privacy.user_level.target_epsilon"]
    if mechanism == "none":
        for path, value in (
            ("privacy.user_level.noise_multiplier", noise),
            ("privacy.user_level.target_epsilon", target),
        ):
            if value is not None:
                yield path, "is not used without privacy.user_level.mechanism; remove it"
        return
    if view["privacy.mechanism"] != "dpsgd":
        yield (
            "privacy.user_level.mechanism",
            "adds user-level noise on top of dpsgd only; for user-level DP alone set "
            "privacy.mechanism to it",
        )
    noise_field = "privacy.user_level.noise_multiplier"
    if mechanism == "smm":
        if noise is not None:
            yield noise_field, "smm's noise is privacy.mu; remove this"
        noise_field, noise = "privacy.mu", view["privacy.mu"]
    if (noise is None) == (target is None):
        message = f"set exactly one of {noise_field} and privacy.user_level.target_epsilon"
        yield noise_field, message


def _secagg_sums_integers(view: View) -> Iterator[Finding]:
    """SecAgg+ adds integers modulo 2^bits, which only the distributed mechanisms send; its
    settings mean nothing under another protocol."""
    protocol, mechanism = view["secure_aggregation.protocol"], _aggregation(view)
    if protocol == "secagg" and mechanism not in DISTRIBUTED_MECHANISMS:
        yield (
            "secure_aggregation.protocol",
            f"'secagg' sums integer vectors modulo 2^bits, which mechanism '{mechanism}' does "
            f"not send; use privacy.mechanism {', '.join(DISTRIBUTED_MECHANISMS)}",
        )
    if protocol == "secagg":
        return
    for name in SECAGG_DEFAULTS:
        if view.get(f"secure_aggregation.{name}") not in (None, NO_VALUE):
            yield (
                f"secure_aggregation.{name}",
                "is used only by secure_aggregation.protocol 'secagg'; remove it or use secagg",
            )


def _secagg_graph_fits_cohort(view: View) -> Iterator[Finding]:
    """k even and below the cohort (the neighbours sit on a ring), k/2 < t <= k, and dropouts
    simulated below the tolerated fraction."""
    if view["secure_aggregation.protocol"] != "secagg":
        return
    cohort = view["training.clients_per_round"]
    setting = _secagg_setting(view)
    neighbours = setting("neighbours")
    if isinstance(neighbours, int):
        if neighbours >= cohort:
            yield (
                "secure_aggregation.neighbours",
                f"must be below training.clients_per_round ({cohort}): a client has at most "
                f"{cohort - 1} others to pair with; use 'all' for everyone",
            )
            return
        if neighbours % 2:
            yield (
                "secure_aggregation.neighbours",
                "must be even: each client pairs with k/2 clients on either side of a random ring",
            )
            return
    k, t = secagg_parameters.plan(cohort, neighbours, setting("threshold"))
    problem = secagg_parameters.threshold_problem(cohort - 1 if k is None else k, t)
    if problem is not None:
        yield "secure_aggregation.threshold", problem
    rate, tolerated = setting("dropout_rate"), setting("max_dropout")
    if rate > 0 and tolerated <= rate:
        yield (
            "secure_aggregation.max_dropout",
            f"must exceed dropout_rate ({rate:g}): rounds in which more than max_dropout of the "
            "cohort drops are refused, and at max_dropout <= dropout_rate most would be",
        )


def _secagg_setting(view: View) -> Callable[[str], Any]:
    def setting(name: str) -> Any:
        value = view[f"secure_aggregation.{name}"]
        return SECAGG_DEFAULTS[name] if value is None else value

    return setting


def _bits_fit_cohort(view: View) -> Iterator[Finding]:
    """The modulus must leave room for the cohort's rounding noise alone (TFF's feasibility test:
    2^(2b) > n·k², with k standard deviations for the target wrap probability), and for ddg and
    skellam b ≥ log2(n)."""
    mechanism = _aggregation(view)
    if mechanism not in DISTRIBUTED_MECHANISMS:
        return
    bits = view["privacy.bits"] or DISTRIBUTED_DEFAULTS["bits"]
    p = view["privacy.modclip_prob"] or DISTRIBUTED_DEFAULTS["modclip_prob"]
    cohort = view["training.clients_per_round"]
    needed = min_bits(clients=cohort, wrap_probability=p, at_least_log2_clients=mechanism != "smm")
    if bits < needed:
        yield (
            "privacy.bits",
            f"is too small for {cohort} clients per round: the sum's rounding noise alone would "
            f"wrap modulo 2^{bits} more often than modclip_prob {p:g}; need at least "
            f"{needed} bits",
        )


def _no_noise_settings_without_mechanism(view: View) -> Iterator[Finding]:
    """With privacy.mechanism 'none', noise_multiplier, target_epsilon and max_epsilon must be
    unset: they would be silently ignored."""
    if view.is_private():
        return
    for field in ("noise_multiplier", "target_epsilon", "max_epsilon"):
        if view[f"privacy.{field}"] is not None:
            yield (
                f"privacy.{field}",
                "would be ignored because privacy.mechanism is 'none'; "
                "remove it or pick a mechanism",
            )


def _budget_covers_target(view: View) -> Iterator[Finding]:
    """privacy.max_epsilon must be at least privacy.target_epsilon."""
    cap, target = view["privacy.max_epsilon"], view["privacy.target_epsilon"]
    if cap is not None and target is not None and cap < target:
        yield "privacy.max_epsilon", f"must be at least privacy.target_epsilon ({target})"


def _pld_needs_poisson(view: View) -> Iterator[Finding]:
    """With a DP mechanism, privacy.accountant 'pld' requires training.sampling 'poisson':
    dp_accounting's PLD accountant has no fixed-size sampling without replacement."""
    if not view.is_private() or view["privacy.accountant"] != "pld":
        return
    if view["privacy.mechanism"] in (*DISTRIBUTED_MECHANISMS, "dpsgd"):
        return  # their own rules ask for 'rdp' instead
    sampling = view["training.sampling"]
    if sampling != "poisson":
        yield (
            "privacy.accountant",
            f"'pld' requires training.sampling 'poisson' (it is '{sampling}'): dp_accounting's "
            "PLD accountant has no fixed-size sampling without replacement; use 'rdp'",
        )


def _delta_below_one_over_population(view: View) -> Iterator[Finding]:
    """With a DP mechanism, privacy.delta must be less than 1 / data.clients (the privacy unit is
    one client; with delta ≥ 1 / clients, publishing one random client's data would satisfy it)."""
    if not view.is_private():
        return
    clients = view["data.clients"]
    if view["privacy.delta"] >= 1 / clients:
        yield (
            "privacy.delta",
            f"must be less than 1 / data.clients = {1 / clients:.3g} with a DP mechanism "
            "(the privacy unit is one client)",
        )


def _dp_weighs_clients_uniformly(view: View) -> Iterator[Finding]:
    """training.weighting 'examples' is not allowed with a DP mechanism: DP bounds each client's
    contribution, which example-count weights would break."""
    if view.is_private() and view["training.weighting"] == "examples":
        yield (
            "training.weighting",
            "'examples' is not allowed with a DP mechanism (DP bounds each client's "
            "contribution); use 'uniform' or 'auto'",
        )


def _fedsgd_is_one_step(view: View) -> Iterator[Finding]:
    """training.algorithm 'fedsgd' requires training.local_epochs 1."""
    if view["training.algorithm"] == "fedsgd" and view["training.local_epochs"] != 1:
        yield "training.local_epochs", "must be 1 with training.algorithm 'fedsgd'"


def _natural_partition_has_client_key(view: View) -> Iterator[Finding]:
    """data.partition 'natural' requires data.client_key; client_key exists only for csv/npz."""
    client_key = view["data.client_key"]
    source = view["data.source"]
    if client_key is not None and source not in USER_FILE_SOURCES:
        yield "data.client_key", f"only for csv and npz sources, not '{source}'"
    elif client_key is None and view["data.partition"] == "natural":
        yield (
            "data.client_key",
            "required with data.partition 'natural' (only csv and npz sources can have one)",
        )


def _path_only_for_user_files(view: View) -> Iterator[Finding]:
    """data.path is required for csv/npz sources and forbidden for the others."""
    source, path = view["data.source"], view["data.path"]
    if source in USER_FILE_SOURCES and path is None:
        yield "data.path", f"required with data.source '{source}'"
    elif source not in USER_FILE_SOURCES and path is not None:
        yield "data.path", f"only for csv and npz sources, not '{source}'"


def _columns_only_for_user_files(view: View) -> Iterator[Finding]:
    """data.features and data.label are only for csv/npz sources (they would be ignored)."""
    source = view["data.source"]
    if source in USER_FILE_SOURCES:
        return
    for field in ("features", "label"):
        if view[f"data.{field}"] is not None:
            yield f"data.{field}", f"only for csv and npz sources, not '{source}'"


def _shape_only_for_synthetic(view: View) -> Iterator[Finding]:
    """data.dim and data.classes only apply to the synthetic source (a non-default value for
    another source is a problem: it would be ignored)."""
    source = view["data.source"]
    if source == "synthetic":
        return
    defaults = DataSpec(source="synthetic")
    for field in ("dim", "classes"):
        if view[f"data.{field}"] != getattr(defaults, field):
            yield f"data.{field}", f"only for data.source 'synthetic', not '{source}'"


def _known_task(view: View) -> str | None:
    """The task a built-in or synthetic source has, regardless of data.task; None for files."""
    source = view["data.source"]
    if source in USER_FILE_SOURCES:
        return None
    if source == "synthetic":
        return "regression" if view["data.classes"] == 0 else "classification"
    return BUILTIN_TASKS[source]


def _task(view: View) -> str | None:
    """data.task, or the source's own task when it is 'auto' (None if only the data can tell)."""
    task = view["data.task"]
    return _known_task(view) if task == "auto" else task


def _target_standardisation_needs_regression(view: View) -> Iterator[Finding]:
    """data.standardize_target z-scores a regression target; class labels cannot be."""
    if view["data.standardize_target"] is True and _task(view) == "classification":
        yield "data.standardize_target", "needs a regression task (class labels stay as they are)"


def _task_fits_source(view: View) -> Iterator[Finding]:
    """data.task must match the task of a built-in or synthetic source (or be 'auto')."""
    task, known = view["data.task"], _known_task(view)
    if task != "auto" and known is not None and task != known:
        yield "data.task", f"data.source '{view['data.source']}' is a {known} dataset"


def _dirichlet_needs_classes(view: View) -> Iterator[Finding]:
    """data.partition 'dirichlet' skews labels, so it needs a classification task."""
    if view["data.partition"] == "dirichlet" and _task(view) == "regression":
        yield "data.partition", "'dirichlet' needs a classification task (labels to skew)"


def _cnn_needs_images(view: View) -> Iterator[Finding]:
    """model.type 'cnn' needs an image source (mnist5k, digits)."""
    source = view["data.source"]
    if view["model.type"] == "cnn" and source not in IMAGE_SOURCES:
        yield (
            "model.type",
            f"'cnn' needs an image source ({', '.join(IMAGE_SOURCES)}), not '{source}'",
        )


def _factory_matches_type(view: View) -> Iterator[Finding]:
    """model.factory is required when model.type is 'factory' and forbidden otherwise."""
    kind, factory = view["model.type"], view["model.factory"]
    if kind == "factory" and factory is None:
        yield "model.factory", "required with model.type 'factory'"
    elif kind != "factory" and factory is not None:
        yield "model.factory", f"only used with model.type 'factory' (it is '{kind}')"


def _zeros_only_for_logreg(view: View) -> Iterator[Finding]:
    """model.initializer 'zeros' only for logreg: hidden units started equal stay equal."""
    kind = view["model.type"]
    if view["model.initializer"] == "zeros" and kind != "logreg":
        yield (
            "model.initializer",
            f"'zeros' is for model.type 'logreg' only (the hidden units of '{kind}' would start "
            "and stay identical)",
        )


def _bias_only_for_builtin_models(view: View) -> Iterator[Finding]:
    """model.bias shapes the built-in models' output layer; a factory's model is its own."""
    if view["model.bias"] is False and view["model.type"] == "factory":
        yield "model.bias", "only for the built-in models (a factory builds its own layers)"


def _decay_needs_averaging(view: View) -> Iterator[Finding]:
    """training.averaging.decay shapes the mean over training.averaging.suffix."""
    if view["training.averaging.suffix"] is None and view["training.averaging.decay"] != 1.0:
        yield "training.averaging.decay", "only used with training.averaging.suffix"


RULES: tuple[Rule, ...] = (
    _cohort_fits_population,
    _noise_is_specified_once,
    _no_noise_settings_without_mechanism,
    _budget_covers_target,
    _pld_needs_poisson,
    _delta_below_one_over_population,
    _dp_weighs_clients_uniformly,
    _fedsgd_is_one_step,
    _natural_partition_has_client_key,
    _path_only_for_user_files,
    _columns_only_for_user_files,
    _shape_only_for_synthetic,
    _task_fits_source,
    _target_standardisation_needs_regression,
    _dirichlet_needs_classes,
    _cnn_needs_images,
    _factory_matches_type,
    _zeros_only_for_logreg,
    _bias_only_for_builtin_models,
    _decay_needs_averaging,
    _fields_match_mechanism,
    _modelmix_is_dpsgd_accounted_with_rdp,
    _dssgd_settings,
    _distributed_needs_rdp_and_poisson,
    _bits_fit_cohort,
    _secagg_sums_integers,
    _secagg_graph_fits_cohort,
    _dpsgd_runs_plain_sgd_in_fedavg,
    _schedule_has_its_parameters,
    _user_level_tops_dpsgd,
)


def rule_problems(view: View) -> Iterator[Finding]:
    """Runs every rule on the fields that passed per-field validation."""
    for rule in RULES:
        try:
            yield from rule(view)
        except Unusable:
            continue
