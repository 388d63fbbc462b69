"""The ML Solution report: written into every package, in Markdown and self-contained HTML."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import mlwright as mw
from mlwright.report import SECTIONS
from tests.conftest import CliResult, make_frame

TASKS = ["binary", "multiclass", "regression"]
Packages = dict[str, tuple[Path, Path]]


@pytest.mark.parametrize("task", TASKS)
def test_every_package_carries_its_report_in_both_formats(packages: Packages, task: str) -> None:
    package, _ = packages[task]
    folder = package / "report"
    md = (folder / "report.md").read_text(encoding="utf-8")
    page = (folder / "report.html").read_text(encoding="utf-8")
    for i, title in enumerate(SECTIONS, 1):
        assert f"## {i}. {title}" in md
        assert f"{i}. {title}</h2>" in page
    # every figure the Markdown names is a file beside it; the page embeds the same figures
    images = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", md)
    assert images and all((folder / image).is_file() for image in images)
    assert page.count('src="data:image/png;base64,') == len(images)
    assert not re.search(r'(src|href)="(https?:|//|plots/)', page)  # the page stands alone
    mw.load(package)  # the report is in the manifest: the package still verifies


@pytest.mark.parametrize("task", TASKS)
def test_the_evaluation_matches_the_recorded_test_metrics(packages: Packages, task: str) -> None:
    model = mw.load(packages[task][0])
    assert model.evidence is not None
    test = model.evidence["test"]["metrics"]
    assert set(test) == set(model.metrics["test"])
    for name, value in model.metrics["test"].items():
        assert test[name]["value"] == pytest.approx(value, abs=1e-12)
        if test[name]["low"] is not None:
            assert test[name]["low"] <= value <= test[name]["high"]
    md = (packages[task][0] / "report" / "report.md").read_text(encoding="utf-8")
    metric = model.recipe["cv"]["metric"]
    assert f"| {metric} ({'lower' if metric in ('log_loss', 'rmse') else 'higher'} is better)" in md
    assert "Feature importance" in md and "Permutation importance on the test split" in md


def test_classification_reports_show_per_class_results_and_curves(packages: Packages) -> None:
    folder = packages["binary"][0] / "report"
    md = (folder / "report.md").read_text(encoding="utf-8")
    assert "### Per class (test)" in md
    assert re.search(r"^\| (yes|no) \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| \d+ \|$", md, re.M)
    plots = {p.name for p in (folder / "plots").iterdir()}
    assert {"confusion_test.png", "roc_test.png", "pr_test.png", "calibration_test.png"} <= plots
    tuned = mw.load(packages["binary"][0]).threshold is not None
    assert ("Decision threshold on the positive class" in md) is tuned
    assert ("The decision threshold stays at 0.5" in md) is not tuned
    multi = (packages["multiclass"][0] / "report" / "report.md").read_text(encoding="utf-8")
    assert "one class against the rest" in multi
    for label in ("high", "mid", "low"):
        assert re.search(rf"^\| {label} \| ", multi, re.M)


def test_the_neural_net_shows_its_learning_curve(packages: Packages) -> None:
    folder = packages["multiclass"][0] / "report"
    assert (folder / "plots" / "learning_curve_0.png").is_file()
    evidence = json.loads((folder / "evaluation.json").read_text())
    (series,) = evidence["learning_curves"].values()
    assert any(len(points) >= 2 for points in series.values())


def test_regression_reports_show_residuals_and_shap(packages: Packages) -> None:
    folder = packages["regression"][0] / "report"
    md = (folder / "report.md").read_text(encoding="utf-8")
    assert "### Residuals (test)" in md and "plots/residuals_test.png" in md
    assert "Confusion" not in md
    model = mw.load(packages["regression"][0])
    if model.recipe["chosen"]["family"] == "lightgbm":
        assert "importance_shap.png" in md


def test_the_deployment_section_gives_a_request_the_server_answers(packages: Packages) -> None:
    from fastapi.testclient import TestClient

    from mlwright.serve.app import create_app

    package, _ = packages["binary"]
    md = (package / "report" / "report.md").read_text(encoding="utf-8")
    body = re.search(r"-d '(\{.*\})'", md)
    assert body is not None
    expected = json.loads(re.search(r"```json\n(\[.*?\])\n```", md, re.S).group(1))  # type: ignore[union-attr]
    with TestClient(create_app(mw.load(package))) as client:
        response = client.post("/v1/predict", json=json.loads(body.group(1)))
    assert response.status_code == 200
    got = response.json()["predictions"][0]
    assert got["prediction"] == expected[0]["prediction"]
    assert got["proba_yes"] == pytest.approx(expected[0]["proba_yes"], abs=1e-9)
    assert f"mlwright serve {package}" in md or "mlwright serve " in md


@pytest.mark.parametrize("task", TASKS)
def test_the_rebuild_script_reproduces_the_predictions(packages: Packages, task: str) -> None:
    package, data = packages[task]
    done = subprocess.run(
        [sys.executable, str(package / "report" / "rebuild.py"), str(data)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced: 50 golden rows" in done.stdout


def test_the_rebuild_script_refuses_other_data(packages: Packages, tmp_path: Path) -> None:
    package, data = packages["binary"]
    changed = pd.read_csv(data)
    changed.loc[0, "x1"] += 1.0
    changed.to_csv(tmp_path / "changed.csv", index=False)
    done = subprocess.run(
        [sys.executable, str(package / "report" / "rebuild.py"), str(tmp_path / "changed.csv")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 1
    assert "cannot rebuild: the data differs" in done.stdout


def test_a_changed_report_fails_the_package_check(packages: Packages, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(packages["binary"][0], copy)
    (copy / "report" / "report.html").write_text("<p>approved</p>", encoding="utf-8")
    with pytest.raises(mw.MlwrightError, match=r"report/report.html was modified"):
        mw.load(copy)


Cli = Callable[..., CliResult]


def test_the_report_command_writes_either_format(
    packages: Packages, cli: Cli, tmp_path: Path
) -> None:
    package, _ = packages["regression"]
    done = cli("report", str(package), "--output", str(tmp_path / "out" / "r.md"))
    assert done.code == 0, done.err
    md = (tmp_path / "out" / "r.md").read_text(encoding="utf-8")
    assert f"mlwright reproduce {package}" in md
    assert (tmp_path / "out" / "plots" / "residuals_test.png").is_file()
    done = cli("report", str(package), "-o", str(tmp_path / "r.html"))
    assert done.code == 0 and "wrote the ML Solution report" in done.out
    assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    done = cli("report", str(package), "-o", str(tmp_path / "r.pdf"))
    assert done.code == 1 and "FILE.html or FILE.md" in done.err
    done = cli("report", str(tmp_path / "nothing"))
    assert done.code == 1 and "does not exist" in done.err


def test_a_training_run_logs_its_report_and_reports_by_run_id(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    model = mw.train(make_frame(), target="churned", name="churn", max_trials=1, seed=0)
    assert model.registry is not None
    run_id = model.registry["run_id"]
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/rebuild.py"} <= logged
    done = cli("report", run_id, "-o", "by-run.md")
    assert done.code == 0, done.err
    assert "mlwright serve churn/1" in Path("by-run.md").read_text(encoding="utf-8")
    done = cli("report", "0" * 32)
    assert done.code == 1 and "no run" in done.err


def test_the_python_api_renders_inline_and_saves(packages: Packages, tmp_path: Path) -> None:
    report = mw.load(packages["binary"][0]).report()
    page = report.html()
    assert page.startswith("<!DOCTYPE html>") and "Problem Definition" in page
    assert report._repr_html_().startswith("<iframe srcdoc=")  # in a notebook: framed
    assert report.save(tmp_path / "r.md").read_text(encoding="utf-8") == report.markdown()


def test_without_a_test_split_the_report_says_what_it_shows(tmp_path: Path) -> None:
    model = mw.train(
        make_frame(n=60), target="churned", max_trials=1, families=("linear",), tracker="none"
    )
    assert model.metrics["test_rows"] == 0 and model.evidence is not None
    assert model.evidence["test"] is None
    md = model.report().save(tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| metric | validation (" in md and "| naive baseline (validation) |" in md
    assert "| test (" not in md and "Test: the held-out split" not in md
    assert "plots/confusion_validation.png" in md
    assert "Permutation importance on the training rows (in-sample)" in md
    assert "no test split" in md
