"""Sample spec files and a problem-collecting helper shared by the spec tests.

A plain module rather than conftest.py: test directories have no __init__.py, so a `conftest`
module name would collide with other packages' test helpers.
"""

from __future__ import annotations

from tff_pipelines.spec import SpecError, parse_spec

QUICKSTART_YAML = """\
name: quickstart
seed: 7
data:
  source: mnist5k
  clients: 50
  partition: dirichlet
  dirichlet_alpha: 0.3
model:
  type: mlp
  hidden: [64, 32]
training:
  rounds: 5
  clients_per_round: 10
  sampling: poisson
  client_optimizer: {name: sgd, learning_rate: 0.05, momentum: 0.9}
  server_optimizer: {name: adam, learning_rate: 0.01, beta_1: 0.8}
privacy:
  mechanism: gaussian
  clip: 0.5
  noise_multiplier: 1.1
  max_epsilon: 10
  delta: 1e-5
  accountant: pld
evaluation:
  every: 2
output:
  dir: out/{name}
  plots: false
"""

QUICKSTART_TOML = """\
name = "quickstart"
seed = 7

[data]
source = "mnist5k"
clients = 50
partition = "dirichlet"
dirichlet_alpha = 0.3

[model]
type = "mlp"
hidden = [64, 32]

[training]
rounds = 5
clients_per_round = 10
sampling = "poisson"
client_optimizer = { name = "sgd", learning_rate = 0.05, momentum = 0.9 }

[training.server_optimizer]
name = "adam"
learning_rate = 0.01
beta_1 = 0.8

[privacy]
mechanism = "gaussian"
clip = 0.5
noise_multiplier = 1.1
max_epsilon = 10
delta = 1e-5
accountant = "pld"

[evaluation]
every = 2

[output]
dir = "out/{name}"
plots = false
"""


def problems_of(mapping: dict, overrides: tuple[str, ...] = ()) -> dict[str, str]:
    """{path: message} of the problems parse_spec finds; {} if the mapping is valid."""
    try:
        parse_spec(mapping, source="t.yaml", overrides=overrides)
    except SpecError as error:
        paths = [problem.path for problem in error.problems]
        assert len(paths) == len(set(paths)), f"one field reported twice: {paths}"
        return {problem.path: problem.message for problem in error.problems}
    return {}


def write_quickstart(directory) -> str:
    """Writes the YAML quickstart spec into `directory` and returns its path."""
    path = directory / "quickstart.yaml"
    path.write_text(QUICKSTART_YAML)
    return str(path)
