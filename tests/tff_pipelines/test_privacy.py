"""The privacy plan of distributed mechanisms: calibration, the report, and spec errors."""

import dataclasses
from pathlib import Path

import dp_accounting
import pytest
from scipy.stats import binom

from tff_pipelines.privacy import plan_privacy
from tff_pipelines.spec import load_spec, parse_spec
from tff_pipelines.spec.errors import SpecError

DIMENSION = 25_450  # the MNIST MLP-32 of the example specs


def _spec(secure_aggregation=None, **privacy):
    return parse_spec(
        {
            "data": {"source": "mnist5k", "clients": 1000},
            "training": {"rounds": 20, "clients_per_round": 100, "sampling": "poisson"},
            "privacy": {"delta": 1e-5, **privacy},
            "secure_aggregation": secure_aggregation or {},
        },
        source="test.yaml",
    )


def _problem(error: pytest.ExceptionInfo) -> tuple[str, str]:
    (problem,) = error.value.problems
    return problem.path, problem.message


@pytest.mark.parametrize("mechanism", ["smm", "ddg", "skellam"])
def test_target_epsilon_is_met_and_the_report_says_how(mechanism):
    plan = plan_privacy(
        _spec(mechanism=mechanism, target_epsilon=3.0, bits=12), dimension=DIMENSION
    )
    doc = plan.projection()
    assert doc["epsilon"] <= 3.0 and doc["epsilon"] == pytest.approx(3.0, rel=1e-4)
    assert doc["secure_aggregation"] == "simulated"
    assert doc["noise"]["predicted_wrap_probability"] == pytest.approx(1e-4, rel=1e-6)
    assert doc["noise"]["bits"] == 12 and doc["noise"]["dimension"] == DIMENSION
    assert any("computed in the clear" in a for a in doc["assumptions"])
    assert any("whoever takes part" in a for a in doc["assumptions"])
    assert doc["warnings"] == []
    named = {"smm": "Skellam mixture", "ddg": "discrete Gaussian", "skellam": "Skellam mechanism"}
    assert named[mechanism] in doc["bound"]


def test_smm_report_names_the_subsampling_bound():
    general = plan_privacy(
        _spec(mechanism="smm", mu=2e4, gamma=1000.0), dimension=DIMENSION
    ).projection()
    tight = plan_privacy(
        _spec(mechanism="smm", mu=2e4, gamma=1000.0, subsampling_bound="tight"), dimension=DIMENSION
    ).projection()
    assert "Zhu & Wang" in general["bound"] and "tight" in tight["bound"]
    assert tight["epsilon"] < general["epsilon"]


def test_a_given_gamma_that_overflows_the_modulus_is_a_warning():
    plan = plan_privacy(
        _spec(mechanism="skellam", noise_multiplier=1.0, gamma=1e-5, bits=16),
        dimension=DIMENSION,
    )
    (warning,) = plan.projection()["warnings"]
    assert "exceeds privacy.modclip_prob" in warning


def test_too_little_noise_is_a_spec_error_naming_the_noise_field():
    with pytest.raises(SpecError) as error:
        plan_privacy(_spec(mechanism="smm", mu=1e-3), dimension=DIMENSION, source="test.yaml")
    path, message = _problem(error)
    assert path == "privacy.mu" and "too little noise" in message
    assert error.value.problems[0].file == "test.yaml"
    with pytest.raises(SpecError) as error:
        plan_privacy(_spec(mechanism="ddg", noise_multiplier=0.01), dimension=DIMENSION)
    assert _problem(error)[0] == "privacy.noise_multiplier"


def test_noise_the_modulus_cannot_hold_is_a_bits_error():
    with pytest.raises(SpecError) as error:
        plan_privacy(_spec(mechanism="smm", mu=1e6, bits=8), dimension=DIMENSION)
    path, message = _problem(error)
    assert path == "privacy.bits" and "bits (8)" in message


def test_a_model_the_rotation_cannot_take_is_a_spec_error():
    with pytest.raises(SpecError) as error:
        plan_privacy(_spec(mechanism="ddg", target_epsilon=3.0), dimension=2**26 + 1)
    path, message = _problem(error)
    assert path == "privacy.rotation" and "MAX_PADDED_DIMENSION" in message


def test_distributed_plans_need_the_dimension():
    with pytest.raises(ValueError, match="dimension"):
        plan_privacy(_spec(mechanism="smm", target_epsilon=3.0))


