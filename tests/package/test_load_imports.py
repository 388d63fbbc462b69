"""Libraries imported to load models: skops without PyTorch; in mlwright's own command line,
skops without the estimator listing it builds for its default trust (mlwright names the types it
trusts on every load) and LightGBM and XGBoost without scikit-learn. A program that imports
mlwright keeps every library as it would be."""

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


BOOSTERS = textwrap.dedent(
    """
    import sys
    from mlwright.runtime import mark_command_line
    if {command_line}:
        mark_command_line()
    from mlwright.train.models.base import booster_library
    booster_library("lightgbm"), booster_library("xgboost")
    print("sklearn" in sys.modules)
    import sklearn.base  # still importable afterwards
    """
)


@pytest.mark.parametrize(("command_line", "imported"), [(False, True), (True, False)])
def test_boosters_load_without_scikit_learn_in_mlwrights_own_command_line(
    command_line: bool, imported: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BOOSTERS.format(command_line=command_line)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(imported)]
