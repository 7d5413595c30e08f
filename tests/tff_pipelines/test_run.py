"""End to end through `tffp`: every example spec, resume after a kill, budget, export."""

import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tff_pipelines import checkpoint
from tff_pipelines.cli import main

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted(p for p in (REPO / "specs").iterdir() if p.suffix in {".yaml", ".yml", ".toml"})
QUICKSTART = REPO / "specs" / "quickstart.yaml"

pytestmark = pytest.mark.slow


def tffp(*argv: str) -> int:
    return main([str(a) for a in argv])


def sets(*assignments: str) -> list[str]:
    return [arg for a in assignments for arg in ("--set", a)]


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_every_example_spec_runs_two_rounds(spec, tmp_path, capsys):
    out = tmp_path / "run"
    assert tffp("run", spec, "--out", out, *sets("training.rounds=2", "evaluation.every=1")) == 0
    summary = capsys.readouterr().out
    assert "2/2 rounds" in summary
    for name in (
        "spec.resolved.yaml",
        "metrics.jsonl",
        "privacy.json",
        "checkpoint.npz",
        "model.json",
        "training.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert any((out / "tensorboard").iterdir())
    records = read_metrics(out)
    assert [r["round"] for r in records] == [1, 2]
    for record in records:
        assert {"train_loss", "epsilon", "round_seconds", "clients"} <= record.keys()
        assert any(k.startswith("eval_") for k in record)
        assert record["train_loss"] is not None and np.isfinite(record["train_loss"])
    privacy = json.loads((out / "privacy.json").read_text())
    for key in ("epsilon", "delta", "mechanism", "unit", "neighbouring", "sampling", "rounds"):
        assert key in privacy
    if privacy["private"]:
        assert privacy["rounds"] == 2
        assert len(privacy["epsilon_per_round"]) == 2
        assert privacy["epsilon"] == pytest.approx(records[-1]["epsilon"])
        assert 0 < privacy["epsilon_per_round"][0] <= privacy["epsilon"]
        for key in ("accountant", "bound", "noise", "assumptions"):
            assert privacy[key]
    else:
        assert privacy["epsilon"] is None and records[-1]["epsilon"] is None


def test_account_predicts_exactly_what_the_run_reports(tmp_path, capsys):
    overrides = sets("training.rounds=3", "evaluation.every=0")
    assert tffp("account", QUICKSTART, "--json", *overrides) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert tffp("run", QUICKSTART, "--out", tmp_path / "run", *overrides) == 0
    reported = json.loads((tmp_path / "run" / "privacy.json").read_text())
    assert reported["epsilon"] == pytest.approx(predicted["epsilon"], rel=1e-12)
    assert reported["epsilon_per_round"] == pytest.approx(predicted["epsilon_per_round"])
    assert reported["noise"] == predicted["noise"]
    # Calibrated to the target: epsilon lands at (just under) it.
    assert predicted["epsilon"] <= 8.0
    assert predicted["epsilon"] == pytest.approx(8.0, rel=0.01)


def test_run_stops_before_the_round_that_would_exceed_max_epsilon(tmp_path, capsys):
    out = tmp_path / "run"
    args = sets(
        "privacy.target_epsilon=null",
        "privacy.noise_multiplier=2.0",
        "training.rounds=50",
        "evaluation.every=0",
        "privacy.max_epsilon=0.8",
        "output.export=false",
    )
    assert tffp("account", QUICKSTART, "--json", *args) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["stopped_by_budget"] is True
    assert tffp("run", QUICKSTART, "--out", out, *args) == 0
    privacy = json.loads((out / "privacy.json").read_text())
    assert privacy["stopped_by_budget"] is True
    assert 1 < privacy["rounds"] < 50
    assert privacy["rounds"] == predicted["rounds"]
    assert privacy["epsilon"] <= 0.8
    assert privacy["epsilon"] == pytest.approx(predicted["epsilon"], rel=1e-12)
    assert len(read_metrics(out)) == privacy["rounds"]


def _final_state(run_dir: Path):
    saved = checkpoint.load(run_dir)
    return saved.round, saved.trainable, json.loads((run_dir / "privacy.json").read_text())


class _Crash(Exception):
    """Raised from `on_round` to stop a run in the middle, as a crash would."""


def _run_crashing_after(spec, run_dir: Path, round_num: int) -> None:
    """Runs `spec` into `run_dir` and crashes it once round `round_num` is recorded."""
    from tff_pipelines.run import run

    def crash(record):
        if record["round"] == round_num:
            raise _Crash

    with pytest.raises(_Crash):
        run(spec, run_dir, progress=False, log=lambda _: None, on_round=crash)


def _assert_same_model(run_a: Path, run_b: Path) -> None:
    _, weights_a, _ = _final_state(run_a)
    _, weights_b, _ = _final_state(run_b)
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)


