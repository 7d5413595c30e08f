from tff_pipelines.spec import Problem, SpecError
from tff_pipelines.spec.errors import NO_VALUE, did_you_mean


def test_problem_renders_file_path_value_and_message():
    problem = Problem(
        file="specs/x.yaml",
        path="training.clients_per_round",
        value=500,
        message="must be at most data.clients (100)",
    )
    assert str(problem) == (
        "specs/x.yaml: training.clients_per_round = 500: must be at most data.clients (100)"
    )


def test_problem_without_value_omits_it():
    problem = Problem(
        "specs/x.yaml", "trainig", NO_VALUE, "unknown field; did you mean 'training'?"
    )
    assert str(problem) == "specs/x.yaml: trainig: unknown field; did you mean 'training'?"


def test_problem_values_are_shown_as_written_in_a_spec():
    assert str(Problem("f", "a.b", "x", "m")) == 'f: a.b = "x": m'
    assert str(Problem("f", "a.b", None, "m")) == "f: a.b = null: m"
    assert str(Problem("f", "a.b", [64, 32], "m")) == "f: a.b = [64, 32]: m"


def test_spec_error_lists_every_problem():
    problems = [Problem("f.yaml", "a", 1, "bad"), Problem("f.yaml", "b", 2, "worse")]
    error = SpecError(problems)
    assert error.problems == problems
    assert str(error).splitlines() == [
        "invalid spec (2 problems):",
        "  f.yaml: a = 1: bad",
        "  f.yaml: b = 2: worse",
    ]


def test_did_you_mean_suggests_close_match_or_lists_options():
    assert did_you_mean("trainig", ["data", "training"]) == "did you mean 'training'?"
    assert did_you_mean("zzz", ["data", "training"]) == "expected one of: data, training"
