from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import CliResult

Cli = Callable[..., CliResult]


@pytest.fixture
def churn_csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "churn.csv"
    frame.assign(account_id=range(len(frame))).to_csv(path, index=False)
    return path


def test_profile_prints_a_readable_definition(cli: Cli, churn_csv: Path) -> None:
    result = cli("profile", str(churn_csv), "--target", "churned")
    assert result.code == 0, result.err
    assert "Problem definition: churned" in result.out
    assert "binary — categorical target with 2 distinct values → binary" in result.out
    assert "roc_auc" in result.out
    assert "id_column" in result.out
    assert "account_id" in result.out


def test_profile_json_is_clean_and_stable(cli: Cli, churn_csv: Path) -> None:
    result = cli("profile", str(churn_csv), "--target", "churned", "--json")
    assert result.code == 0, result.err
    d = json.loads(result.out)  # stdout holds the JSON and nothing else
    assert d["task"] == "binary"
    assert d["source"]["kind"] == "csv"
    assert [w["code"] for w in d["warnings"]] == ["id_column"]
    assert d["dropped_columns"] == ["account_id"]


def test_profile_metric_and_task_options(cli: Cli, churn_csv: Path) -> None:
    result = cli(
        "profile", str(churn_csv), "-t", "x2", "--task", "regression", "--metric", "mae", "--json"
    )
    assert result.code == 0, result.err
    d = json.loads(result.out)
    assert (d["task"], d["metric"]) == ("regression", "mae")


def test_profile_sql(cli: Cli, tmp_path: Path, frame: pd.DataFrame) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as conn:
        frame.to_sql("customers", conn, index=False)
    result = cli(
        "profile", f"sqlite:///{db}", "--sql", "select * from customers", "-t", "churned", "--json"
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)["source"]["kind"] == "sql"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "-t", "y"], "file 'missing.csv' does not exist"),
        (["{csv}", "-t", "churn"], "target 'churn' is not in the data; did you mean 'churned'"),
        (
            ["{csv}", "-t", "churned", "--metric", "rmse"],
            "metric 'rmse' does not fit a binary task",
        ),
    ],
)
def test_profile_errors_exit_1_with_a_fix(
    cli: Cli, churn_csv: Path, args: list[str], message: str
) -> None:
    result = cli("profile", *[a.replace("{csv}", str(churn_csv)) for a in args])
    assert result.code == 1
    assert message in result.err
    assert "fix:" in result.err
    assert "Traceback" not in result.err
    assert result.out == ""


def test_usage_errors_exit_2(cli: Cli) -> None:
    result = cli("profile")
    assert result.code == 2
    assert "Missing argument" in result.err
    assert cli("no-such-command").code == 2


def test_version(cli: Cli) -> None:
    from mlwright import __version__

    result = cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"mlwright {__version__}"


def test_demo_profiles_trains_and_predicts_on_a_bundled_dataset(cli: Cli, tmp_path: Path) -> None:
    # 10 s: the budget's clock also covers creating the MLflow store (its first use in a test
    # worker) and profiling; with 5 s a worker on one busy core was refused as too short
    result = cli("demo", "--workdir", str(tmp_path / "demo"), "--time-budget", "10")
    assert result.code == 0, result.err
    assert (tmp_path / "demo" / "mroz.csv").is_file()
    assert (tmp_path / "demo" / "models" / "mroz" / "mlwright.json").is_file()
    assert len(pd.read_csv(tmp_path / "demo" / "predictions.csv")) == 753
    assert "Problem definition: work" in result.out
    assert "target_leakage" in result.out
    assert "hoursw" in result.out


def test_console_script_runs_and_stays_light(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mlwright")
    done = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert "profile" in done.stdout
    probe = (
        "import sys, mlwright.cli.main; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'sqlalchemy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