def test_resume_after_kill_ends_where_an_uninterrupted_run_ends(tmp_path):
    overrides = sets("training.rounds=6", "evaluation.every=2")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert tffp("run", QUICKSTART, "--out", straight, *overrides) == 0

    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tff_pipelines.cli",
            "run",
            str(QUICKSTART),
            "--out",
            str(killed),
            *overrides,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and child.poll() is None:
            if checkpoint.exists(killed) and checkpoint.load(killed).round >= 3:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the run finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    done = checkpoint.load(killed).round
    assert 3 <= done < 6
    assert tffp("run", QUICKSTART, "--out", killed, "--resume", *overrides) == 0

    rounds_a, weights_a, privacy_a = _final_state(straight)
    rounds_b, weights_b, privacy_b = _final_state(killed)
    assert rounds_a == rounds_b == 6
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)
    assert privacy_a["epsilon"] == privacy_b["epsilon"]
    assert privacy_a["epsilon_per_round"] == privacy_b["epsilon_per_round"]
    assert [r["round"] for r in read_metrics(killed)] == list(range(1, 7))
    straight_metrics = [
        {k: v for k, v in r.items() if k != "round_seconds"} for r in read_metrics(straight)
    ]
    killed_metrics = [
        {k: v for k, v in r.items() if k != "round_seconds"} for r in read_metrics(killed)
    ]
    assert straight_metrics == killed_metrics


def test_exported_model_predicts_like_the_trained_model_in_the_targets_units(tmp_path):
    """Boston trained on standardised features and targets: the SavedModel takes raw features and
    answers in $1000s, and the reported test MSE is the SavedModel's on the raw test targets."""
    import tensorflow as tf

    from tff_pipelines.export import assign_weights, read_model_card
    from tff_pipelines.models import build_model
    from tff_pipelines.run import prepare_data
    from tff_pipelines.spec import load_spec

    out = tmp_path / "run"
    overrides = sets("training.rounds=3", "data.standardize_target=true", "evaluation.every=3")
    assert tffp("run", REPO / "specs" / "boston.toml", "--out", out, *overrides) == 0
    spec = load_spec(out / "spec.resolved.yaml")
    card = read_model_card(out)
    assert card.inputs is not None and card.target is not None
    saved = checkpoint.load(out)
    model = build_model(spec.model, card.shape)
    assign_weights(model, saved.trainable, saved.non_trainable)

    data = prepare_data(spec)
    x_test, y_test = data.test
    raw_test = card.inputs.invert(x_test)  # what a user would feed: unstandardised features
    expected = card.target.invert(model(x_test).numpy())
    train_targets = np.concatenate([y for _, y in data.clients])
    assert abs(train_targets.mean()) < 1e-5 and abs(train_targets.std() - 1) < 1e-5
    assert 15 < y_test.mean() < 30  # the test targets stay in $1000s

    loaded = tf.saved_model.load(str(out / "saved_model"))
    np.testing.assert_allclose(
        loaded(tf.constant(raw_test)).numpy(), expected, rtol=1e-4, atol=1e-4
    )
    served = loaded.signatures["serving_default"](x=tf.constant(raw_test))["prediction"]
    np.testing.assert_allclose(served.numpy(), expected[:, 0], rtol=1e-4, atol=1e-4)
    reported = read_metrics(out)[-1]["eval_mean_squared_error"]
    np.testing.assert_allclose(reported, np.mean((served.numpy() - y_test) ** 2), rtol=1e-4)

    assert tffp("export", out, "--out", tmp_path / "again") == 0
    again = tf.saved_model.load(str(tmp_path / "again"))
    np.testing.assert_array_equal(
        again(tf.constant(raw_test)).numpy(), loaded(tf.constant(raw_test)).numpy()
    )


