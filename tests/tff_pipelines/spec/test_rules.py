"""One test per cross-field rule: the rule fires, and the nearest valid spec passes."""

import pytest

from tests.tff_pipelines.spec.spec_samples import problems_of
from tff_pipelines.spec.rules import RULES

DIGITS = {"source": "digits"}
GAUSSIAN = {"mechanism": "gaussian", "noise_multiplier": 1.0}


def spec(data=None, **sections) -> dict:
    return {"data": {**DIGITS, **(data or {})}, **sections}


def test_cohort_must_fit_population():
    bad = spec({"clients": 20}, training={"clients_per_round": 21})
    assert problems_of(bad) == {"training.clients_per_round": "must be at most data.clients (20)"}
    assert problems_of(spec({"clients": 20}, training={"clients_per_round": 20})) == {}


def test_dp_mechanism_needs_noise_or_target():
    problems = problems_of(spec(privacy={"mechanism": "gaussian"}))
    assert problems == {
        "privacy.noise_multiplier": "mechanism 'gaussian' needs privacy.noise_multiplier or "
        "privacy.target_epsilon"
    }
    assert problems_of(spec(privacy={"mechanism": "gaussian", "target_epsilon": 3})) == {}


def test_dp_mechanism_rejects_both_noise_and_target():
    problems = problems_of(spec(privacy={**GAUSSIAN, "target_epsilon": 3}))
    message = "set only one of privacy.noise_multiplier and privacy.target_epsilon"
    assert problems == {"privacy.noise_multiplier": message, "privacy.target_epsilon": message}


@pytest.mark.parametrize("field", ["noise_multiplier", "target_epsilon", "max_epsilon"])
def test_no_mechanism_rejects_noise_settings(field):
    problems = problems_of(spec(privacy={field: 1.0}))
    assert list(problems) == [f"privacy.{field}"]
    assert "ignored because privacy.mechanism is 'none'" in problems[f"privacy.{field}"]


def test_max_epsilon_must_cover_target():
    problems = problems_of(
        spec(privacy={"mechanism": "gaussian", "target_epsilon": 4, "max_epsilon": 3})
    )
    assert problems == {"privacy.max_epsilon": "must be at least privacy.target_epsilon (4)"}
    ok = spec(privacy={"mechanism": "gaussian", "target_epsilon": 4, "max_epsilon": 4})
    assert problems_of(ok) == {}


def test_pld_needs_poisson_sampling():
    problems = problems_of(spec(privacy={**GAUSSIAN, "accountant": "pld"}))
    assert list(problems) == ["privacy.accountant"]
    assert "training.sampling 'poisson'" in problems["privacy.accountant"]
    ok = spec(privacy={**GAUSSIAN, "accountant": "pld"}, training={"sampling": "poisson"})
    assert problems_of(ok) == {}


def test_delta_must_be_below_one_over_population():
    problems = problems_of(spec({"clients": 1000}, privacy={**GAUSSIAN, "delta": 0.001}))
    assert problems == {
        "privacy.delta": "must be less than 1 / data.clients = 0.001 with a DP mechanism "
        "(the privacy unit is one client)"
    }
    assert problems_of(spec({"clients": 1000}, privacy={**GAUSSIAN, "delta": 0.0009})) == {}
    assert problems_of(spec({"clients": 1000}, privacy={"delta": 0.01})) == {}


def test_dp_forbids_example_weighting():
    problems = problems_of(spec(privacy=GAUSSIAN, training={"weighting": "examples"}))
    assert list(problems) == ["training.weighting"]
    assert problems_of(spec(privacy=GAUSSIAN, training={"weighting": "uniform"})) == {}
    assert problems_of(spec(training={"weighting": "examples"})) == {}


def test_fedsgd_has_one_local_epoch():
    problems = problems_of(spec(training={"algorithm": "fedsgd", "local_epochs": 2}))
    assert problems == {"training.local_epochs": "must be 1 with training.algorithm 'fedsgd'"}
    assert problems_of(spec(training={"algorithm": "fedsgd"})) == {}


def test_natural_partition_needs_client_key():
    problems = problems_of(
        {"data": {"source": "csv", "path": "d.csv", "partition": "natural", "clients": 10}}
    )
    assert list(problems) == ["data.client_key"]
    ok = {
        "data": {
            "source": "csv",
            "path": "d.csv",
            "partition": "natural",
            "client_key": "user",
            "clients": 10,
        }
    }
    assert problems_of(ok) == {}


