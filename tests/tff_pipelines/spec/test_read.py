import pytest

from tests.tff_pipelines.spec.spec_samples import QUICKSTART_TOML, QUICKSTART_YAML
from tff_pipelines.spec import SpecError, load_spec
from tff_pipelines.spec.read import parse_value, read_spec_file


def _only_problem(path):
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (problem,) = caught.value.problems
    assert problem.file == str(path)
    return problem


def test_yaml_and_toml_give_equal_specs(tmp_path):
    (tmp_path / "a.yaml").write_text(QUICKSTART_YAML)
    (tmp_path / "a.yml").write_text(QUICKSTART_YAML)
    (tmp_path / "a.toml").write_text(QUICKSTART_TOML)
    from_yaml = load_spec(tmp_path / "a.yaml")
    assert load_spec(tmp_path / "a.yml") == from_yaml
    assert load_spec(tmp_path / "a.toml") == from_yaml
    assert from_yaml.privacy.max_epsilon == 10.0
    assert isinstance(from_yaml.privacy.max_epsilon, float)


def test_unknown_extension(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text("{}")
    assert "unknown extension '.json'" in _only_problem(path).message


def test_missing_file(tmp_path):
    assert "cannot read" in _only_problem(tmp_path / "nope.yaml").message


def test_yaml_parse_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  source: digits\n training: [1,\n")
    message = _only_problem(path).message
    assert message.startswith("YAML parse error: line 3")


def test_toml_parse_error_names_the_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[data]\nsource = "digits"\nclients = \n')
    message = _only_problem(path).message
    assert message.startswith("TOML parse error") and "line 3" in message


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    assert _only_problem(path).message == "the file is empty"


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- data\n- model\n")
    assert "must be a mapping, not list" in _only_problem(path).message


def test_duplicate_yaml_keys_are_rejected(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("data:\n  source: digits\ntraining:\n  rounds: 3\n  rounds: 4\n")
    message = _only_problem(path).message
    assert "duplicate key 'rounds'" in message and "line 5" in message


def test_yaml_exponent_floats_without_a_dot_are_numbers(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("delta: 1e-5\nclip: 2E+1\nword: e5\n")
    assert read_spec_file(path) == {"delta": 1e-5, "clip": 20.0, "word": "e5"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("0.5", 0.5),
        ("1e-5", 1e-5),
        ("none", "none"),
        ("null", None),
        ("[64,32]", [64, 32]),
    ],
)
def test_parse_value(text, value):
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)
