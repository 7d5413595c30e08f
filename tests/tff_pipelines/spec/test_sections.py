import dataclasses

import pytest

from tff_pipelines.spec import OptimizerSpec, parse_spec


def test_defaults_fill_every_field():
    spec = parse_spec({"data": {"source": "digits"}})
    assert spec.name == "run"
    assert spec.seed == 0
    assert spec.data.clients == 100
    assert spec.data.partition == "iid"
    assert spec.data.test_fraction == 0.2
    assert spec.data.standardize is True
    assert spec.model.type == "mlp"
    assert spec.model.hidden == (128,)
    assert spec.model.filters == (32, 64)
    assert spec.training.algorithm == "fedavg"
    assert spec.training.rounds == 10
    assert spec.training.clients_per_round == 10
    assert spec.training.sampling == "fixed"
    assert spec.training.client_optimizer == OptimizerSpec(name="sgd", learning_rate=0.1)
    assert spec.training.server_optimizer == OptimizerSpec(name="sgd", learning_rate=1.0)
    assert spec.privacy.mechanism == "none"
    assert spec.privacy.delta == 1e-5
    assert spec.privacy.accountant == "rdp"
    assert spec.secure_aggregation.protocol == "auto"
    assert spec.evaluation.every == 1
    assert spec.runtime.progress == "auto"
    assert spec.runtime.checkpoint_every == 1
    assert spec.output.dir == "runs/run"
    assert (spec.output.export, spec.output.tensorboard, spec.output.plots) == (True, True, True)


def test_spec_is_frozen():
    spec = parse_spec({"data": {"source": "digits"}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3  # type: ignore[misc]


def test_replace_seed_changes_only_the_seed():
    spec = parse_spec({"data": {"source": "digits"}})
    other = spec.replace_seed(42)
    assert other.seed == 42
    assert dataclasses.replace(other, seed=spec.seed) == spec
    with pytest.raises(ValueError):
        spec.replace_seed(-1)
    with pytest.raises(ValueError):
        spec.replace_seed(True)


def test_auto_weighting_is_uniform_only_with_dp():
    plain = parse_spec({"data": {"source": "digits"}})
    private = parse_spec(
        {"data": {"source": "digits"}, "privacy": {"mechanism": "gaussian", "noise_multiplier": 1}}
    )
    explicit = parse_spec({"data": {"source": "digits"}, "training": {"weighting": "uniform"}})
    assert plain.weighting == "examples"
    assert private.weighting == "uniform"
    assert explicit.weighting == "uniform"


def test_optimizer_kwargs_match_the_tff_builder():
    spec = parse_spec(
        {
            "data": {"source": "digits"},
            "training": {
                "server_optimizer": {"name": "yogi", "learning_rate": 0.01, "beta_2": 0.9}
            },
        }
    )
    optimizer = spec.training.server_optimizer
    assert optimizer.name == "yogi"
    assert optimizer.kwargs() == {"learning_rate": 0.01, "beta_2": 0.9}


def test_to_dict_is_plain_and_complete():
    spec = parse_spec({"data": {"source": "digits"}, "model": {"hidden": [8, 4]}})
    plain = spec.to_dict()
    assert plain["model"]["hidden"] == [8, 4]
    assert plain["training"]["client_optimizer"] == {"name": "sgd", "learning_rate": 0.1}
    assert set(plain) == {f.name for f in dataclasses.fields(spec)}
    assert set(plain["data"]) == {f.name for f in dataclasses.fields(spec.data)}
