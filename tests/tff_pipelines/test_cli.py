"""The command line as a user meets it: exit codes, messages, no tracebacks, fast answers."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tff_pipelines.cli import main

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "specs" / "quickstart.yaml"


def tffp_process(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tff_pipelines.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


BAD_SPEC = """\
name: broken
data:
  source: mnist6k
  clients: 10
trainig:
  rounds: 3
training:
  clients_per_round: 50
privacy:
  mechanism: gaussian
  noise_multiplier: 1.0
  target_epsilon: 3
"""


def test_bad_spec_lists_every_problem_with_exit_2_and_no_traceback(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(BAD_SPEC)
    for command in ("validate", "run", "account"):
        result = tffp_process(command, spec)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        err = result.stderr
        assert str(spec) in err
        assert "data.source" in err and "mnist6k" in err and "mnist5k" in err
        assert "trainig" in err and "did you mean 'training'" in err
        assert "training.clients_per_round" in err
        assert "privacy.target_epsilon" in err or "privacy.noise_multiplier" in err


def test_missing_spec_file_is_a_clear_error(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_validate_accepts_overrides(capsys):
    assert main(["validate", str(QUICKSTART), "--set", "training.rounds=3"]) == 0
    assert main(["validate", str(QUICKSTART), "--set", "training.roundz=3"]) == 2
    assert "did you mean 'rounds'" in capsys.readouterr().err


def test_account_text_and_json(capsys):
    assert main(["account", str(QUICKSTART)]) == 0
    text = capsys.readouterr().out
    assert "epsilon" in text and "delta" in text and "poisson" in text
    assert main(["account", str(QUICKSTART), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mechanism"] == "gaussian" and doc["private"] is True
    assert doc["rounds"] == 40 and len(doc["epsilon_per_round"]) == 40
    assert doc["sampling"]["kind"] == "poisson"
    assert doc["neighbouring"] == "add/remove one client"
    assert doc["epsilon"] <= 8.0


def test_account_prints_a_schedule_round_by_round_with_both_zcdp_figures(capsys):
    assert main(["account", str(REPO / "specs" / "mnist_schedules.yaml")]) == 0
    text = capsys.readouterr().out
    assert "(ZCDP accountant)" in text and "exact RDP epsilon = " in text
    assert "max_epsilon 6.77941 affords 50 of 200 rounds" in text
    assert "schedule      time_based: initial_sigma 10, decay_rate 0.0281" in text
    rows = [line.split() for line in text.splitlines() if line.startswith("    ")]
    assert rows[0] == ["round", "noise", "multiplier", "epsilon"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 51))
    assert rows[1][1:] == ["10.0000", "0.4849"] and rows[-1][1] == "4.2072"


def test_account_without_privacy_says_so(capsys):
    assert main(["account", str(REPO / "specs" / "pima.yaml")]) == 0
    assert "not differentially private" in capsys.readouterr().out


def test_schema_is_json_schema_that_accepts_the_example_specs(capsys):
    import yaml

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load(QUICKSTART.read_text()), schema)


@pytest.mark.slow
def test_inspect_shows_type_signatures_and_the_aggregation_chain(capsys):
    assert main(["inspect", str(QUICKSTART)]) == 0
    out = capsys.readouterr().out
    assert "initialize:" in out and "next:" in out and "@SERVER" in out
    assert "clip to L2 norm 1" in out and "expected cohort (100)" in out


def test_export_of_a_non_run_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_inspect_of_a_dssgd_spec_shows_local_models_at_the_clients(capsys):
    assert main(["inspect", str(QUICKSTART.with_name("mnist_dssgd.yaml"))]) == 0
    out = capsys.readouterr().out
    assert "local_flat={float32[50890]}@CLIENTS" in out
    assert "sparse vector technique" in out and "round-robin, 1 of 10" in out


def test_inspect_of_a_secagg_spec_shows_the_round_cut_at_the_secure_sum(capsys):
    assert main(["inspect", str(QUICKSTART.with_name("secagg.yaml"))]) == 0
    out = capsys.readouterr().out
    assert "next, to the uploads:" in out and "next, from the sum:" in out
    assert "SecAgg+ modular secure sum of the client vectors" in out
    assert "provisioned for 0.3 dropping" in out
