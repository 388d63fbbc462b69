"""mlwright.sklearn: AutoClassifier and AutoRegressor behave as scikit-learn estimators.

The fast tier trains a few times on small tables with one LightGBM trial and two folds, and runs
the estimator checks that train little or not at all; every estimator check of scikit-learn runs
under ``slow`` (91 fits, about 21 s of CPU time), with a fit that tracks in MLflow.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

import mlwright.api as api
from mlwright.errors import ConfigError, EstimatorInputError
from mlwright.sklearn import AutoClassifier, AutoRegressor

# the fastest training there is: one LightGBM trial on two folds, one thread
FAST: dict[str, Any] = {"families": ("lightgbm",), "max_trials": 1, "n_folds": 2, "threads": 1}


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y.rename("species")


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def classifier(iris: tuple[pd.DataFrame, pd.Series]) -> AutoClassifier:
    X, y = iris
    return AutoClassifier(**FAST).fit(X, y)


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sklearn") / "diabetes"


@pytest.fixture(scope="module")
def regressor(diabetes: tuple[pd.DataFrame, pd.Series], kept: Path) -> AutoRegressor:
    X, y = diabetes
    return AutoRegressor(**FAST, output=kept).fit(X, y)


# --- fitting and predicting ----------------------------------------------------------------------


def test_a_fitted_classifier_has_sklearns_attributes_and_predicts_numpy(
    classifier: AutoClassifier, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = iris
    assert list(classifier.classes_) == [0, 1, 2]
    assert classifier.n_features_in_ == 4
    assert list(classifier.feature_names_in_) == list(X.columns)
    assert isinstance(classifier.model_, api.Model)
    assert classifier.model_.task == "multiclass"
    assert classifier.model_.name == "species"  # the name of y
    predicted = classifier.predict(X)
    assert isinstance(predicted, np.ndarray)
    assert predicted.shape == (150,)
    assert set(predicted) <= {0, 1, 2}
    proba = classifier.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (classifier.classes_[proba.argmax(axis=1)] == predicted).all()
    assert classifier.score(X, y) > 0.9
    # the same numbers as the mlwright model itself
    direct = classifier.model_.predict(X)
    np.testing.assert_allclose(proba[:, 1], direct["proba_1"])


def test_labels_come_back_as_given_and_proba_follows_classes_(
    iris: tuple[pd.DataFrame, pd.Series], capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = iris
    # the classes sorted differently as text than in the order the model lists them
    names = np.array(["virginica", "setosa", "versicolor"], dtype=object)[y.to_numpy()]
    fitted = AutoClassifier(**FAST).fit(X.to_numpy(), names)
    assert capsys.readouterr().out == ""  # quiet unless verbose=True
    assert list(fitted.classes_) == ["setosa", "versicolor", "virginica"]
    assert not hasattr(fitted, "feature_names_in_")  # an array has no column names
    assert fitted.n_features_in_ == 4
    predicted = fitted.predict(X.to_numpy())
    assert (predicted == names).mean() > 0.9
    proba = fitted.predict_proba(X.to_numpy())
    # column j is the probability of classes_[j]: the first iris kind is "virginica" here
    assert (proba[:50].argmax(axis=1) == 2).all()
    assert (proba[50:100].argmax(axis=1) == 0).all()
    np.testing.assert_allclose(fitted.predict_log_proba(X.to_numpy()[:5]), np.log(proba[:5]))


def test_a_regressor_predicts_floats_and_keeps_its_package_in_output(
    regressor: AutoRegressor, diabetes: tuple[pd.DataFrame, pd.Series], kept: Path
) -> None:
    X, y = diabetes
    predicted = regressor.predict(X)
    assert predicted.dtype == np.float64
    assert predicted.shape == (len(X),)
    assert regressor.score(X, y) > 0.3
    assert (kept / "MLmodel").is_file()
    assert (kept / "report" / "report.html").is_file()
    loaded = api.load(kept)
    np.testing.assert_allclose(loaded.predict(X)["prediction"], predicted)


def test_arrays_at_predict_are_read_in_the_columns_order_of_fit(
    regressor: AutoRegressor, diabetes: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = diabetes
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_array = regressor.predict(X.to_numpy())
    np.testing.assert_allclose(from_array, regressor.predict(X))


# --- errors --------------------------------------------------------------------------------------


def test_predicting_before_fit_says_so() -> None:
    with pytest.raises(NotFittedError, match="AutoRegressor instance is not fitted yet"):
        AutoRegressor().predict(np.zeros((2, 3)))


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_a_wrong_column_count_is_refused_naming_both_counts(
    classifier: AutoClassifier, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = iris
    with pytest.raises(ValueError, match="X has 3 features, but AutoClassifier is expecting 4"):
        classifier.predict(X.to_numpy()[:, :3])
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing"):
        classifier.predict(X.iloc[:, :3])


def test_bad_targets_and_options_are_refused_before_training(
    iris: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, y = iris
    with pytest.raises(EstimatorInputError, match="requires y to be passed"):
        AutoClassifier().fit(X, None)
    with pytest.raises(EstimatorInputError, match="y has one class"):
        AutoClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        AutoClassifier().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(EstimatorInputError, match=r"options \['out'\] are set by AutoRegressor"):
        AutoRegressor(options={"out": "elsewhere"}).fit(X, y)
    with pytest.raises(EstimatorInputError, match=r"options \['seed'\] are parameters"):
        AutoRegressor(options={"seed": 3}).fit(X, y)
    with pytest.raises(ConfigError, match="time_budget"):
        AutoRegressor(time_budget=-1).fit(X, y)
    with pytest.raises(ConfigError, match="AutoRegressor parameters: famlies"):
        AutoRegressor(options={"famlies": ["linear"]}).fit(X, y)


# --- scikit-learn's tools ------------------------------------------------------------------------


def test_clone_get_params_and_set_params_round_trip(classifier: AutoClassifier) -> None:
    params = classifier.get_params()
    assert params["families"] == ("lightgbm",)
    assert params["tracking"] is False
    assert params["verbose"] is False
    copy = clone(classifier)
    assert copy.get_params() == params
    assert not hasattr(copy, "model_")
    copy.set_params(seed=7, time_budget=5.0)
    assert copy.get_params()["seed"] == 7
    assert classifier.get_params()["seed"] == 0


def test_a_pipeline_fits_and_predicts(diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = diabetes
    pipeline = make_pipeline(StandardScaler(), AutoRegressor(**FAST)).set_output(transform="pandas")
    pipeline.fit(X.iloc[:300], y.iloc[:300])
    assert pipeline.score(X.iloc[300:], y.iloc[300:]) > 0.2
    # the scaler hands on a frame, so the estimator sees the column names
    assert list(pipeline[-1].feature_names_in_) == list(X.columns)


def test_cross_val_score_trains_without_tracking(
    iris: tuple[pd.DataFrame, pd.Series], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.chdir(tmp_path)
    X, y = iris
    # three folds inside each fit: on 80 rows two folds of 40 stop LightGBM after one round
    estimator = AutoClassifier(**{**FAST, "n_folds": 3})
    scores = cross_val_score(estimator, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,)
    assert scores.min() > 0.85
    assert list(tmp_path.iterdir()) == []  # no MLflow store, no package


def test_grid_search_over_two_families(iris: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = iris
    search = GridSearchCV(
        AutoClassifier(**FAST),
        {"families": [("lightgbm",), ("linear",)]},
        cv=KFold(2, shuffle=True, random_state=0),
    )
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_params_["families"] in (("lightgbm",), ("linear",))
    assert search.best_estimator_.model_.recipe.chosen.family == search.best_params_["families"][0]
    assert search.score(X, y) > 0.9


def test_a_fitted_estimator_pickles_as_its_package_and_leaves_no_files(
    regressor: AutoRegressor,
    diabetes: tuple[pd.DataFrame, pd.Series],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, _ = diabetes
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    restored = pickle.loads(pickle.dumps(regressor))
    np.testing.assert_array_equal(restored.predict(X), regressor.predict(X))
    assert restored.model_.path is None
    assert regressor.model_.path is not None  # pickling left the original as it was
    assert list(tmp_path.iterdir()) == []


def test_verbose_prints_the_runs_progress(
    iris: tuple[pd.DataFrame, pd.Series], capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = iris
    AutoClassifier(**FAST, verbose=True).fit(X, y)
    out = capsys.readouterr().out
    assert "reading and profiling the data" in out
    assert "trial 0 lightgbm: ok" in out


@pytest.mark.slow
def test_tracking_true_tracks_and_registers_like_mlwright_train(
    iris: tuple[pd.DataFrame, pd.Series], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    X, y = iris
    fitted = AutoClassifier(**FAST, tracking=True, name="iris-estimator").fit(X, y)
    assert fitted.model_.registry is not None
    (registered,) = [m for m in api.list_models() if m["name"] == "iris-estimator"]
    assert registered["versions"] == 1


# scikit-learn's own checks that train little or nothing; the rest are under `slow` below
CHEAP_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimators_unfitted",
    "check_estimator_repr",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_n_features_in_after_fitting",
    "check_estimators_pickle",
]


@pytest.mark.parametrize("check", CHEAP_CHECKS)
@pytest.mark.parametrize("estimator", [AutoClassifier, AutoRegressor], ids=lambda c: c.__name__)
def test_sklearn_checks_fast(check: str, estimator: type) -> None:
    getattr(estimator_checks, check)(estimator.__name__, estimator(**FAST))


# Every check passes; scikit-learn skips its array-API check itself unless SCIPY_ARRAY_API=1
# (mlwright trains on pandas and NumPy only).
@pytest.mark.slow
@parametrize_with_checks([AutoClassifier(**FAST), AutoRegressor(**FAST)])
def test_sklearn_checks_all(estimator: Any, check: Any) -> None:
    check(estimator)
