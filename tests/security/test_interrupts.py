"""A training stopped by SIGTERM (a CI runner cancelling a job, a pod evicted) ends cleanly: the
MLflow run is closed as KILLED, not left RUNNING, and no package is half-written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlwright as mw
from tests.conftest import make_frame
from tests.track.test_servers import env_with


def _runs(uri: str) -> list[tuple[str, str]]:
    """(run name, status) of the parent runs in the store at ``uri``."""
    import os

    from mlwright.track.mlflow import _mlflow

    saved = os.environ["MLFLOW_TRACKING_URI"]
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        with _mlflow() as mlflow:
            client = mlflow.MlflowClient()
            experiments = [e.experiment_id for e in client.search_experiments()]
            runs = client.search_runs(experiments, filter_string="tags.mlwright.version != ''")
            return [
                (r.info.run_name, r.info.status)
                for r in runs
                if "mlflow.parentRunId" not in r.data.tags
            ]
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.mark.timeout(120)
# every core: on one core (a pinned xdist worker) the process was seen to end by SIGSEGV (-11)
# after SIGTERM, 2 of about 15 runs; an open bug of its own, not what this test checks
@pytest.mark.usefixtures("whole_machine")
def test_sigterm_during_train_marks_the_run_killed(tmp_path: Path) -> None:
    data = tmp_path / "churn.csv"
    make_frame(2000).to_csv(data, index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "pkg"
    command = [
        str(Path(sys.executable).parent / "mlwright"),
        "train",
        str(data),
        "--target",
        "churned",
        "--time-budget",
        "120",
        "--out",
        str(out),
    ]
    with (tmp_path / "train.log").open("wb") as log:
        proc = subprocess.Popen(
            command, env=env_with(MLFLOW_TRACKING_URI=uri), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        # the store is read only once the process made it (two processes migrating one new
        # SQLite store at once would collide)
        while "trial   0" not in (tmp_path / "train.log").read_text():
            assert proc.poll() is None, (tmp_path / "train.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "train.log").read_text()
            time.sleep(0.25)
        assert [status for _, status in _runs(uri)] == ["RUNNING"]
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()  # reaped, so that a failure above is reported as itself
    log_text = (tmp_path / "train.log").read_text()
    assert code == 143, log_text
    assert "terminated (SIGTERM)" in log_text
    assert [status for _, status in _runs(uri)] == ["KILLED"]
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pkg.")]  # no staging left


def test_a_stop_dropped_inside_a_fit_still_stops_the_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A signal's exception raised inside a callback of native code (CatBoost's, after a round)
    is printed as "ignored" and dropped; the stop recorded beside it still ends the fit at its
    next round and the training at the fold's end, instead of the search running on."""
    from mlwright.stopping import clear_stop, request_stop
    from mlwright.train.models.catboost import CatBoostFamily

    fit = CatBoostFamily.fit
    asked: list[float] = []

    def fit_asked_to_stop(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(time.monotonic())
        if len(asked) == 1:
            request_stop("SIGTERM")  # the handler records it, then raises
            try:
                raise KeyboardInterrupt  # ... where native code drops it
            except KeyboardInterrupt:
                pass
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(CatBoostFamily, "fit", fit_asked_to_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            mw.train(
                make_frame(2000),
                target="churned",
                families=("catboost",),
                time_budget=120,
                tracker="none",
                progress=False,
            )
    finally:
        clear_stop()
    assert len(asked) == 1  # no fit started after the stop (the search would run 120 s)