def test_client_key_only_for_user_files():
    assert problems_of(spec({"client_key": "user"})) == {
        "data.client_key": "only for csv and npz sources, not 'digits'"
    }


@pytest.mark.parametrize("source", ["csv", "npz"])
def test_path_required_for_user_files(source):
    assert problems_of({"data": {"source": source}}) == {
        "data.path": f"required with data.source '{source}'"
    }


def test_path_forbidden_for_builtin_sources():
    assert problems_of(spec({"path": "x.csv"})) == {
        "data.path": "only for csv and npz sources, not 'digits'"
    }


@pytest.mark.parametrize("field", ["features", "label"])
def test_columns_only_for_user_files(field):
    assert list(problems_of(spec({field: "x"}))) == [f"data.{field}"]


@pytest.mark.parametrize(("field", "value"), [("dim", 5), ("classes", 0)])
def test_dim_and_classes_only_for_synthetic(field, value):
    assert problems_of(spec({field: value})) == {
        f"data.{field}": "only for data.source 'synthetic', not 'digits'"
    }
    assert problems_of({"data": {"source": "synthetic", field: value}}) == {}


@pytest.mark.parametrize(
    "data",
    [
        {"source": "boston"},
        {"source": "synthetic", "classes": 0},
        {"source": "csv", "path": "d.csv", "task": "regression"},
    ],
)
def test_dirichlet_needs_classification(data):
    assert list(problems_of({"data": {**data, "partition": "dirichlet"}})) == ["data.partition"]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"source": "digits"}, True),
        ({"source": "synthetic"}, True),
        ({"source": "csv", "path": "d.csv", "task": "classification"}, True),
        ({"source": "boston"}, False),
        ({"source": "synthetic", "classes": 0}, False),
        ({"source": "csv", "path": "d.csv"}, False),  # task auto: only the data can tell
    ],
)
def test_target_standardisation_needs_regression(data, problem):
    expected = (
        {"data.standardize_target": "needs a regression task (class labels stay as they are)"}
        if problem
        else {}
    )
    assert problems_of({"data": {**data, "standardize_target": True}}) == expected


@pytest.mark.parametrize(
    ("data", "known"),
    [
        ({"source": "boston", "task": "classification"}, "regression"),
        ({"source": "digits", "task": "regression"}, "classification"),
        ({"source": "synthetic", "classes": 0, "task": "classification"}, "regression"),
    ],
)
def test_task_must_fit_builtin_source(data, known):
    assert problems_of({"data": data}) == {
        "data.task": f"data.source '{data['source']}' is a {known} dataset"
    }
    assert problems_of({"data": {**data, "task": "auto"}}) == {}
    assert problems_of({"data": {**data, "task": known}}) == {}


def test_builtin_task_table_covers_every_builtin_source():
    from tff_pipelines.spec.sections import BUILTIN_TASKS, SOURCES, USER_FILE_SOURCES

    assert set(BUILTIN_TASKS) == set(SOURCES) - {"synthetic", *USER_FILE_SOURCES}


def test_cnn_needs_image_source():
    assert problems_of({"data": {"source": "pima"}, "model": "cnn"}) == {
        "model.type": "'cnn' needs an image source (mnist5k, digits), not 'pima'"
    }
    assert problems_of({"data": {"source": "mnist5k"}, "model": "cnn"}) == {}


def test_factory_required_for_factory_type():
    assert problems_of(spec(model={"type": "factory"})) == {
        "model.factory": "required with model.type 'factory'"
    }


def test_factory_forbidden_for_other_types():
    assert problems_of(spec(model={"type": "mlp", "factory": "pkg.models:build"})) == {
        "model.factory": "only used with model.type 'factory' (it is 'mlp')"
    }


def test_factory_alone_implies_factory_type():
    from tff_pipelines.spec import parse_spec

    parsed = parse_spec(spec(model={"factory": "pkg.models:build"}))
    assert (parsed.model.type, parsed.model.factory) == ("factory", "pkg.models:build")


SMM = {"mechanism": "smm", "target_epsilon": 4.0}
POISSON = {"sampling": "poisson"}


def test_smm_takes_mu_not_noise_multiplier():
    assert problems_of(spec(privacy={"mechanism": "smm"}, training=POISSON)) == {
        "privacy.mu": "mechanism 'smm' needs privacy.mu or privacy.target_epsilon"
    }
    problems = problems_of(spec(privacy={**SMM, "noise_multiplier": 1.0}, training=POISSON))
    assert problems == {
        "privacy.noise_multiplier": "is not used by mechanism 'smm' (only by gaussian, ddg, "
        "skellam, dpsgd); remove it"
    }
    assert problems_of(spec(privacy={"mechanism": "smm", "mu": 10.0}, training=POISSON)) == {}