def test_a_finished_run_directory_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    args = sets("training.rounds=1", "output.export=false")
    assert tffp("run", REPO / "specs" / "pima.yaml", "--out", out, *args) == 0
    before = (out / "checkpoint.npz").read_bytes()
    assert tffp("run", REPO / "specs" / "pima.yaml", "--out", out, *args) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "checkpoint.npz").read_bytes() == before


def test_resume_refuses_a_changed_spec(tmp_path, capsys):
    out = tmp_path / "run"
    assert tffp("run", REPO / "specs" / "pima.yaml", "--out", out, *sets("training.rounds=1")) == 0
    capsys.readouterr()
    assert (
        tffp(
            "run",
            REPO / "specs" / "pima.yaml",
            "--out",
            out,
            "--resume",
            *sets("training.rounds=1", "training.batch_size=4"),
        )
        == 2
    )
    assert "training.batch_size" in capsys.readouterr().err


def test_poisson_rounds_with_no_clients_still_count_against_the_budget(tmp_path):
    out = tmp_path / "run"
    assert (
        tffp(
            "run",
            QUICKSTART,
            "--out",
            out,
            *sets(
                "training.clients_per_round=1",
                "training.rounds=8",
                "evaluation.every=0",
                "output.export=false",
            ),
        )
        == 0
    )
    records = read_metrics(out)
    assert any(r["clients"] == 0 for r in records), "seed 0 should draw an empty cohort"
    privacy = json.loads((out / "privacy.json").read_text())
    assert privacy["rounds"] == 8
    for record in records:
        assert record["train_loss"] is None or np.isfinite(record["train_loss"])


