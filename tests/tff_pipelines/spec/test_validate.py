import math

import pytest

from tests.tff_pipelines.spec.spec_samples import problems_of
from tff_pipelines.spec import SpecError, parse_spec
from tff_pipelines.spec.validate import format_path

BASE = {"data": {"source": "digits"}}


def with_(section: str, **fields) -> dict:
    return (
        {**BASE, section: fields} if section != "data" else {"data": {"source": "digits", **fields}}
    )


@pytest.mark.parametrize(
    ("mapping", "path", "message"),
    [
        (with_("training", rounds="ten"), "training.rounds", "must be an integer"),
        (with_("training", rounds=True), "training.rounds", "must be an integer"),
        (with_("training", rounds=2.5), "training.rounds", "must be an integer"),
        (with_("data", standardize="yes"), "data.standardize", "must be true or false"),
        (with_("privacy", clip="1"), "privacy.clip", "must be a finite number"),
        (with_("privacy", clip=math.nan), "privacy.clip", "must be a finite number"),
        (
            with_("privacy", max_epsilon=math.inf),
            "privacy.max_epsilon",
            "must be a finite number or null",
        ),
        (with_("data", label=3), "data.label", "must be a string or null"),
        (with_("model", hidden=64), "model.hidden", "must be a list"),
        (with_("model", hidden=[64, 0]), "model.hidden[1]", "must be at least 1"),
        (with_("model", filters=[32, "x"]), "model.filters[1]", "must be an integer"),
        (with_("data", features=[1]), "data.features[0]", "must be a string"),
        (with_("training", rounds=0), "training.rounds", "must be at least 1"),
        (with_("privacy", clip=0), "privacy.clip", "must be greater than 0"),
        (with_("privacy", delta=1), "privacy.delta", "must be less than 1"),
        (with_("data", test_fraction=-0.1), "data.test_fraction", "must be at least 0"),
        (with_("model", dropout=1.0), "model.dropout", "must be less than 1"),
        ({**BASE, "seed": 2**40}, "seed", "must be at most 2147483647"),
        (
            {**BASE, "name": "../x"},
            "name",
            "may only use letters, digits, '_', '.' and '-', and not start with '.' or '-'",
        ),
        (
            with_("model", factory="not a factory"),
            "model.factory",
            "must look like 'package.module:function'",
        ),
        ({**BASE, "training": 3}, "training", "must be a mapping"),
        ({**BASE, "model": 3}, "model", "must be one of: logreg, mlp, cnn, factory or a mapping"),
        ({}, "data", "required field is missing"),
        ({"data": {}}, "data.source", "required field is missing"),
        (
            with_("training", client_optimizer={"name": "adam"}),
            "training.client_optimizer.learning_rate",
            "required field is missing",
        ),
        (
            with_(
                "training", client_optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 2}
            ),
            "training.client_optimizer.momentum",
            "must be at most 1.0",
        ),
        (
            with_("training", server_optimizer="adam"),
            "training.server_optimizer",
            "must be a mapping",
        ),
    ],
)
def test_per_field_problems(mapping, path, message):
    assert problems_of(mapping) == {path: message}


def test_enum_problems_list_allowed_values_and_suggest():
    problems = problems_of(with_("training", algorithm="fedavgg", sampling="random"))
    assert problems == {
        "training.algorithm": 'must be one of: "fedavg", "fedsgd", "dssgd"; '
        "did you mean 'fedavg'?",
        "training.sampling": 'must be one of: "fixed", "poisson", "round_robin"',
    }


def test_did_you_mean_at_top_level_in_sections_and_in_optimizers():
    problems = problems_of(
        {
            **BASE,
            "trainig": {},
            "privacy": {"mechanizm": "gaussian"},
            "training": {"client_optimizer": {"name": "adam", "learning_rate": 0.1, "beta1": 0.9}},
        }
    )
    assert problems == {
        "trainig": "unknown field; did you mean 'training'?",
        "privacy.mechanizm": "unknown field; did you mean 'mechanism'?",
        "training.client_optimizer.beta1": "unknown field; did you mean 'beta_1'?",
    }


def test_hyperparameter_of_another_optimizer_is_unknown():
    problems = problems_of(
        with_("training", client_optimizer={"name": "adam", "learning_rate": 0.1, "momentum": 0.9})
    )
    assert list(problems) == ["training.client_optimizer.momentum"]
    assert problems["training.client_optimizer.momentum"].startswith("unknown field")


def test_ints_are_accepted_where_floats_are_expected_and_stored_as_floats():
    spec = parse_spec(with_("privacy", clip=2))
    assert spec.privacy.clip == 2.0 and isinstance(spec.privacy.clip, float)


def test_integral_floats_are_accepted_as_ints_and_stored_as_ints():
    spec = parse_spec(with_("training", rounds=3.0))
    assert spec.training.rounds == 3 and isinstance(spec.training.rounds, int)


def test_every_problem_is_reported_at_once():
    mapping = {
        "data": {"source": "mnist", "clients": 0},
        "model": {"type": "mlp", "hidden": [0]},
        "training": {"rounds": True},
        "trainig": {},
    }
    with pytest.raises(SpecError) as caught:
        parse_spec(mapping, source="five.yaml")
    assert sorted(p.path for p in caught.value.problems) == [
        "data.clients",
        "data.source",
        "model.hidden[0]",
        "trainig",
        "training.rounds",
    ]
    assert all(p.file == "five.yaml" for p in caught.value.problems)


def test_format_path():
    assert format_path(["model", "hidden", 1]) == "model.hidden[1]"
    assert format_path([]) == ""
