import pytest

from tests.tff_pipelines.spec.spec_samples import problems_of, write_quickstart
from tff_pipelines.spec import SpecError, load_spec, parse_spec

BASE = {"data": {"source": "digits"}}


def test_overrides_parse_values_as_yaml(tmp_path):
    spec = load_spec(
        write_quickstart(tmp_path),
        overrides=[
            "training.rounds=3",
            "data.dirichlet_alpha=0.25",
            "privacy.mechanism=none",
            "privacy.noise_multiplier=null",
            "privacy.max_epsilon=null",
            "model.hidden=[16,8]",
            "output.plots=true",
            "name=tuned",
        ],
    )
    assert spec.training.rounds == 3
    assert spec.data.dirichlet_alpha == 0.25
    assert spec.privacy.mechanism == "none"
    assert spec.privacy.noise_multiplier is None
    assert spec.model.hidden == (16, 8)
    assert spec.output.plots is True
    assert spec.output.dir == "out/tuned"


def test_override_creates_missing_sections():
    spec = parse_spec(BASE, overrides=["training.client_optimizer.learning_rate=0.02"])
    assert spec.training.client_optimizer.name == "sgd"
    assert spec.training.client_optimizer.learning_rate == 0.02


def test_override_of_a_whole_optimizer_with_a_flow_mapping():
    spec = parse_spec(
        BASE, overrides=["training.server_optimizer={name: adam, learning_rate: 0.003}"]
    )
    assert spec.training.server_optimizer.kwargs() == {"learning_rate": 0.003}
    assert spec.training.server_optimizer.name == "adam"


def test_override_model_shorthand_and_field_on_shorthand():
    assert parse_spec({**BASE, "model": "logreg"}, overrides=["model=cnn"]).model.type == "cnn"
    spec = parse_spec({**BASE, "model": "mlp"}, overrides=["model.hidden=[4]"])
    assert (spec.model.type, spec.model.hidden) == ("mlp", (4,))


def test_seed_null_override_draws_a_seed():
    assert isinstance(parse_spec(BASE, overrides=["seed=null"]).seed, int)


@pytest.mark.parametrize(
    ("override", "path", "message"),
    [
        ("trainig.rounds=3", "trainig", "unknown field; did you mean 'training'?"),
        ("training.round=3", "training.round", "unknown field; did you mean 'rounds'?"),
        (
            "training.rounds.x=3",
            "training.rounds.x",
            "unknown field: training.rounds has no fields",
        ),
        ("training.rounds", "training.rounds", "expected section.field=value"),
        ("=3", "=3", "expected section.field=value"),
        (
            "training.client_optimizer.momentun=0.5",
            "training.client_optimizer.momentun",
            "unknown field; did you mean 'momentum'?",
        ),
    ],
)
def test_bad_override_paths(override, path, message):
    with pytest.raises(SpecError) as caught:
        parse_spec(BASE, source="s.yaml", overrides=[override])
    (problem,) = caught.value.problems
    assert (problem.file, problem.path, problem.message) == ("(from --set)", path, message)


def test_problems_in_override_values_say_from_set():
    with pytest.raises(SpecError) as caught:
        parse_spec(
            {**BASE, "training": {"local_epochs": 0}},
            source="s.yaml",
            overrides=["training.rounds=many", "training.clients_per_round=1000"],
        )
    rendered = [str(problem) for problem in caught.value.problems]
    assert sorted(rendered) == sorted(
        [
            "s.yaml: training.local_epochs = 0: must be at least 1",
            '(from --set): training.rounds = "many": must be an integer',
            "(from --set): training.clients_per_round = 1000: must be at most data.clients (100)",
        ]
    )


def test_override_does_not_mutate_the_callers_mapping():
    mapping = {"data": {"source": "digits"}, "model": "mlp"}
    parse_spec(mapping, overrides=["data.clients=70", "model.hidden=[3]"])
    assert mapping == {"data": {"source": "digits"}, "model": "mlp"}


def test_unparseable_override_value():
    problems = problems_of(BASE, overrides=("model.hidden=[1,",))
    assert problems["model.hidden"].startswith("cannot parse the value")