@pytest.mark.parametrize(
    ("privacy", "field"),
    [
        ({**GAUSSIAN, "bits": 12}, "privacy.bits"),
        ({**GAUSSIAN, "rotation": "dft"}, "privacy.rotation"),
        ({"mechanism": "ddg", "noise_multiplier": 1.0, "mu": 3.0}, "privacy.mu"),
        ({**SMM, "beta": 0.1}, "privacy.beta"),
        (
            {"mechanism": "skellam", "target_epsilon": 1.0, "subsampling_bound": "tight"},
            "privacy.subsampling_bound",
        ),
    ],
)
def test_mechanism_specific_fields_only_where_read(privacy, field):
    assert list(problems_of(spec(privacy=privacy, training=POISSON))) == [field]


@pytest.mark.parametrize("mechanism", ["smm", "ddg", "skellam"])
def test_distributed_mechanisms_need_rdp_poisson_and_a_secure_sum(mechanism):
    privacy = {"mechanism": mechanism, "target_epsilon": 2.0}
    problems = problems_of(
        spec(
            {"clients": 50},
            privacy={**privacy, "accountant": "pld"},
            training={"sampling": "fixed", "clients_per_round": 10},
            secure_aggregation={"protocol": "none"},
        )
    )
    assert set(problems) == {
        "privacy.accountant",
        "training.sampling",
        "secure_aggregation.protocol",
    }
    everyone = spec({"clients": 10}, privacy=privacy, training={"sampling": "fixed"})
    assert problems_of(everyone) == {}
    zcdp = spec({"clients": 10}, privacy={**privacy, "accountant": "zcdp"})
    assert list(problems_of(zcdp)) == ["privacy.accountant"]


@pytest.mark.parametrize("mechanism", ["smm", "ddg", "skellam"])
def test_bits_must_hold_the_cohort(mechanism):
    privacy = {"mechanism": mechanism, "target_epsilon": 2.0, "bits": 4}
    training = {**POISSON, "clients_per_round": 100}
    problems = problems_of(spec({"clients": 1000}, privacy=privacy, training=training))
    assert list(problems) == ["privacy.bits"]
    assert "need at least" in problems["privacy.bits"]
    fits = spec({"clients": 1000}, privacy={**privacy, "bits": 8}, training=training)
    assert problems_of(fits) == {}


def test_rules_skip_fields_that_already_have_a_problem():
    problems = problems_of(spec({"clients": "many"}, training={"clients_per_round": 500}))
    assert problems == {"data.clients": "must be an integer"}


def test_every_rule_is_documented():
    for rule in RULES:
        assert rule.__doc__ and rule.__doc__.strip(), rule.__name__


SECAGG_PRIVACY = {"mechanism": "skellam", "target_epsilon": 4.0}
SECAGG_TRAINING = {**POISSON, "clients_per_round": 20}


def secagg_spec(**settings) -> dict:
    return spec(
        {"clients": 200},
        privacy=SECAGG_PRIVACY,
        training=SECAGG_TRAINING,
        secure_aggregation={"protocol": "secagg", **settings},
    )


def test_secagg_with_defaults_and_with_every_setting_is_valid():
    assert problems_of(secagg_spec()) == {}
    settings = {"neighbours": 10, "threshold": 7, "dropout_rate": 0.1, "max_dropout": 0.3}
    assert problems_of(secagg_spec(**settings)) == {}
    assert problems_of(secagg_spec(neighbours="all", threshold=12)) == {}


def test_secagg_sums_integers_only():
    bad = spec(privacy=GAUSSIAN, secure_aggregation={"protocol": "secagg"})
    assert list(problems_of(bad)) == ["secure_aggregation.protocol"]
    assert "smm, ddg, skellam" in problems_of(bad)["secure_aggregation.protocol"]


@pytest.mark.parametrize("name, value", [("neighbours", 4), ("threshold", 3), ("max_dropout", 0.1)])
def test_secagg_settings_need_the_secagg_protocol(name, value):
    simulated = spec(
        {"clients": 200},
        privacy=SECAGG_PRIVACY,
        training=SECAGG_TRAINING,
        secure_aggregation={"protocol": "simulated", name: value},
    )
    problems = problems_of(simulated)
    assert list(problems) == [f"secure_aggregation.{name}"]
    assert "only by secure_aggregation.protocol 'secagg'" in problems[f"secure_aggregation.{name}"]