@pytest.mark.parametrize("mechanism", ["smm", "ddg", "skellam"])
def test_secagg_provisions_noise_for_dropouts_within_the_modulus(mechanism):
    """With max_dropout, clients add up to 1/(1 - max_dropout) times the accounted noise: epsilon
    is unchanged, and the scale shrinks so the larger noise still wraps at modclip_prob."""
    privacy = dict(mechanism=mechanism, target_epsilon=3.0, bits=16)
    secagg = {"protocol": "secagg", "dropout_rate": 0.1, "max_dropout": 0.3}
    plain = plan_privacy(_spec(**privacy), dimension=DIMENSION).projection()
    tolerant = plan_privacy(
        _spec(secure_aggregation=secagg, **privacy), dimension=DIMENSION
    ).projection()
    assert tolerant["epsilon"] == pytest.approx(plain["epsilon"], rel=1e-4)
    assert tolerant["noise"]["predicted_wrap_probability"] == pytest.approx(1e-4, rel=1e-6)
    assert tolerant["noise"]["max_dropout"] == 0.3
    scale = "gamma" if mechanism == "smm" else "scale"
    assert tolerant["noise"][scale] < plain["noise"][scale]
    assert tolerant["secure_aggregation"] == "secagg"
    protocol = tolerant["secure_aggregation_protocol"]
    assert protocol["neighbours"] == 14 and protocol["threshold"] == 8  # auto at 100 clients
    assert any("m - floor(0.3·m)" in a for a in tolerant["assumptions"])
    assert any("honest but curious" in a for a in tolerant["assumptions"])
    assert tolerant["warnings"] == []


def test_secagg_warns_when_many_rounds_would_be_refused():
    secagg = {"protocol": "secagg", "dropout_rate": 0.1, "max_dropout": 0.11}
    plan = plan_privacy(
        _spec(secure_aggregation=secagg, mechanism="skellam", target_epsilon=3.0),
        dimension=DIMENSION,
    )
    # More than floor(0.11 * 100) = 11 of 100 clients drop: P(Binomial(100, 0.1) > 11).
    assert plan.refused_round_probability() == pytest.approx(binom.sf(11, 100, 0.1), rel=1e-12)
    assert any("rounds will be refused" in w for w in plan.warnings())
    without = {"protocol": "secagg", "max_dropout": 0.11}
    quiet = plan_privacy(
        _spec(secure_aggregation=without, mechanism="skellam", target_epsilon=3.0),
        dimension=DIMENSION,
    )
    assert quiet.refused_round_probability() == 0.0 and quiet.warnings() == []


def _dpsgd_spec(sampling="fixed", **privacy):
    return parse_spec(
        {
            "data": {"source": "boston", "clients": 4},
            "training": {
                "rounds": 10,
                "clients_per_round": 4 if sampling == "fixed" else 2,
                "sampling": sampling,
                "local_epochs": 2,
                "batch_size": 8,
                "client_optimizer": {"name": "sgd", "learning_rate": 0.05},
            },
            "privacy": {"mechanism": "dpsgd", "delta": 1e-5, **privacy},
        },
        source="test.yaml",
    )


def test_dpsgd_is_accounted_per_example_one_gaussian_per_local_epoch():
    import dp_accounting

    plan = plan_privacy(_dpsgd_spec(noise_multiplier=3.0))
    doc = plan.projection()
    assert doc["unit"].startswith("example") and doc["neighbouring"] == "add/remove one example"
    # Fixed cohorts claim no amplification: 10 rounds x 2 epochs of the plain Gaussian.
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.GaussianDpEvent(3.0), 20)
    assert doc["epsilon"] == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-9)
    assert any("parallel composition" in a for a in doc["assumptions"])
    assert doc["zcdp"]["epsilon"] > doc["epsilon"]  # exact RDP is the tighter conversion
    assert any("no amplification" in a for a in doc["assumptions"])
    # Poisson-sampled clients (rate 1/2) amplify.
    poisson = plan_privacy(_dpsgd_spec("poisson", noise_multiplier=3.0)).projection()
    sampled = dp_accounting.rdp.RdpAccountant()
    sampled.compose(
        dp_accounting.PoissonSampledDpEvent(
            0.5, dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(3.0), 2)
        ),
        10,
    )
    assert poisson["epsilon"] == pytest.approx(sampled.get_epsilon(1e-5), rel=1e-9)
    assert poisson["epsilon"] < doc["epsilon"]


