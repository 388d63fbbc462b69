"""The earlier name of :mod:`mlwright.serve.experiment_runtime`, kept for code that imports it:
the same module object, so that what is imported or patched through either name is the same."""

from __future__ import annotations

import sys

from mlwright.serve import experiment_runtime

sys.modules[__name__] = experiment_runtime