def test_resolved_spec_reproduces_the_run(tmp_path):
    first = tmp_path / "first"
    assert (
        tffp(
            "run",
            REPO / "specs" / "pima.yaml",
            "--out",
            first,
            *sets("training.rounds=2", "seed=null"),
        )
        == 0
    )
    resolved = yaml.safe_load((first / "spec.resolved.yaml").read_text())
    assert isinstance(resolved["seed"], int)
    second = tmp_path / "second"
    assert tffp("run", first / "spec.resolved.yaml", "--out", second) == 0
    for a, b in zip(
        checkpoint.load(first).trainable, checkpoint.load(second).trainable, strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_user_csv_with_a_client_column_trains_per_natural_client(tmp_path):
    rng = np.random.default_rng(0)
    rows = 600
    x = rng.normal(size=(rows, 4))
    label = np.where(x @ [1.0, -2.0, 0.5, 0.0] > 0, "yes", "no")
    hospital = rng.integers(0, 6, size=rows)
    lines = ["a,b,c,d,hospital,outcome"] + [
        f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{r[3]:.4f},h{h},{y}"
        for r, h, y in zip(x, hospital, label, strict=True)
    ]
    (tmp_path / "patients.csv").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "csv.yaml"
    spec.write_text(
        "name: csv_natural\n"
        "data: {source: csv, path: patients.csv, label: outcome, client_key: hospital,\n"
        "       partition: natural, clients: 6}\n"
        "model: logreg\n"
        "training: {rounds: 5, clients_per_round: 3,\n"
        "           client_optimizer: {name: sgd, learning_rate: 0.5}}\n"
        "privacy: {mechanism: gaussian, clip: 1.0, noise_multiplier: 0.5, delta: 1.0e-3}\n"
    )
    out = tmp_path / "run"
    assert tffp("run", spec, "--out", out) == 0
    records = read_metrics(out)
    assert [r["clients"] for r in records] == [3] * 5
    assert records[-1]["eval_accuracy"] > 0.7  # a linear rule, learnable by logreg
    privacy = json.loads((out / "privacy.json").read_text())
    assert privacy["neighbouring"] == "replace one client"
    assert privacy["sampling"] == {"kind": "fixed", "population": 6, "cohort": 3, "rate": 0.5}


def test_metrics_lines_torn_by_a_kill_or_past_the_checkpoint_are_dropped(tmp_path):
    from tff_pipelines.run import _read_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"round": 1}\n{"round": 2}\n{"round": 3}\n{"round": 4, "train_lo')
    assert [r["round"] for r in _read_metrics(path, up_to_round=3)] == [1, 2, 3]
    assert [r["round"] for r in _read_metrics(path, up_to_round=2)] == [1, 2]
    assert _read_metrics(tmp_path / "missing.jsonl", up_to_round=2) == []


def test_distributed_run_reports_its_secure_sum_and_reproduces_exactly(tmp_path, capsys):
    spec = REPO / "specs" / "smm.yaml"
    overrides = sets("training.rounds=2", "evaluation.every=0", "output.export=false")
    assert tffp("account", spec, "--json", *overrides) == 0
    predicted = json.loads(capsys.readouterr().out)
    for name in ("a", "b"):
        assert tffp("run", spec, "--out", tmp_path / name, *overrides) == 0
    reported = json.loads((tmp_path / "a" / "privacy.json").read_text())
    assert reported["epsilon_per_round"] == pytest.approx(predicted["epsilon_per_round"])
    assert reported["noise"] == predicted["noise"]
    assert reported["secure_aggregation"] == "simulated"
    assert any("computed in the clear" in a for a in reported["assumptions"])
    padded = reported["noise"]["padded_dimension"]
    for record in read_metrics(tmp_path / "a"):  # modclip_prob 1e-4: a few wraps at most
        assert 0 <= record["agg_wrapped_coordinates"] < 1e-3 * padded
        assert 0 < record["agg_mixture_clip_ratio"] <= 1
    # Every client's noise derives from the spec seed: the same spec gives the same model.
    _assert_same_model(tmp_path / "a", tmp_path / "b")


def test_each_local_epoch_is_batched_on_its_own():
    """DP-SGD's per-epoch accounting needs every example in exactly one batch per epoch: no
    batch may span two epochs (10 examples, batches of 4, 3 epochs: 4+4+2 per epoch)."""
    batches = [y for _, y in _client_batches("shuffle", round_num=1, epochs=3)]
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    for epoch in range(3):
        seen = np.concatenate(batches[3 * epoch : 3 * epoch + 3])
        assert sorted(seen) == list(range(10))


def _client_batches(batching: str, round_num: int, epochs: int, n: int = 10, batch: int = 4):
    from types import SimpleNamespace

    from tff_pipelines.run import ClientDatasets

    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    data = SimpleNamespace(clients=[(x, np.arange(n))])
    training = SimpleNamespace(local_epochs=epochs, batch_size=batch, batching=batching)
    spec = SimpleNamespace(seed=3, training=training)
    shape = SimpleNamespace(task="classification")
    (dataset,) = ClientDatasets(data, shape, spec).for_round(round_num, np.array([0]))
    return [(b["x"].numpy()[:, 0], b["y"].numpy()) for b in dataset]


def test_poisson_batches_sample_every_example_at_rate_b_over_n():
    """ceil(n/B) steps per epoch, each example in each step with probability B/n, independently:
    over 2,000 epochs of 10 examples and B = 4, every example's inclusion frequency is 0.4 and
    the batch sizes are Binomial(10, 0.4), empty batches included."""
    batches = _client_batches("poisson", round_num=1, epochs=2000)
    assert len(batches) == 3 * 2000
    for x, y in batches:
        np.testing.assert_array_equal(x, y)  # features and labels stay paired
        assert len(np.unique(y)) == len(y)  # without replacement within a step
    counts = np.bincount(np.concatenate([y for _, y in batches]), minlength=10)
    steps = len(batches)
    assert np.all(np.abs(counts / steps - 0.4) < 4 * np.sqrt(0.24 / steps))
    sizes = np.bincount([len(y) for _, y in batches], minlength=11)
    empty = 0.6**10
    assert abs(sizes[0] / steps - empty) < 4 * np.sqrt(empty / steps)
    same = _client_batches("poisson", round_num=1, epochs=2000)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(batches, same, strict=True))
    other = _client_batches("poisson", round_num=2, epochs=2000)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(batches, other, strict=True))


def test_dpsgd_batches_larger_than_a_client_are_a_spec_error(tmp_path, capsys):
    spec = REPO / "specs" / "pima_dpsgd.yaml"
    assert tffp("run", spec, "--out", tmp_path / "run", *sets("training.batch_size=500")) == 2
    err = capsys.readouterr().err
    assert "training.batch_size = 500" in err and "smallest client's data (213" in err


VALIDATION_SCHEDULE = (
    "privacy.schedule={kind: validation_based, initial_sigma: 4, period: 2, factor: 0.5, "
    "threshold: 1.0, window: 1}"
)


