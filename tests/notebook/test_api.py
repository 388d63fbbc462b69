"""The top-level API is plain functions: real signatures, Google-style docstrings, and
``mlwright.train`` a function while ``mlwright.train.*`` stay importable."""

from __future__ import annotations

import importlib
import inspect
import pydoc
import re
from collections.abc import Callable
from typing import Any

import pytest

import mlwright
import mlwright as mw
import mlwright.api as api
from mlwright.config import FeatureSettings, ProfileSettings, TrainOptions
from mlwright.errors import ConfigError

NOT_OPTIONS = {"data", "sql", "progress", "verbose"}  # train's parameters that are no option
FUNCTIONS = ["train", "profile", "load", "reproduce", "export", "train_torch", "load_dataset",
             "list_datasets"]  # fmt: skip


def test_train_is_a_function_with_every_option_as_a_keyword() -> None:
    assert inspect.isfunction(mw.train)
    assert mw.train is api.train
    params = inspect.signature(mw.train).parameters
    assert set(params) - NOT_OPTIONS == set(TrainOptions.model_fields)
    assert [p.kind for p in params.values()][:2] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 2
    for name, param in params.items():
        if name in ("data", "target"):
            continue
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert param.annotation is not inspect.Parameter.empty, name
        if name in NOT_OPTIONS:
            continue
        default = TrainOptions.model_fields[name].default
        if name == "features":  # None: the settings' own defaults
            assert (param.default, default) == (None, FeatureSettings())
        elif name == "profile":
            assert (param.default, default) == (None, ProfileSettings())
        elif name in ("test_size", "refit_on_test"):  # None: the plan decides, as without a flag
            assert param.default is None, name
        else:
            assert param.default == default, name


def test_help_shows_the_parameters_not_the_submodules() -> None:
    text = pydoc.render_doc(mw.train, renderer=pydoc.plaintext)
    assert "function train" in text
    assert "time_budget: 'float | None' = None" in text
    assert "progress: 'bool' = True" in text
    assert "PACKAGE CONTENTS" not in text and "runner" not in text


@pytest.mark.parametrize("name", FUNCTIONS)
def test_docstrings_are_google_style_and_name_every_parameter(name: str) -> None:
    function: Callable[..., Any] = getattr(mw, name)
    assert inspect.isfunction(function), name
    doc = inspect.getdoc(function) or ""
    assert "Returns:" in doc, name
    params = [p for p in inspect.signature(function).parameters.values()]
    if params:
        section = doc.split("Args:\n", 1)[1].split("\n\n", 1)[0]
        for p in params:
            star = "**" if p.kind is inspect.Parameter.VAR_KEYWORD else ""
            assert re.search(rf"^    {re.escape(star + p.name)}:", section, re.M), (name, p.name)


def test_the_training_subpackage_stays_importable_through_the_name() -> None:
    import mlwright.train.runner as runner  # an attribute path through mlwright.train

    assert importlib.import_module("mlwright.train").__name__ == "mlwright.train"
    assert mw.train.runner is runner
    from mlwright.train import search  # noqa: F401  (bound on the package, so on the function)

    assert mw.train.search.__name__ == "mlwright.train.search"
    assert inspect.isfunction(mlwright.train)  # importing submodules did not rebind the name
    from mlwright import train

    assert train is api.train


def test_a_dotted_path_through_train_resolves_for_monkeypatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("mlwright.train.runner.GOLDEN_ROWS", 7)
    from mlwright.train import runner

    assert runner.GOLDEN_ROWS == 7


def test_options_are_checked_before_any_data_is_read() -> None:
    with pytest.raises(ConfigError, match="max_trials: Input should be greater than or equal"):
        mw.train("no-such-file.csv", target="y", max_trials=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_trial'"):
        mw.train("no-such-file.csv", target="y", max_trial=3)  # type: ignore[call-arg]


def test_a_path_is_accepted_for_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    seen: list[TrainOptions] = []

    def record(data: Any, options: TrainOptions, **kwargs: Any) -> str:
        seen.append(options)
        return "model"

    monkeypatch.setattr(api, "train_with_options", record)
    assert mw.train("rows.csv", target="y", out=tmp_path / "m", keep_cols="id") == "model"
    assert seen[0].out == str(tmp_path / "m")
    assert seen[0].keep_cols == ("id",)
    assert seen[0].features == FeatureSettings()


def test_profile_reports_each_step_as_it_starts() -> None:
    from tests.conftest import make_frame

    steps: list[str] = []
    problem = mw.profile(make_frame(200), target="churned", on_step=steps.append)
    assert problem.task == "binary"
    assert steps and all(isinstance(step, str) and step for step in steps)
