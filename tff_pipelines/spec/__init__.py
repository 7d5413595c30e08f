"""Spec files: the declarative description of a run, validated all at once.

Imports neither TensorFlow nor TFF, so validating and accounting stay fast.
"""

from tff_pipelines.spec.errors import Problem, SpecError
from tff_pipelines.spec.load import dump_resolved, load_spec, parse_spec
from tff_pipelines.spec.reference import reference_markdown
from tff_pipelines.spec.schema import json_schema
from tff_pipelines.spec.sections import (
    DataSpec,
    EvaluationSpec,
    ModelSpec,
    OptimizerSpec,
    OutputSpec,
    PrivacySpec,
    RuntimeSpec,
    SecureAggregationSpec,
    Spec,
    TrainingSpec,
)

__all__ = [
    "DataSpec",
    "EvaluationSpec",
    "ModelSpec",
    "OptimizerSpec",
    "OutputSpec",
    "PrivacySpec",
    "Problem",
    "RuntimeSpec",
    "SecureAggregationSpec",
    "Spec",
    "SpecError",
    "TrainingSpec",
    "dump_resolved",
    "json_schema",
    "load_spec",
    "parse_spec",
    "reference_markdown",
]