@pytest.mark.parametrize(
    "settings, path, words",
    [
        ({"neighbours": 20}, "secure_aggregation.neighbours", "below training.clients_per_round"),
        ({"neighbours": 7}, "secure_aggregation.neighbours", "must be even"),
        ({"neighbours": 10, "threshold": 5}, "secure_aggregation.threshold", "exceed half"),
        ({"neighbours": 10, "threshold": 11}, "secure_aggregation.threshold", "cannot exceed"),
        ({"neighbours": "all", "threshold": 9}, "secure_aggregation.threshold", "exceed half"),
        ({"dropout_rate": 0.2}, "secure_aggregation.max_dropout", "must exceed dropout_rate"),
        (
            {"dropout_rate": 0.2, "max_dropout": 0.2},
            "secure_aggregation.max_dropout",
            "must exceed dropout_rate",
        ),
    ],
)
def test_unsafe_or_unusable_secagg_settings_name_the_field(settings, path, words):
    problems = problems_of(secagg_spec(**settings))
    assert list(problems) == [path]
    assert words in problems[path]


def test_secagg_settings_have_types_and_bounds():
    problems = problems_of(
        secagg_spec(neighbours="most", threshold=0, dropout_rate=1.0, max_dropout=-0.1)
    )
    assert set(problems) == {
        "secure_aggregation.neighbours",
        "secure_aggregation.threshold",
        "secure_aggregation.dropout_rate",
        "secure_aggregation.max_dropout",
    }
    assert "all" in problems["secure_aggregation.neighbours"]


def test_dpsgd_runs_plain_sgd_in_fedavg_with_real_noise():
    privacy = {"mechanism": "dpsgd", "noise_multiplier": 0, "accountant": "pld"}
    training = {
        "algorithm": "fedsgd",
        "client_optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
    }
    problems = problems_of(spec(privacy=privacy, training=training))
    assert set(problems) == {
        "training.algorithm",
        "training.client_optimizer",
        "privacy.noise_multiplier",
    }
    fine = spec(
        privacy={"mechanism": "dpsgd", "noise_multiplier": 1.0},
        training={"client_optimizer": {"name": "sgd", "learning_rate": 0.1}},
    )
    assert problems_of(fine) == {}


DPSGD = {"mechanism": "dpsgd", "max_epsilon": 7.0}


def test_a_schedule_takes_exactly_its_kinds_parameters():
    schedule = {"kind": "step", "initial_sigma": 10.0, "factor": 0.7, "power": 2.0}
    problems = problems_of(spec(privacy={**DPSGD, "schedule": schedule}))
    assert problems == {
        "privacy.schedule.power": "is not used by a step schedule (it takes initial_sigma, "
        "factor, period); remove it",
        "privacy.schedule.period": "is required by a step schedule",
    }
    schedule = {"kind": "step", "initial_sigma": 10.0, "factor": 0.7, "period": 10}
    assert problems_of(spec(privacy={**DPSGD, "schedule": schedule})) == {}


def test_a_schedule_replaces_the_noise_fields_and_drives_gaussian_noise_only():
    schedule = {"kind": "constant", "initial_sigma": 8.0}
    privacy = {**DPSGD, "noise_multiplier": 1.0, "target_epsilon": 2.0, "schedule": schedule}
    problems = problems_of(spec(privacy=privacy))
    assert set(problems) == {"privacy.noise_multiplier", "privacy.target_epsilon"}
    assert "privacy.schedule sets the noise of every round" in problems["privacy.target_epsilon"]
    smm = {"mechanism": "smm", "schedule": schedule}
    problems = problems_of(spec(privacy=smm, training={"sampling": "poisson"}))
    assert problems == {"privacy.schedule.kind": "noise schedules drive dpsgd, gaussian, not 'smm'"}
    gaussian = {"mechanism": "gaussian", "schedule": schedule}
    assert problems_of(spec(privacy=gaussian)) == {}
    validation = {
        "kind": "validation_based",
        "initial_sigma": 10.0,
        "period": 10,
        "factor": 0.8,
        "threshold": 0.01,
        "window": 5,
    }
    problems = problems_of(
        spec(privacy={**gaussian, "schedule": validation}, evaluation={"every": 1})
    )
    assert list(problems) == ["privacy.schedule.kind"]


