"""--max-model-mb and --latency-budget-ms hold for the final model, measured as it is served."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.train.choice import ChoiceError
from tests.conftest import make_blend_frame


@pytest.fixture(scope="module")
def xor() -> pd.DataFrame:
    """Boosted trees win by far (a linear model cannot separate XOR) and take more space."""
    r = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({"x1": r.normal(size=n), "x2": r.normal(size=n), "x3": r.normal(size=n)})
    frame["y"] = np.where((frame.x1 > 0) ^ (frame.x2 > 0), "yes", "no")
    return frame


def train(frame: pd.DataFrame, **options: object) -> mw.Model:
    return mw.train(  # type: ignore[no-any-return]
        frame,
        target="y",
        families=("lightgbm", "linear"),
        max_trials=2,
        tracker="none",
        **options,
    )


def test_the_best_model_over_the_size_limit_gives_way_to_the_next(xor: pd.DataFrame) -> None:
    events: list[tuple[str, object]] = []
    from mlwright.config import TrainOptions
    from mlwright.train.runner import run_training as run

    options = TrainOptions(
        target="y",
        families=("lightgbm", "linear"),
        max_trials=2,
        tracker="none",
        max_model_mb=0.3,  # the plan's estimate lets LightGBM in; its package does not fit
    )
    model = run(xor, options, on_event=lambda kind, payload: events.append((kind, payload)))
    boosted, linear = model.trials
    assert boosted.family == "lightgbm" and linear.family == "linear"
    assert boosted.mean > linear.mean  # LightGBM is the better model out of fold …
    assert model.recipe["chosen"]["family"] == "linear"  # … but its package is too big
    checks = model.recipe["chosen"]["constraints_checked"]
    assert [c["family"] for c in checks] == ["lightgbm", "linear"]
    assert not checks[0]["ok"] and checks[0]["size_mb"] > 0.3
    assert "over --max-model-mb 0.3" in checks[0]["reason"]
    assert checks[1]["ok"] and checks[1]["size_mb"] <= 0.3 and checks[1]["p99_ms"] > 0
    notes = [str(p) for k, p in events if k == "decision"]
    assert any("trial 0 (lightgbm" in n and "trying the next best" in n for n in notes)


def test_generous_constraints_keep_the_best_and_record_its_measurements(xor: pd.DataFrame) -> None:
    model = train(xor, max_model_mb=1000, latency_budget_ms=10_000)
    assert model.recipe["chosen"]["family"] == "lightgbm"
    (check,) = model.recipe["chosen"]["constraints_checked"]
    assert check["ok"] and 0 < check["p99_ms"] < 10_000 and check["size_mb"] > 0.3


def test_when_no_candidate_meets_the_latency_budget_training_says_so(xor: pd.DataFrame) -> None:
    with pytest.raises(ChoiceError, match="no candidate meets the constraints") as caught:
        train(xor, latency_budget_ms=0.0001)
    message = str(caught.value)
    assert "trial 0 (lightgbm)" in message and "trial 1 (linear)" in message
    assert "over --latency-budget-ms 0.0001" in message and "--family" in message


def test_without_constraints_nothing_is_measured(xor: pd.DataFrame) -> None:
    model = train(xor)
    assert model.recipe["chosen"]["constraints_checked"] == []


def test_an_ensemble_over_the_latency_budget_gives_way_to_a_single_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The blend's members are each fast, the blend is over budget: the best single trial is
    chosen, and both measurements are recorded with the reason."""
    from mlwright.train import choice

    frame = make_blend_frame()
    real = choice.measure

    def slower_ensembles(model: mw.Model, candidate: choice.Candidate, options: object) -> dict:
        check = real(model, candidate, options)  # type: ignore[arg-type]
        if candidate.kind != "single":  # as if the members' predict times added up past it
            check.update(p99_ms=50.0, ok=False, reason="single-row p99 50.00 ms is over 20")
        return check

    monkeypatch.setattr(choice, "measure", slower_ensembles)
    model = mw.train(
        frame,
        target="y",
        families=("lightgbm", "linear"),
        max_trials=4,
        tracker="none",
        latency_budget_ms=20,
    )
    chosen = model.recipe["chosen"]
    checks = chosen["constraints_checked"]
    assert checks[0]["family"] == "ensemble" and not checks[0]["ok"]
    assert chosen["kind"] == "single" and chosen["family"] == checks[-1]["family"]
    assert checks[-1]["ok"] and checks[-1]["label"].startswith("trial ")
    assert model.family.name != "ensemble"