def test_a_scheduled_run_applies_accounts_and_resumes_each_rounds_noise(tmp_path):
    """Pima with Poisson batches, user-level noise on top, and a validation-based schedule that
    always decays (no round gains a whole unit of accuracy): sigma 4, 4, 2, 2, 1. The ledger
    charges each round at its own sigma, and a run interrupted after round 3 resumes to the same
    model and the same two epsilons."""
    from mechanisms.accounting import PrivacyLedger
    from tff_pipelines.run import plan_for_data, prepare_data, run
    from tff_pipelines.spec import load_spec

    spec_path = REPO / "specs" / "pima_dpsgd.yaml"
    overrides = [
        "training.rounds=5",
        "training.batching=poisson",
        "privacy.target_epsilon=null",
        VALIDATION_SCHEDULE,
        "privacy.user_level={mechanism: gaussian, clip: 1.0, noise_multiplier: 1.0}",
        "evaluation.every=1",
        "runtime.checkpoint_every=1",
        "output.export=false",
        "output.plots=false",
    ]
    spec = load_spec(spec_path, overrides)
    straight = run(spec, tmp_path / "straight", progress=False, log=lambda _: None)
    sigmas = [r["noise_multiplier"] for r in straight.history]
    assert sigmas == [4.0, 4.0, 2.0, 2.0, 1.0]

    plan = plan_for_data(spec, prepare_data(spec))
    ledger = PrivacyLedger(delta=plan.delta, relation=plan.relation)
    for sigma in sigmas:
        scheduled = dataclasses.replace(plan.mechanism, noise_multiplier=sigma)
        ledger.record(scheduled.round_privacy(plan.sampling))
    assert straight.privacy["epsilon"] == pytest.approx(ledger.epsilon, rel=1e-12)
    assert straight.privacy["schedule"]["noise_multiplier_per_round"] == sigmas
    assert straight.privacy["noise"]["batching"] == "poisson"
    # The clients do use each round's sigma: against a constant 4, rounds 1-2 train identically
    # (same seeds, same noise), round 3 (sigma 2) does not.
    constant = [o for o in overrides if not o.startswith(("privacy.schedule", "training.rounds"))]
    constant += ["privacy.schedule={kind: constant, initial_sigma: 4}", "training.rounds=3"]
    steady = run(load_spec(spec_path, constant), tmp_path / "c", progress=False, log=print)
    losses = [[r["train_loss"] for r in h[:3]] for h in (straight.history, steady.history)]
    assert losses[0][:2] == losses[1][:2] and losses[0][2] != losses[1][2]

    _run_crashing_after(spec, tmp_path / "resumed", 3)
    assert checkpoint.load(tmp_path / "resumed").round == 3
    resumed = run(spec, tmp_path / "resumed", resume=True, progress=False, log=lambda _: None)
    assert [r["noise_multiplier"] for r in resumed.history] == sigmas
    assert resumed.privacy["epsilon"] == straight.privacy["epsilon"]
    user_epsilons = [
        p["user_level"]["epsilon_per_round"] for p in (straight.privacy, resumed.privacy)
    ]
    assert user_epsilons[0] == user_epsilons[1] and len(user_epsilons[0]) == 5
    _assert_same_model(tmp_path / "straight", tmp_path / "resumed")


def test_account_predicts_a_poisson_batched_dpsgd_run(tmp_path, capsys):
    """With Poisson batches the accountant needs the clients' sizes: tffp account loads the data
    and charges each round the worst client's sampled steps, as the run does."""
    spec = REPO / "specs" / "pima_dpsgd.yaml"
    overrides = sets("training.rounds=2", "training.batching=poisson", "evaluation.every=0")
    assert tffp("account", spec, "--json", *overrides) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["noise"]["batching"] == "poisson"
    rate = predicted["noise"]["sampling_rate_per_step"]["smallest_client"]
    assert 0 < rate < 1
    assert tffp("run", spec, "--out", tmp_path / "run", *overrides) == 0
    reported = json.loads((tmp_path / "run" / "privacy.json").read_text())
    assert reported["epsilon"] == pytest.approx(predicted["epsilon"], rel=1e-12)
    assert reported["epsilon"] <= 1.0  # the spec's target_epsilon, met in 2 rounds


