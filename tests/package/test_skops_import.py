"""skops, imported to load scikit-learn models: without PyTorch, and in mlwright's own command line
without the estimator listing it builds for its default trust (mlwright names the types it
trusts on every load); a program that imports mlwright keeps skops as it would be."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import sklearn.utils
    from mlwright.runtime import mark_command_line
    listing = sklearn.utils.all_estimators
    if {command_line}:
        mark_command_line()
    from mlwright.train.models.sklearn_io import _skops_io
    names = _skops_io()._trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES
    assert sklearn.utils.all_estimators is listing, "scikit-learn was left patched"
    print(len(names), "torch" in sys.modules)
    """
)


@pytest.mark.parametrize(("command_line", "listed"), [(False, True), (True, False)])
def test_skops_keeps_its_listing_unless_the_process_is_mlwrights_own(
    command_line: bool, listed: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(command_line=command_line)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    count, torch = done.stdout.split()
    assert (int(count) > 100) is listed  # scikit-learn has some 200 estimators
    assert torch == "False"