def test_dpsgd_noise_is_calibrated_to_the_target():
    doc = plan_privacy(_dpsgd_spec(target_epsilon=2.0)).projection()
    assert doc["epsilon"] <= 2.0 and doc["epsilon"] == pytest.approx(2.0, rel=1e-4)
    assert doc["noise"]["batch_size"] == 8 and doc["noise"]["local_epochs"] == 2


MNIST_SCHEDULES = Path(__file__).resolve().parents[2] / "specs" / "mnist_schedules.yaml"
YU_SCHEDULES = {
    "constant": ("{kind: constant, initial_sigma: 8}", 100),
    "time_based": (None, 50),  # the spec's own
    "exponential": ("{kind: exponential, initial_sigma: 10, decay_rate: 0.0138}", 60),
    "step": ("{kind: step, initial_sigma: 10, factor: 0.7008, period: 10}", 40),
    "polynomial": (
        "{kind: polynomial, initial_sigma: 10, final_sigma: 2, period: 100, power: 3.5277}",
        40,
    ),
}


@pytest.mark.parametrize("kind", list(YU_SCHEDULES))
def test_yu_et_al_mnist_budget_affords_each_schedule_its_epochs(kind):
    """The spec's max_epsilon is the zCDP budget rho = 0.78125 of Yu et al.'s MNIST runs; the run
    loop's ledger stops each schedule where Yu et al.'s rho accounting (`spend`) does."""
    from mechanisms.accounting.zcdp import gaussian_rho
    from mechanisms.schedules import spend

    override, epochs = YU_SCHEDULES[kind]
    overrides = [f"privacy.schedule={override}"] if override else []
    plan = plan_privacy(load_spec(MNIST_SCHEDULES, overrides))
    doc = plan.projection()
    assert doc["rounds"] == epochs and doc["stopped_by_budget"]
    assert doc["schedule"]["kind"] == kind
    sigmas = spend(plan.schedule, budget_rho=0.78125, per_epoch_rho=gaussian_rho, max_epochs=200)
    assert doc["schedule"]["noise_multiplier_per_round"] == pytest.approx(sigmas)
    assert float(doc["zcdp"]["rho"]) == pytest.approx(sum(gaussian_rho(s) for s in sigmas))
    assert doc["epsilon"] == float(doc["zcdp"]["epsilon"]) >= float(doc["epsilon_rdp"])


def test_a_budget_no_round_fits_is_a_spec_error():
    spec = load_spec(MNIST_SCHEDULES, ["privacy.max_epsilon=0.1"])
    with pytest.raises(SpecError) as error:
        plan_privacy(spec, source="mnist.yaml")
    path, message = _problem(error)
    assert path == "privacy.max_epsilon"
    assert "the first round alone costs epsilon 0.4849" in message


def test_validation_schedule_is_projected_without_decay():
    schedule = (
        "{kind: validation_based, initial_sigma: 10, period: 10, factor: 0.8, threshold: 0.01, "
        "window: 5}"
    )
    doc = plan_privacy(load_spec(MNIST_SCHEDULES, [f"privacy.schedule={schedule}"])).projection()
    assert doc["rounds"] == 156  # 0.78125 / (1 / (2 * 10^2)) = 156.25 epochs at sigma 10
    assert set(doc["schedule"]["noise_multiplier_per_round"]) == {10.0}


def _poisson_batches_spec(**privacy):
    spec = _dpsgd_spec(**privacy)
    return dataclasses.replace(
        spec, training=dataclasses.replace(spec.training, batching="poisson")
    )


def test_poisson_batches_are_calibrated_with_far_less_noise_than_shuffled_epochs():
    """20 rounds of 2 local epochs at epsilon 2: a shuffled epoch is charged one full Gaussian,
    a Poisson-batched one ceil(n/B) steps sampled at rate B/n (clients of 101 examples)."""
    shuffled = plan_privacy(_dpsgd_spec(target_epsilon=2.0))
    sampled = plan_privacy(_poisson_batches_spec(target_epsilon=2.0), client_sizes=[101] * 4)
    assert sampled.relation == dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
    doc = sampled.projection()
    assert doc["epsilon"] <= 2.0 and doc["epsilon"] == pytest.approx(2.0, rel=1e-4)
    assert sampled.mechanism.noise_multiplier < shuffled.mechanism.noise_multiplier / 2
    with pytest.raises(ValueError, match="sizes"):
        plan_privacy(_poisson_batches_spec(target_epsilon=2.0))


