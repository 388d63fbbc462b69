"""`mlwright train / predict / evaluate / reproduce` as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mlwright.package.store import MANIFEST, sha256
from tests.conftest import CliResult, make_frame

Cli = Callable[..., CliResult]


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    path = tmp_path / "Customer Churn.csv"
    make_frame(300).to_csv(path, index=False)
    return path


def train(cli: Cli, data: Path, out: Path, *extra: str) -> CliResult:
    result = cli(
        "train",
        str(data),
        "--target",
        "churned",
        "--max-trials",
        "3",
        "--seed",
        "7",
        "--output",
        str(out),
        *extra,
    )
    assert result.code == 0, result.err
    return result


def test_train_prints_the_plan_trials_and_summary(cli: Cli, data_csv: Path, tmp_path: Path) -> None:
    result = train(cli, data_csv, tmp_path / "pkg")
    assert "Solution plan" in result.err
    assert "stratified kfold, 5 folds" in result.err
    assert "trial   0 lightgbm" in result.err
    assert "best: trial" in result.out
    assert f"model package: {tmp_path / 'pkg'}" in result.out
    assert (tmp_path / "pkg" / MANIFEST).is_file()


def test_default_name_and_folder(
    cli: Cli, data_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("train", str(data_csv), "-t", "churned", "--max-trials", "1", "--quiet")
    assert result.code == 0, result.err
    assert (tmp_path / "models" / "customer-churn" / MANIFEST).is_file()
    assert result.err == ""


def test_same_seed_and_trials_give_byte_identical_predictions(
    cli: Cli, data_csv: Path, tmp_path: Path
) -> None:
    train(cli, data_csv, tmp_path / "a")
    train(cli, data_csv, tmp_path / "b")
    for name in ("a", "b"):
        result = cli(
            "predict",
            str(tmp_path / name),
            str(data_csv),
            "--output",
            str(tmp_path / f"{name}.csv"),
        )
        assert result.code == 0, result.err
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    frame = pd.read_csv(tmp_path / "a.csv")
    assert list(frame.columns) == ["prediction", "proba_no", "proba_yes"]
    assert len(frame) == 300


def test_predict_parquet_and_bad_output(cli: Cli, data_csv: Path, tmp_path: Path) -> None:
    train(cli, data_csv, tmp_path / "pkg")
    result = cli("predict", str(tmp_path / "pkg"), str(data_csv), "-o", str(tmp_path / "p.parquet"))
    assert result.code == 0, result.err
    assert len(pd.read_parquet(tmp_path / "p.parquet")) == 300
    result = cli("predict", str(tmp_path / "pkg"), str(data_csv), "-o", str(tmp_path / "p.xlsx"))
    assert result.code == 1
    assert "name the output .csv or .parquet" in result.err


def test_predict_reports_schema_problems_and_extra_columns(
    cli: Cli, data_csv: Path, tmp_path: Path
) -> None:
    train(cli, data_csv, tmp_path / "pkg")
    frame = pd.read_csv(data_csv)
    bad = tmp_path / "bad.csv"
    frame.drop(columns=["x1"]).assign(x2="many").to_csv(bad, index=False)
    result = cli("predict", str(tmp_path / "pkg"), str(bad), "-o", str(tmp_path / "p.csv"))
    assert result.code == 1
    assert "column 'x1': required column is missing" in result.err
    assert "column 'x2', row 0: not a number (got 'many')" in result.err
    assert "300 problem(s)" in result.err or "301 problem(s)" in result.err
    assert not (tmp_path / "p.csv").exists()
    extra = tmp_path / "extra.csv"
    frame.assign(notes="hi").to_csv(extra, index=False)
    result = cli("predict", str(tmp_path / "pkg"), str(extra), "-o", str(tmp_path / "p.csv"))
    assert result.code == 0
    assert "ignored 1 column(s) the model does not use: notes" in result.err


def test_evaluate(cli: Cli, data_csv: Path, tmp_path: Path) -> None:
    train(cli, data_csv, tmp_path / "pkg")
    result = cli("evaluate", str(tmp_path / "pkg"), str(data_csv), "--json")
    assert result.code == 0, result.err
    scores = json.loads(result.out)
    assert set(scores) == {
        "roc_auc",
        "log_loss",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "average_precision",
    }
    unlabelled = tmp_path / "unlabelled.csv"
    pd.read_csv(data_csv).drop(columns="churned").to_csv(unlabelled, index=False)
    result = cli("evaluate", str(tmp_path / "pkg"), str(unlabelled))
    assert result.code == 1
    assert "no target column 'churned'" in result.err


def test_config_file_with_flags_overriding(cli: Cli, data_csv: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("max_trials: 1\nseed: 3\nfamilies: [linear]\ntest_size: 0.3\n")
    result = cli(
        "train",
        str(data_csv),
        "-t",
        "churned",
        "--config",
        str(config),
        "--seed",
        "4",
        "--output",
        str(tmp_path / "pkg"),
    )
    assert result.code == 0, result.err
    recipe = json.loads((tmp_path / "pkg" / "recipe.json").read_text())
    assert recipe["options"]["seed"] == 4
    assert recipe["options"]["families"] == ["linear"]
    assert recipe["test_rows"] == 90
    config.write_text("max_trails: 1\n")
    result = cli("train", str(data_csv), "-t", "churned", "--config", str(config))
    assert result.code == 1
    assert "max_trails: Extra inputs are not permitted" in result.err


def test_reproduce_passes_and_fails(cli: Cli, data_csv: Path, tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    cli("train", str(data_csv), "-t", "churned", "--time-budget", "8", "-o", str(pkg), "--quiet")
    result = cli("reproduce", str(pkg))
    assert result.code == 0, result.err
    assert "reproduced: the rebuilt model matches all 50 golden predictions" in result.out

    # a recipe that does not rebuild the recorded model: change the refit, re-sign the manifest
    recipe = json.loads((pkg / "recipe.json").read_text())
    chosen = recipe["chosen"]["refit_params"]
    for params in [m["params"] for m in chosen["members"]] if "members" in chosen else [chosen]:
        for key in ("rounds", "C", "alpha", "n_estimators", "iterations", "epochs"):
            if key in params:
                params[key] = params[key] * 3 if key != "C" else params[key] * 0.01
    (pkg / "recipe.json").write_text(json.dumps(recipe))
    manifest = json.loads((pkg / MANIFEST).read_text())
    manifest["files"]["recipe.json"] = sha256(pkg / "recipe.json")
    (pkg / MANIFEST).write_text(json.dumps(manifest))
    result = cli("reproduce", str(pkg))
    assert result.code == 1
    assert "not reproduced" in result.err

    other = tmp_path / "other.csv"
    pd.read_csv(data_csv).head(200).to_csv(other, index=False)
    result = cli("reproduce", str(pkg), "--data", str(other))
    assert result.code == 1
    assert "differs from the data the model was trained on" in result.err


def test_reproduce_reads_the_digest_of_earlier_releases(
    cli: Cli, data_csv: Path, tmp_path: Path
) -> None:
    from mlwright.package.store import load_package
    from mlwright.train.runner import data_digest, digest_version

    pkg = tmp_path / "pkg"
    cli("train", str(data_csv), "-t", "churned", "--max-trials", "1", "-o", str(pkg), "--quiet")
    recipe = json.loads((pkg / "recipe.json").read_text())
    assert digest_version(recipe["data"]["digest"]) == 2
    frame = pd.read_csv(data_csv)
    schema = load_package(pkg).schema
    legacy = data_digest(frame, schema, version=1)  # every value's text, no prefix
    assert len(legacy) == 64 and digest_version(legacy) == 1
    recipe["data"]["digest"] = legacy
    (pkg / "recipe.json").write_text(json.dumps(recipe))
    manifest = json.loads((pkg / MANIFEST).read_text())
    manifest["files"]["recipe.json"] = sha256(pkg / "recipe.json")
    (pkg / MANIFEST).write_text(json.dumps(manifest))
    result = cli("reproduce", str(pkg))
    assert result.code == 0, result.err
