import os
import subprocess
import sys

import pytest

from tests.tff_pipelines.spec.spec_samples import write_quickstart
from tff_pipelines.spec import SpecError, dump_resolved, load_spec, parse_spec


def test_quickstart_loads_with_its_values(tmp_path):
    spec = load_spec(write_quickstart(tmp_path))
    assert spec.name == "quickstart"
    assert spec.seed == 7
    assert spec.data.source == "mnist5k"
    assert spec.model.hidden == (64, 32)
    assert spec.training.client_optimizer.kwargs() == {"learning_rate": 0.05, "momentum": 0.9}
    assert spec.training.server_optimizer.name == "adam"
    assert spec.privacy.noise_multiplier == 1.1
    assert spec.privacy.delta == 1e-5
    assert spec.output.dir == "out/quickstart"


def test_error_message_names_file_path_and_value(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "data:\n  source: digits\n  clients: 100\ntraining:\n  clients_per_round: 500\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == (
        "invalid spec (1 problem):\n"
        f"  {path}: training.clients_per_round = 500: must be at most data.clients (100)"
    )
    (problem,) = caught.value.problems
    assert (problem.file, problem.path, problem.value) == (
        str(path),
        "training.clients_per_round",
        500,
    )


def test_null_seed_draws_a_seed_that_is_recorded(tmp_path):
    spec = parse_spec({"seed": None, "data": {"source": "digits"}})
    assert isinstance(spec.seed, int) and 0 <= spec.seed < 2**31
    resolved = dump_resolved(spec, tmp_path / "spec.resolved.yaml")
    assert load_spec(resolved).seed == spec.seed


def test_omitted_seed_defaults_to_zero():
    assert parse_spec({"data": {"source": "digits"}}).seed == 0


def test_relative_data_path_is_relative_to_the_spec_file(tmp_path, monkeypatch):
    (tmp_path / "specs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    path = tmp_path / "specs" / "csv.yaml"
    path.write_text("data:\n  source: csv\n  path: ../data/train.csv\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    spec = load_spec(os.path.relpath(path))
    assert spec.data.path == str(tmp_path / "data" / "train.csv")
    assert spec.data.label == "label"


def test_absolute_data_path_is_kept(tmp_path):
    target = str(tmp_path / "d.npz")
    spec = parse_spec({"data": {"source": "npz", "path": target}}, base_dir="/nowhere")
    assert spec.data.path == target
    assert (spec.data.features, spec.data.label) == ("x", "y")


def test_parse_spec_resolves_relative_paths_against_base_dir(tmp_path):
    spec = parse_spec({"data": {"source": "csv", "path": "a.csv"}}, base_dir=tmp_path)
    assert spec.data.path == str(tmp_path / "a.csv")


def test_relative_output_dir_stays_relative_to_the_working_directory(tmp_path):
    spec = load_spec(write_quickstart(tmp_path))
    assert spec.output.dir == "out/quickstart"


def test_synthetic_examples_default():
    assert parse_spec({"data": {"source": "synthetic"}}).data.examples == 10_000
    assert parse_spec({"data": {"source": "digits"}}).data.examples is None
    assert parse_spec({"data": {"source": "digits", "examples": 500}}).data.examples == 500


@pytest.mark.parametrize(
    "mapping",
    [
        {"seed": None, "data": {"source": "synthetic", "dim": 5, "classes": 3}},
        {
            "data": {
                "source": "csv",
                "path": "d.csv",
                "features": ["a", "b"],
                "client_key": "u",
                "partition": "natural",
                "clients": 5,
            },
            "training": {"clients_per_round": 2},
        },
        {
            "data": {"source": "npz", "path": "d.npz"},
            "model": {"type": "factory", "factory": "m:f"},
        },
        {
            "data": {"source": "mnist5k"},
            "model": "cnn",
            "privacy": {"mechanism": "gaussian", "target_epsilon": 2, "max_epsilon": 3},
            "training": {
                "server_optimizer": {"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.0}
            },
        },
    ],
)
def test_resolved_dump_round_trips(tmp_path, mapping):
    spec = parse_spec(mapping, base_dir=tmp_path)
    resolved = dump_resolved(spec, tmp_path / "spec.resolved.yaml")
    assert load_spec(resolved) == spec
    assert load_spec(resolved).to_dict() == spec.to_dict()


def test_quickstart_dump_round_trips(tmp_path):
    spec = load_spec(write_quickstart(tmp_path))
    assert load_spec(dump_resolved(spec, tmp_path / "r.yaml")) == spec


def test_top_level_must_be_a_mapping():
    with pytest.raises(SpecError) as caught:
        parse_spec(["data"], source="cli")  # type: ignore[arg-type]
    assert (
        str(caught.value.problems[0]) == 'cli = ["data"]: the top level must be a mapping, not list'
    )


def test_importing_the_spec_package_does_not_import_tensorflow():
    code = (
        "import sys, tff_pipelines.spec; "
        "bad = [m for m in sys.modules if m.startswith(('tensorflow', 'tensorflow_federated'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