def test_pld_calibrates_dpsgd_with_less_noise_than_rdp_and_meets_the_target():
    sizes = [200, 210, 200, 200]
    rdp = plan_privacy(_poisson_batches_spec(target_epsilon=0.5), client_sizes=sizes)
    pld = plan_privacy(
        _poisson_batches_spec(target_epsilon=0.5, accountant="pld"), client_sizes=sizes
    )
    doc = pld.projection()
    assert doc["accountant"] == "pld"
    assert doc["epsilon"] <= 0.5 and doc["epsilon"] == pytest.approx(0.5, rel=1e-4)
    assert pld.mechanism.noise_multiplier < 0.97 * rdp.mechanism.noise_multiplier
    assert any("one bound for all" in line for line in doc["assumptions"])


def test_a_non_private_plan_keeps_a_ledger_whatever_the_accountant():
    """mechanism none with accountant pld and fixed cohorts (PLD cannot compose under the
    replace-one relation of fixed cohorts, but a non-private run composes nothing)."""
    spec = parse_spec(
        {
            "data": {"source": "boston", "clients": 2},
            "training": {"clients_per_round": 2},
            "privacy": {"mechanism": "none", "accountant": "pld"},
        },
        source="test.yaml",
    )
    plan = plan_privacy(spec)
    assert not plan.private
    assert plan.new_ledger().epsilon == 0


def test_zcdp_cannot_charge_clients_of_different_sizes():
    spec = _poisson_batches_spec(noise_multiplier=1.0, accountant="zcdp")
    with pytest.raises(SpecError) as error:
        plan_privacy(spec, client_sizes=[200, 210, 200, 200], source="s.yaml")
    assert _problem(error)[0] == "privacy.accountant"
    plan = plan_privacy(spec, client_sizes=[200] * 4)
    doc = plan.projection()
    assert doc["accountant"] == "zcdp"
    larger = max(float(doc["zcdp"]["epsilon"]), float(doc["epsilon_rdp"]))
    assert doc["epsilon"] == pytest.approx(larger, rel=1e-12)


@pytest.mark.parametrize("mechanism", ["gaussian", "smm"])
def test_a_budget_below_the_first_round_is_a_spec_error_for_every_mechanism(mechanism):
    noise = {"noise_multiplier": 1.0} if mechanism == "gaussian" else {"mu": 2e4, "gamma": 1000.0}
    spec = _spec(mechanism=mechanism, max_epsilon=1e-6, **noise)
    with pytest.raises(SpecError) as error:
        plan_privacy(spec, dimension=DIMENSION, source="s.yaml")
    path, message = _problem(error)
    assert path == "privacy.max_epsilon" and "the first round alone costs" in message


MNIST_DSSGD = MNIST_SCHEDULES.with_name("mnist_dssgd.yaml")


def test_dssgd_uploads_are_calibrated_and_composed_per_participant():
    """mnist_dssgd: 50 round-robin turns of 1 participant in 10, so whoever uploads most does so
    5 times; the per-upload epsilon is the largest whose composition stays within the target."""
    from mechanisms.accounting.pure_dp import rdp_composition_epsilon

    spec = load_spec(MNIST_DSSGD)
    plan = plan_privacy(spec, dimension=50_890)
    uploads = plan.mechanism
    assert uploads.budget.count == 5089 and uploads.order == "round_robin"
    assert uploads.uploads_by(50) == 5
    epsilons = plan.projected_epsilons()
    assert 10.0 * (1 - 1e-5) <= epsilons[-1] <= 10.0
    assert epsilons[-1] == pytest.approx(rdp_composition_epsilon(uploads.epsilon, 5, 1e-5))
    assert epsilons[9] == epsilons[0]  # participant 0 uploads again in round 11
    document = plan.projection()
    assert document["noise"]["epsilon_per_upload"] == uploads.epsilon
    assert any("not per parameter" in a for a in document["assumptions"])
    assert not any("clipped to L2 norm" in a for a in document["assumptions"])

    fixed = plan_privacy(
        load_spec(
            MNIST_DSSGD,
            [
                "privacy.target_epsilon=null",
                "privacy.upload_epsilon=0.5",
                "training.sampling=fixed",
            ],
        ),
        dimension=50_890,
    )
    assert fixed.mechanism.order == "random" and fixed.mechanism.epsilon == 0.5
    assert fixed.projected_epsilons()[-1] < rdp_composition_epsilon(0.5, 50, 1e-5)
