import jsonschema
import pytest
import yaml

from tests.tff_pipelines.spec.spec_samples import QUICKSTART_YAML
from tff_pipelines.spec import json_schema, parse_spec


def _leaf_fields(node, prefix=""):
    """(path, schema) of every field, descending into sections and the model's mapping form."""
    for name, sub in node.get("properties", {}).items():
        objects = [sub] if sub.get("type") == "object" else []
        objects += [alt for alt in sub.get("anyOf", []) if alt.get("type") == "object"]
        if objects and "allOf" not in objects[0]:
            yield f"{prefix}{name}", sub
            yield from _leaf_fields(objects[0], prefix=f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", sub


def test_schema_is_valid_draft_2020_12():
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_valid_spec_file_validates_against_the_schema():
    validator = jsonschema.Draft202012Validator(json_schema())
    quickstart = yaml.safe_load(QUICKSTART_YAML.replace("1e-5", "1.0e-5"))
    assert not list(validator.iter_errors(quickstart))
    assert not list(validator.iter_errors({"data": {"source": "digits"}, "model": "cnn"}))


def test_resolved_spec_validates_against_the_schema():
    spec = parse_spec({"data": {"source": "synthetic"}, "seed": None})
    jsonschema.Draft202012Validator(json_schema()).validate(spec.to_dict())


def test_every_field_has_a_description_and_a_default_unless_required():
    fields = dict(_leaf_fields(json_schema()))
    assert "training.client_optimizer" in fields
    assert "privacy.noise_multiplier" in fields
    for path, node in fields.items():
        assert node.get("description"), path
        if path not in ("data", "data.source"):
            assert "default" in node, path


def test_sections_reject_unknown_fields_and_enums_are_listed():
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["training"]["additionalProperties"] is False
    assert schema["properties"]["privacy"]["properties"]["mechanism"]["enum"] == [
        "none",
        "gaussian",
        "smm",
        "ddg",
        "skellam",
        "dpsgd",
        "svt",
    ]
    assert schema["required"] == ["data"]
    assert schema["properties"]["data"]["required"] == ["source"]


@pytest.mark.parametrize(
    ("optimizer", "ok"),
    [
        ({"name": "adam", "learning_rate": 0.1, "beta_1": 0.5}, True),
        ({"name": "adam", "learning_rate": 0.1, "momentum": 0.5}, False),
        ({"learning_rate": 0.1, "momentum": 0.5}, True),
        ({"name": "sgd"}, False),
        ({"name": "rmsprop", "learning_rate": 0.1, "decay": 1.5}, False),
    ],
)
def test_optimizer_hyperparameters_depend_on_name(optimizer, ok):
    spec = {"data": {"source": "digits"}, "training": {"client_optimizer": optimizer}}
    assert jsonschema.Draft202012Validator(json_schema()).is_valid(spec) is ok


def test_json_schema_returns_a_fresh_copy():
    json_schema()["properties"].clear()
    assert "data" in json_schema()["properties"]