def test_schedule_parameters_need_a_kind_and_validation_needs_every_round():
    problems = problems_of(
        spec(privacy={**DPSGD, "noise_multiplier": 1.0, "schedule": {"factor": 0.5}})
    )
    assert problems == {
        "privacy.schedule.factor": "is not used without privacy.schedule.kind; remove it"
    }
    schedule = {
        "kind": "validation_based",
        "initial_sigma": 10.0,
        "period": 10,
        "factor": 0.8,
        "threshold": 0.01,
        "window": 5,
    }
    problems = problems_of(spec(privacy={**DPSGD, "schedule": schedule}, evaluation={"every": 5}))
    assert list(problems) == ["evaluation.every"]
    assert problems_of(spec(privacy={**DPSGD, "schedule": schedule}, evaluation={"every": 1})) == {}


def test_user_level_noise_tops_dpsgd_with_one_noise_setting():
    both = {"mechanism": "gaussian", "noise_multiplier": 1.0, "target_epsilon": 2.0}
    problems = problems_of(spec(privacy={**GAUSSIAN, "user_level": both}))
    assert set(problems) == {"privacy.user_level.mechanism", "privacy.user_level.noise_multiplier"}
    assert "on top of dpsgd only" in problems["privacy.user_level.mechanism"]
    dpsgd = {"mechanism": "dpsgd", "noise_multiplier": 1.0}
    fine = {"mechanism": "gaussian", "target_epsilon": 2.0}
    assert problems_of(spec(privacy={**dpsgd, "user_level": fine})) == {}
    unused = {"noise_multiplier": 1.0}
    problems = problems_of(spec(privacy={**dpsgd, "user_level": unused}))
    assert problems == {
        "privacy.user_level.noise_multiplier": "is not used without "
        "privacy.user_level.mechanism; remove it"
    }


def test_distributed_user_level_reads_the_distributed_settings_and_needs_a_secure_sum():
    dpsgd = {"mechanism": "dpsgd", "noise_multiplier": 1.0, "bits": 18, "rotation": "dft"}
    smm = {**dpsgd, "mu": 50.0, "user_level": {"mechanism": "smm", "noise_multiplier": 2.0}}
    problems = problems_of(spec(privacy=smm, training={"sampling": "poisson"}))
    assert problems == {
        "privacy.user_level.noise_multiplier": "smm's noise is privacy.mu; remove this"
    }
    skellam = {**dpsgd, "user_level": {"mechanism": "skellam", "target_epsilon": 3.0}}
    assert problems_of(spec(privacy=skellam, training={"sampling": "poisson"})) == {}
    problems = problems_of(
        spec(
            privacy=skellam,
            training={"sampling": "fixed"},
            secure_aggregation={"protocol": "none"},
        )
    )
    assert set(problems) == {"training.sampling", "secure_aggregation.protocol"}
    assert "needs a secure sum" in problems["secure_aggregation.protocol"]
    secagg = spec(
        privacy=skellam,
        training={"sampling": "poisson"},
        secure_aggregation={"protocol": "secagg", "neighbours": 4},
    )
    assert problems_of(secagg) == {}
    plain = {**dpsgd, "user_level": {"mechanism": "gaussian", "target_epsilon": 3.0}}
    assert set(problems_of(spec(privacy=plain))) == {"privacy.bits", "privacy.rotation"}


def test_modelmix_varies_dpsgd_accounted_with_rdp():
    dpsgd = {"mechanism": "dpsgd", "noise_multiplier": 1.0}
    modelmix = {"modelmix": {"tau": 0.15}}
    assert problems_of(spec(training=modelmix, privacy=dpsgd)) == {}
    assert problems_of(spec(training=modelmix, privacy=GAUSSIAN)) == {
        "training.modelmix.tau": "ModelMix varies DP-SGD: needs privacy.mechanism 'dpsgd', "
        "not 'gaussian'"
    }
    for accountant in ("zcdp", "pld"):
        problems = problems_of(spec(training=modelmix, privacy={**dpsgd, "accountant": accountant}))
        assert problems == {
            "privacy.accountant": "ModelMix is accounted with its own RDP curve; use 'rdp'"
        }
    assert problems_of(spec(privacy={**dpsgd, "accountant": "pld"})) == {}
    assert problems_of(spec(training={"modelmix": {"server": False}}, privacy=dpsgd)) == {
        "training.modelmix.server": "is not used without training.modelmix.tau"
    }


