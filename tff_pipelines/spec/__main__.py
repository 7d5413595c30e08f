"""`python -m tff_pipelines.spec` prints the field reference (the content of docs/spec.md)."""

import sys

from tff_pipelines.spec.reference import reference_markdown

sys.stdout.write(reference_markdown())