def test_a_scheduled_central_gaussian_run_spends_what_account_projects(tmp_path, capsys):
    """User-level DP-FedAvg with an exponential schedule: the server's noise follows the table
    round by round, the run stops at max_epsilon where tffp account said it would, and privacy.json
    lists each round's multiplier."""
    spec = REPO / "specs" / "digits_cnn.yaml"
    overrides = sets(
        "privacy.noise_multiplier=null",
        "privacy.schedule={kind: exponential, initial_sigma: 2.0, decay_rate: 0.5}",
        "privacy.max_epsilon=12",
        "training.rounds=8",
        "training.local_epochs=1",
        "evaluation.every=0",
        "output.export=false",
    )
    assert tffp("account", spec, "--json", *overrides) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert 1 < predicted["rounds"] < 8 and predicted["stopped_by_budget"]
    assert tffp("run", spec, "--out", tmp_path / "run", *overrides) == 0
    reported = json.loads((tmp_path / "run" / "privacy.json").read_text())
    assert reported["rounds"] == predicted["rounds"] and reported["stopped_by_budget"]
    assert reported["epsilon"] == pytest.approx(predicted["epsilon"], rel=1e-12)
    sigmas = reported["schedule"]["noise_multiplier_per_round"]
    assert sigmas == pytest.approx([2.0 * np.exp(-0.5 * t) for t in range(len(sigmas))])
    assert [r["noise_multiplier"] for r in read_metrics(tmp_path / "run")] == sigmas


@pytest.mark.parametrize("mechanism", ["gaussian", "skellam"])
def test_user_level_noise_on_top_of_dpsgd_is_reported_per_unit(mechanism, tmp_path, capsys):
    """dpsgd plus user-level noise on the clients' deltas (central Gaussian, or Skellam shares in
    a simulated secure sum): two guarantees, each on its own ledger, as tffp account predicts
    them; the noise really is added (the model differs from the same run without it)."""
    spec = REPO / "specs" / "pima_dpsgd.yaml"
    base = sets("training.rounds=3", "evaluation.every=0", "runtime.checkpoint_every=1")
    user = sets(f"privacy.user_level={{mechanism: {mechanism}, clip: 0.5, noise_multiplier: 2}}")
    assert tffp("account", spec, "--json", *base, *user) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert tffp("run", spec, "--out", tmp_path / "both", *base, *user) == 0
    assert "user (all of one client's examples)" in capsys.readouterr().out
    reported = json.loads((tmp_path / "both" / "privacy.json").read_text())
    assert reported["unit"].startswith("example") and "two guarantees" in reported["units"]
    user_level = reported["user_level"]
    assert user_level["unit"].startswith("user") and user_level["mechanism"] == mechanism
    expected = "simulated" if mechanism == "skellam" else "none"
    assert user_level["secure_aggregation"] == expected
    assert user_level["neighbouring"] == "replace one client"
    assert user_level["epsilon"] == pytest.approx(predicted["user_level"]["epsilon"], rel=1e-12)
    assert reported["epsilon"] == pytest.approx(predicted["epsilon"], rel=1e-12)
    records = read_metrics(tmp_path / "both")
    assert [r["user_epsilon"] for r in records] == user_level["epsilon_per_round"]
    assert all(0 < r["agg_clipped"] <= 1 for r in records)  # the server's clip diagnostics

    assert tffp("run", spec, "--out", tmp_path / "plain", *base) == 0
    _, with_noise, _ = _final_state(tmp_path / "both")
    _, without, _ = _final_state(tmp_path / "plain")
    assert any(not np.array_equal(a, b) for a, b in zip(with_noise, without, strict=True))


def test_secagg_under_dpsgd_trains_like_the_simulated_sum(tmp_path):
    """Skellam user-level noise on top of scheduled DP-SGD, its sum computed by SecAgg+: without
    dropouts the model is bit for bit that of the simulated sum, and both guarantees agree."""
    spec = REPO / "specs" / "pima_dpsgd.yaml"
    common = sets(
        "training.rounds=3",
        "data.clients=6",
        "training.clients_per_round=6",
        "training.batch_size=8",
        "privacy.target_epsilon=null",
        "privacy.schedule={kind: exponential, initial_sigma: 5, decay_rate: 0.1}",
        "privacy.user_level={mechanism: skellam, clip: 0.5, noise_multiplier: 1.0}",
        "evaluation.every=0",
        "output.export=false",
    )
    for protocol in ("simulated", "secagg"):
        out = tmp_path / protocol
        assert (
            tffp(
                "run",
                spec,
                "--out",
                out,
                *common,
                "--set",
                f"secure_aggregation.protocol={protocol}",
            )
            == 0
        )
    _, simulated, privacy_a = _final_state(tmp_path / "simulated")
    _, secure, privacy_b = _final_state(tmp_path / "secagg")
    for a, b in zip(simulated, secure, strict=True):
        np.testing.assert_array_equal(a, b)
    assert privacy_b["user_level"]["secure_aggregation"] == "secagg"
    assert privacy_b["user_level"]["secure_aggregation_protocol"]["clients_dropped"] == 0
    assert privacy_a["epsilon"] == privacy_b["epsilon"]
    assert privacy_a["user_level"]["epsilon"] == privacy_b["user_level"]["epsilon"]
    assert privacy_b["schedule"]["noise_multiplier_per_round"][2] == pytest.approx(5 * np.exp(-0.2))