@pytest.mark.parametrize(
    ("field", "value"), [("coordinate_clip_p", 25), ("subsampling_bound", "tight")]
)
def test_modelmix_fields_need_modelmix(field, value):
    dpsgd = {"mechanism": "dpsgd", "noise_multiplier": 1.0, field: value}
    assert problems_of(spec(training={"modelmix": {"tau": 0.15}}, privacy=dpsgd)) == {}
    problems = problems_of(spec(privacy=dpsgd))
    assert list(problems) == [f"privacy.{field}"]
    assert "dpsgd with training.modelmix" in problems[f"privacy.{field}"]


DSSGD = {"algorithm": "dssgd", "clients_per_round": 1, "sampling": "round_robin"}
SVT = {"mechanism": "svt", "upload_epsilon": 1.0}


def test_dssgd_uploads_with_svt_or_without_dp():
    bounded = {**DSSGD, "dssgd": {"bound": 0.01}}
    assert problems_of(spec(training=bounded, privacy=SVT)) == {}
    assert problems_of(spec(training=DSSGD)) == {}
    assert problems_of(spec(training={**DSSGD, "sampling": "fixed"})) == {}
    assert problems_of(
        spec(training=bounded, privacy={"mechanism": "dpsgd", "noise_multiplier": 1})
    ) == {"privacy.mechanism": "dssgd uploads with 'svt' or without DP ('none'), not 'dpsgd'"}
    assert problems_of(spec(training={**DSSGD, "sampling": "poisson"})) == {
        "training.sampling": "dssgd exchanges in round_robin or fixed (random) order, not 'poisson'"
    }
    momentum = {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}
    problems = problems_of(spec(training={**DSSGD, "client_optimizer": momentum}))
    assert list(problems) == ["training.client_optimizer"]


def test_svt_needs_a_bound_an_upload_and_rdp():
    problems = problems_of(
        spec(
            training={**DSSGD, "dssgd": {"upload_fraction": 0.0}},
            privacy={**SVT, "accountant": "zcdp"},
        )
    )
    assert problems == {
        "training.dssgd.bound": "svt needs a bound: its sensitivity is 2 x bound",
        "training.dssgd.upload_fraction": "svt uploads nothing at 0: set it above 0",
        "privacy.accountant": "svt's pure-DP uploads are composed with RDP; use 'rdp'",
    }
    both = {**SVT, "target_epsilon": 5.0}
    problems = problems_of(spec(training={**DSSGD, "dssgd": {"bound": 0.01}}, privacy=both))
    assert set(problems) == {"privacy.upload_epsilon", "privacy.target_epsilon"}


def test_dssgd_settings_belong_to_dssgd():
    problems = problems_of(
        spec(
            training={"sampling": "round_robin", "dssgd": {"upload_fraction": 0.5, "bound": 1.0}},
            privacy=SVT,
        )
    )
    assert problems == {
        "training.dssgd.upload_fraction": "is only used by training.algorithm 'dssgd'",
        "training.dssgd.bound": "is only used by training.algorithm 'dssgd'",
        "training.sampling": "'round_robin' is DSSGD's exchange order: needs 'dssgd'",
        "privacy.mechanism": "'svt' is DSSGD's upload: needs training.algorithm 'dssgd'",
    }
    problems = problems_of(spec(privacy={**GAUSSIAN, "upload_epsilon": 1.0}))
    assert list(problems) == ["privacy.upload_epsilon"]


def test_zero_initializer_is_for_logreg_only():
    assert problems_of(spec(model={"type": "logreg", "initializer": "zeros"})) == {}
    assert problems_of(spec(model={"type": "mlp", "initializer": "zeros"})) == {
        "model.initializer": "'zeros' is for model.type 'logreg' only (the hidden units of "
        "'mlp' would start and stay identical)"
    }


def test_a_bias_free_head_is_for_the_builtin_models_only():
    assert problems_of(spec(model={"type": "logreg", "bias": False})) == {}
    factory = {"type": "factory", "factory": "user_models:build"}
    assert problems_of(spec(model={**factory, "bias": False})) == {
        "model.bias": "only for the built-in models (a factory builds its own layers)"
    }
    assert problems_of(spec(model=factory)) == {}


def test_averaging_decay_needs_a_suffix():
    assert problems_of(spec(training={"averaging": {"suffix": 0.25, "decay": 0.9}})) == {}
    assert problems_of(spec(training={"averaging": {"decay": 0.9}})) == {
        "training.averaging.decay": "only used with training.averaging.suffix"
    }
