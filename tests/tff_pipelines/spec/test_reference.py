from pathlib import Path

from tff_pipelines.spec import reference_markdown
from tff_pipelines.spec.sections import MECHANISMS, OPTIMIZER_HYPERPARAMETERS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "spec.md"


def test_committed_docs_are_up_to_date():
    assert DOCS.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/spec.md is stale: run `uv run python -m tff_pipelines.spec > docs/spec.md`"
    )


def test_reference_mentions_every_field_optimizer_and_rule():
    text = reference_markdown()
    for field in (
        "`seed`",
        "`data.source`",
        "`data.client_key`",
        "`privacy.max_epsilon`",
        "`output.dir`",
        "`runtime.checkpoint_every`",
        "`secure_aggregation.protocol`",
    ):
        assert field in text
    for mechanism in MECHANISMS:
        assert f"`{mechanism}`" in text
    for hyperparameters in OPTIMIZER_HYPERPARAMETERS.values():
        for key in hyperparameters:
            assert f"`{key}`" in text
    assert "requires training.sampling 'poisson'" in text