def test_training_metrics_on_standardised_targets_are_stated_in_the_targets_units():
    from tff_pipelines.data import Standardizer
    from tff_pipelines.run import round_record

    train = {"loss": 0.5, "mean_squared_error": 0.5, "mean_absolute_error": 0.4, "num_examples": 9}
    metrics = {"client_work": {"train": train}}
    target = Standardizer(mean=np.float32(22.0), scale=np.float32(3.0))
    record = round_record(1, 2, metrics, None, None, 0.1, target=target)
    assert record["train_loss"] == pytest.approx(4.5)
    assert record["train_mean_squared_error"] == pytest.approx(4.5)
    assert record["train_mean_absolute_error"] == pytest.approx(1.2)
    assert record["train_num_examples"] == 9
    assert round_record(1, 2, metrics, None, None, 0.1)["train_loss"] == 0.5


def test_a_modelmix_run_is_accounted_as_planned_and_resumes_to_the_same_model(tmp_path):
    """digits with ModelMix on the clients and at the server: `tffp account`'s epsilon is the
    run's, the mixing changes the training (against plain DP-SGD with the same noise), and a run
    interrupted after round 2 resumes to the same weights (the server's previous model is in the
    checkpointed state)."""
    from tff_pipelines.run import run
    from tff_pipelines.spec import load_spec

    spec_path = REPO / "specs" / "digits_modelmix.yaml"
    overrides = [
        "training.rounds=4",
        "privacy.target_epsilon=null",
        "privacy.noise_multiplier=2.0",
        "runtime.checkpoint_every=1",
        "evaluation.every=0",
        "output.export=false",
        "output.plots=false",
    ]
    spec = load_spec(spec_path, overrides)
    straight = run(spec, tmp_path / "straight", progress=False, log=lambda _: None)
    assert straight.privacy["noise"]["modelmix"]["tau_over_lr"] == 0.15
    assert any("ModelMix" in a for a in straight.privacy["assumptions"])

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert tffp("account", spec_path, *sets(*overrides)) == 0
    assert f"epsilon = {straight.privacy['epsilon']:.4f}" in out.getvalue()

    plain = [*overrides, "training.modelmix.tau=null", "privacy.coordinate_clip_p=null"]
    dpsgd = run(load_spec(spec_path, plain), tmp_path / "plain", progress=False, log=lambda _: None)
    assert dpsgd.history[0]["train_loss"] != straight.history[0]["train_loss"]

    _run_crashing_after(spec, tmp_path / "resumed", 2)
    resumed = run(spec, tmp_path / "resumed", resume=True, progress=False, log=lambda _: None)
    assert resumed.privacy["epsilon"] == straight.privacy["epsilon"]
    _assert_same_model(tmp_path / "straight", tmp_path / "resumed")


