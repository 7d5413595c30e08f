"""SecAgg+ inside training runs: the protocol's sum is the modular sum, dropouts are recovered or
refuse the round, and runs resume and reproduce like any other."""

import json
from pathlib import Path

import numpy as np
import pytest

from tff_pipelines import checkpoint
from tff_pipelines.run import run
from tff_pipelines.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
SECAGG = REPO / "specs" / "secagg.yaml"
QUIET = dict(progress=False, log=lambda message: None)

pytestmark = pytest.mark.slow


def spec(*overrides: str):
    return load_spec(SECAGG, overrides=["evaluation.every=1", "output.export=false", *overrides])


def weights(run_dir: Path) -> list[np.ndarray]:
    return checkpoint.load(run_dir).trainable


@pytest.mark.parametrize("algorithm", ["fedavg", "fedsgd"])
def test_without_dropouts_secagg_trains_exactly_like_the_simulated_sum(algorithm, tmp_path):
    common = ("training.rounds=2", f"training.algorithm={algorithm}")
    secagg = run(
        spec(*common, "secure_aggregation.dropout_rate=0", "secure_aggregation.max_dropout=0"),
        tmp_path / "secagg",
        **QUIET,
    )
    simulated = run(
        spec(
            *common,
            "secure_aggregation.protocol=simulated",
            *(f"secure_aggregation.{name}=null" for name in ("neighbours", "threshold")),
            *(f"secure_aggregation.{name}=null" for name in ("dropout_rate", "max_dropout")),
        ),
        tmp_path / "simulated",
        **QUIET,
    )
    for a, b in zip(weights(tmp_path / "secagg"), weights(tmp_path / "simulated"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert secagg.privacy["epsilon"] == simulated.privacy["epsilon"]
    assert secagg.privacy["secure_aggregation"] == "secagg"
    assert simulated.privacy["secure_aggregation"] == "simulated"
    for record in secagg.history:
        assert record["agg_secagg_dropped"] == 0 and record["agg_secagg_refused"] == 0
        # Uploads are bit-packed 16-bit words plus keys and shares: a few percent over plain.
        assert 1.0 < record["agg_secagg_expansion"] < 1.2
        assert record["agg_secagg_upload_bytes"] > 2 * secagg.privacy["noise"]["padded_dimension"]
        assert record["agg_secagg_client_seconds"] > 0 and record["agg_secagg_server_seconds"] > 0


def test_dropouts_are_recovered_recorded_and_the_run_resumes_to_the_same_model(tmp_path):
    rounds = "training.rounds=3"
    straight = run(spec(rounds), tmp_path / "straight", **QUIET)
    dropped = [r["agg_secagg_dropped"] for r in straight.history]
    assert sum(dropped) > 0, "the spec's 5% dropout should drop someone in 3 rounds (seed 0)"
    assert not any(r["agg_secagg_refused"] for r in straight.history)
    protocol = straight.privacy["secure_aggregation_protocol"]
    assert protocol["neighbours"] == 8 and protocol["threshold"] == 5
    assert protocol["max_dropout"] == 0.3 and protocol["simulated_dropout_rate"] == 0.05
    assert protocol["clients_dropped"] == sum(dropped)
    assert protocol["rounds_refused"] == 0
    assert any("SecAgg+" in a for a in straight.privacy["assumptions"])
    assert json.loads((tmp_path / "straight" / "privacy.json").read_text()) == straight.privacy

    class Stop(Exception):
        pass

    def stop_after_two(record):
        if record["round"] == 2:
            raise Stop

    with pytest.raises(Stop):
        run(spec(rounds), tmp_path / "resumed", on_round=stop_after_two, **QUIET)
    assert checkpoint.load(tmp_path / "resumed").round == 2
    resumed = run(spec(rounds), tmp_path / "resumed", resume=True, **QUIET)
    for a, b in zip(weights(tmp_path / "straight"), weights(tmp_path / "resumed"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.privacy == straight.privacy


def test_too_many_dropouts_refuse_the_round_and_leave_the_model_as_it_was(tmp_path):
    messages: list[str] = []
    result = run(
        spec(
            "training.rounds=4",
            "secure_aggregation.dropout_rate=0.5",
            "secure_aggregation.max_dropout=0.55",
        ),
        tmp_path / "run",
        progress=False,
        log=messages.append,
    )
    refused = [r for r in result.history if r["agg_secagg_refused"]]
    assert refused, "with half the cohort dropping and 55% tolerated, seed 0 refuses a round"
    assert len(refused) < len(result.history)
    by_round = {r["round"]: r for r in result.history}
    for record in refused:
        assert any(f"round {record['round']} refused" in m for m in messages)
        before = by_round.get(record["round"] - 1)
        if before is not None:  # nothing released: the evaluated model did not move
            assert record["eval_loss"] == before["eval_loss"]
    protocol = result.privacy["secure_aggregation_protocol"]
    assert protocol["rounds_refused"] == len(refused)
    assert protocol["refused_rounds"] == [r["round"] for r in refused]
    # Refused rounds are charged anyway (conservative): epsilon covers all four rounds.
    assert len(result.privacy["epsilon_per_round"]) == 4


@pytest.mark.parametrize("mechanism", ["ddg", "skellam"])
def test_ddg_and_skellam_run_through_secagg_with_dropouts(mechanism, tmp_path):
    overrides = [
        "training.rounds=2",
        "training.clients_per_round=20",
        "evaluation.every=0",
        "output.export=false",
        "secure_aggregation.protocol=secagg",
        "secure_aggregation.dropout_rate=0.1",
        "secure_aggregation.max_dropout=0.4",
    ]
    result = run(load_spec(REPO / "specs" / f"{mechanism}.yaml", overrides), tmp_path, **QUIET)
    assert result.rounds == 2
    protocol = result.privacy["secure_aggregation_protocol"]
    assert protocol["neighbours"] == 10 and protocol["threshold"] == 6  # auto at 20 clients
    assert protocol["clients_dropped"] == sum(r["agg_secagg_dropped"] for r in result.history)
    assert protocol["rounds_refused"] == 0
    assert result.privacy["noise"]["max_dropout"] == 0.4
    for record in result.history:
        assert np.isfinite(record["train_loss"]) and record["agg_secagg_expansion"] > 1
        assert "agg_wrapped_coordinates" not in record  # the server never sees the plain sum