def test_a_dssgd_run_uploads_selectively_is_accounted_and_resumes_to_the_same_model(tmp_path):
    """mnist_dssgd for 12 round-robin turns (participants 0 and 1 take two): svt's epsilon is
    `tffp account`'s and composes two uploads; every upload holds at most c coordinates; a run
    interrupted after round 5 resumes to the same global model (local models are in the state)."""
    from tff_pipelines.run import run
    from tff_pipelines.spec import load_spec

    spec_path = REPO / "specs" / "mnist_dssgd.yaml"
    overrides = [
        "training.rounds=12",
        "runtime.checkpoint_every=1",
        "evaluation.every=0",
        "output.export=false",
        "output.plots=false",
    ]
    spec = load_spec(spec_path, overrides)
    straight = run(spec, tmp_path / "straight", progress=False, log=lambda _: None)
    privacy = straight.privacy
    assert privacy["uploads_by_most_active_participant"] == 2
    assert privacy["epsilon_per_round"][9] < privacy["epsilon_per_round"][10]  # 0's 2nd turn
    count = privacy["noise"]["max_uploaded_coordinates"]
    assert all(0 < r["agg_uploaded"] <= count for r in straight.history)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert tffp("account", spec_path, *sets(*overrides)) == 0
    assert f"epsilon = {privacy['epsilon']:.4f}" in out.getvalue()

    _run_crashing_after(spec, tmp_path / "resumed", 5)
    resumed = run(spec, tmp_path / "resumed", resume=True, progress=False, log=lambda _: None)
    assert resumed.privacy["epsilon"] == privacy["epsilon"]
    _assert_same_model(tmp_path / "straight", tmp_path / "resumed")

    plain = [*overrides, "privacy.mechanism=none", "privacy.target_epsilon=null"]
    shared = run(load_spec(spec_path, plain), tmp_path / "plain", progress=False, log=print)
    assert not shared.privacy["private"]
    assert all(0 < r["agg_uploaded"] <= count for r in shared.history)


def test_an_averaged_pld_dpsgd_run_publishes_the_mean_and_resumes_to_it(tmp_path, capsys):
    """boston_dpsgd (DP-SGD accounted by PLD, averaging the last quarter of the run) for 4 rounds:
    `tffp account`'s epsilon is the run's; the published model is the mean of the global models
    of rounds 3 and 4 (runs stopped at 3 and 4 rounds train identically); training continues
    from the last global model; a run interrupted after round 3 resumes to the same mean."""
    from tff_pipelines.run import run
    from tff_pipelines.spec import load_spec

    spec_path = REPO / "specs" / "boston_dpsgd.yaml"
    overrides = [
        "training.rounds=4",
        "training.averaging.suffix=0.5",
        "runtime.checkpoint_every=1",
        "evaluation.every=1",
        "output.export=false",
        "output.plots=false",
    ]

    def quiet_run(changes, out, **kwargs):
        spec = load_spec(spec_path, [*overrides, *changes])
        return run(spec, tmp_path / out, progress=False, log=lambda _: None, **kwargs)

    averaged = quiet_run([], "averaged")
    assert averaged.privacy["accountant"] == "pld"
    assert [r["averaged_models"] for r in averaged.history] == [0, 0, 1, 2]
    from tff_pipelines.report import summary

    assert "(the mean of the last 2 global models)" in summary(averaged)
    assert tffp("account", spec_path, "--json", *sets(*overrides)) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert averaged.privacy["epsilon"] == pytest.approx(predicted["epsilon"], rel=1e-6)
    assert averaged.privacy["epsilon"] <= 1.0

    # Same noise multiplier for the runs without averaging, so their global models are the same.
    noise = f"privacy.noise_multiplier={averaged.privacy['noise']['noise_multiplier']!r}"
    fixed = [noise, "privacy.target_epsilon=null", "training.averaging.suffix=null"]
    quiet_run([*fixed, "training.rounds=3"], "three")
    quiet_run(fixed, "four")
    _, third, _ = _final_state(tmp_path / "three")
    _, fourth, _ = _final_state(tmp_path / "four")
    _, published, _ = _final_state(tmp_path / "averaged")
    for mean, a, b in zip(published, third, fourth, strict=True):
        np.testing.assert_allclose(mean, (a + b) / 2, rtol=1e-6, atol=1e-7)
        assert not np.array_equal(a, b)
    global_model = checkpoint.load(tmp_path / "averaged").state_leaves
    assert any(
        leaf.shape == fourth[0].shape and np.array_equal(leaf, fourth[0]) for leaf in global_model
    )  # the state trains on from the last global model, not from the mean

    spec = load_spec(spec_path, overrides)
    _run_crashing_after(spec, tmp_path / "resumed", 3)
    resumed = run(spec, tmp_path / "resumed", resume=True, progress=False, log=lambda _: None)
    assert resumed.privacy["epsilon"] == averaged.privacy["epsilon"]
    _assert_same_model(tmp_path / "averaged", tmp_path / "resumed")
    assert resumed.final_metrics["eval_loss"] == averaged.final_metrics["eval_loss"]
