"""Training on a directory of Parquet files: the search sees a seeded sample, the encoders and
the final XGBoost model learn from every row, the held-out rows stay out of the fit, and bad
files or rows are named."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.data.files import open_file_set, seeded_positions
from mlwright.data.schema import infer_schema
from mlwright.errors import ConfigError, DataError, DataSourceError
from mlwright.train.models.features import ColumnStats, FeatureEncoder
from tests.conftest import CliResult

FILES, ROWS = 3, 4_000
SAMPLE = 1_500


def write_lake(folder: Path, *, files: int = FILES, rows: int = ROWS, seed: int = 0) -> Path:
    """``files`` Parquet files of ``rows`` rows, two row groups each: y depends on x1, x2 and
    the category. The level ``rare`` is only in rows the seeded sample of SAMPLE leaves out."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    sampled = set(seeded_positions(files * rows, SAMPLE, 0).tolist())
    outside = [p for p in range(files * rows) if p not in sampled][:40]
    for f in range(files):
        x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
        cat = rng.choice(["a", "b", "c", "d"], size=rows)
        frame = pd.DataFrame({"x1": x1, "x2": x2, "cat": cat})
        for p in outside:
            if f * rows <= p < (f + 1) * rows:
                frame.loc[p - f * rows, "cat"] = "rare"
        effect = frame["cat"].map({"a": -1.0, "b": 0.0, "c": 0.5, "d": 1.0, "rare": 2.0})
        logit = 1.5 * x1 - x2 + effect.to_numpy()
        frame["y"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
        frame.to_parquet(folder / f"part-{f}.parquet", index=False, row_group_size=rows // 2)
    return folder


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lake(tmp_path_factory.mktemp("files") / "lake")


@pytest.fixture(scope="module")
def trained(lake: Path) -> mw.Model:
    return mw.train(
        lake, target="y", max_trials=2, sample_rows=SAMPLE, tracker="none", progress=False
    )


def test_the_final_model_learns_from_every_row_but_the_held_out_ones(
    trained: mw.Model, lake: Path
) -> None:
    scale = trained.recipe.scale
    assert scale is not None
    total = FILES * ROWS
    held = scale["held_out"]
    assert scale["files"] == {**scale["files"], "files": FILES, "row_groups": 2 * FILES}
    assert scale["sample"]["rows"] == SAMPLE
    # the test split and the early-stopping rows are rows of the sample, kept out of the fit
    assert held["test"] == trained.metrics["test_rows"] > 0
    assert held["early_stopping"] > 0
    assert (
        scale["fit"]["rows"]
        == scale["encoders"]["rows"]
        == total - held["test"] - held["early_stopping"]
    )
    assert trained.recipe.final_rows == scale["fit"]["rows"]
    assert trained.family.name == "xgboost"
    assert trained.family.fitted_["rounds"] == scale["fit"]["rounds"]
    # the encoder's vocabulary comes from every row: a level the sample never saw is known
    cat = next(c for c in trained.encoder.state()["columns"] if c["name"] == "cat")
    assert "rare" in cat["levels"]
    # the test split was scored on the final model, and the model predicts like any other
    assert set(trained.metrics["test"]) >= {"roc_auc", "accuracy"}
    assert trained.metrics["test"]["roc_auc"] > 0.75
    frame = pd.read_parquet(lake / "part-0.parquet")
    predicted = trained.predict(frame.drop(columns="y"))
    assert len(predicted) == ROWS and set(predicted["prediction"]) <= {"yes", "no"}
    assert not trained.metrics["refit_on_test"]


def test_the_recipe_and_the_report_say_what_ran_where(trained: mw.Model, tmp_path: Path) -> None:
    path = trained.save(tmp_path / "m")
    recipe = json.loads((path / "recipe.json").read_text())
    assert recipe["scale"]["fit"]["where"] == "driver"
    assert recipe["data"]["source"]["kind"] == "files"
    assert recipe["scale"]["digest"].startswith("files:v1:")
    report = (path / "report" / "report.md").read_text()
    assert f"{FILES * ROWS:,} rows in {FILES} Parquet file(s)" in report
    assert "the final XGBoost model boosted over" in report
    with pytest.raises(ConfigError, match="trained on a file set"):
        mw.reproduce(mw.load(path))


def test_the_same_seed_gives_the_same_model(trained: mw.Model, lake: Path) -> None:
    again = mw.train(
        lake, target="y", max_trials=2, sample_rows=SAMPLE, tracker="none", progress=False
    )
    frame = pd.read_parquet(lake / "part-1.parquet").drop(columns="y")
    assert again.recipe.scale["digest"] == trained.recipe.scale["digest"]
    np.testing.assert_array_equal(
        again.raw(again.prepare(frame)[0]), trained.raw(trained.prepare(frame)[0])
    )


def test_streamed_encoder_equals_the_encoder_fitted_in_memory() -> None:
    rng = np.random.default_rng(1)
    n = 3_000
    words = ["red car", "blue car fast", "slow red bike", "green bus", "fast bike"]
    frame = pd.DataFrame(
        {
            "a": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "b": rng.choice(list("abcdefg"), size=n, p=[0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05]),
            "c": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "min"),
            "t": [" ".join(rng.choice(words, size=3)) + f" w{i % 97}" for i in range(n)],
        }
    )
    schema = infer_schema(frame)
    columns = list(schema.columns)
    assert {c.kind for c in columns} == {"numeric", "categorical", "datetime", "text"}
    enforced = schema.enforce(frame)
    whole = FeatureEncoder().fit(enforced, columns)
    stats = {c.name: ColumnStats(c.kind) for c in columns}
    for start in range(0, n, 700):
        for c in columns:
            stats[c.name].merge(ColumnStats(c.kind).add(enforced[c.name].iloc[start : start + 700]))
    streamed = FeatureEncoder().fit_stats(stats, columns, {"a": float(np.nanmedian(frame["a"]))})
    for want, got in zip(whole.state()["columns"], streamed.state()["columns"], strict=True):
        assert want.keys() == got.keys()
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (want["name"], key)
            else:
                assert got[key] == value, (want["name"], key)


def test_files_with_other_columns_are_named(tmp_path: Path) -> None:
    folder = write_lake(tmp_path / "lake", files=2, rows=200)
    pd.DataFrame({"x1": [1.0], "y": ["yes"]}).to_parquet(folder / "part-9.parquet")
    with pytest.raises(DataSourceError, match=r"part-9\.parquet lacks 'cat', 'x2'"):
        open_file_set(folder)


def test_a_bad_value_outside_the_sample_is_named_with_its_file_and_row(tmp_path: Path) -> None:
    folder = write_lake(tmp_path / "lake", files=2, rows=1_000)
    sampled = set(seeded_positions(2_000, 300, 0).tolist())
    row = next(r for r in range(700, 1_000) if 1_000 + r not in sampled)  # 2nd row group
    for f in range(2):  # a date column, written as text
        frame = pd.read_parquet(folder / f"part-{f}.parquet")
        days = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(1_000) % 300, "D")
        frame["when"] = days.strftime("%Y-%m-%d")
        if f == 1:
            frame.loc[row, "when"] = "someday"
        frame.to_parquet(folder / f"part-{f}.parquet", index=False, row_group_size=500)
    with pytest.raises(
        DataError, match=r"(?s)part-1\.parquet \(rows counted from 0\).*when"
    ) as info:
        mw.train(folder, target="y", max_trials=1, sample_rows=300, tracker="none", progress=False)
    assert f"column 'when', row {row}: not a date (got 'someday')" in info.value.message


def test_a_class_the_sample_missed_asks_for_a_larger_sample(tmp_path: Path) -> None:
    folder = write_lake(tmp_path / "lake", files=2, rows=1_000)
    frame = pd.read_parquet(folder / "part-0.parquet")
    sampled = set(seeded_positions(2_000, 300, 0).tolist())
    row = next(r for r in range(1_000) if r not in sampled)
    frame.loc[row, "y"] = "maybe"
    frame.to_parquet(folder / "part-0.parquet", index=False, row_group_size=500)
    with pytest.raises(DataError, match="maybe") as info:
        mw.train(folder, target="y", max_trials=1, sample_rows=300, tracker="none", progress=False)
    assert "--sample-rows" in (info.value.fix or "")


def test_families_that_cannot_train_data_parallel_are_refused(lake: Path) -> None:
    with pytest.raises(ConfigError, match="linear cannot train data-parallel"):
        mw.train(lake, target="y", families="linear", tracker="none", progress=False)
    with pytest.raises(ConfigError, match="target column 'label' is not in"):
        mw.train(lake, target="label", tracker="none", progress=False)
    with pytest.raises(ConfigError, match="apply to training on a file set only"):
        mw.train(pd.read_parquet(lake / "part-0.parquet"), target="y", sample_rows=500,
                 tracker="none", progress=False)  # fmt: skip


def test_the_command_line_trains_on_a_glob(
    lake: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    out = tmp_path / "m"
    result = cli("train", str(lake / "part-*.parquet"), "--target", "y", "--max-trials", "1",
                 "--sample-rows", "1000", "-o", str(out))  # fmt: skip
    assert result.code == 0, result.err
    # tracked and registered like any run, under the folder's name
    assert "registered: lake version 1" in result.out
    import mlflow

    [run] = mlflow.search_runs(
        experiment_names=["lake"],
        filter_string="tags.mlflow.runName = 'train lake'",
        output_format="list",
    )
    assert "scale" in json.loads(
        Path(
            mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="recipe.json")
        ).read_text()
    )
    assert "sampling 1,000 of 12,000 rows from 3 file(s)" in result.err
    # the plan says what runs on the sample and what on every row, and where
    plan = " ".join(result.err.split())
    assert "12,000 rows in 3 Parquet file(s), 6 row group(s)" in plan
    assert "kept out of every fit" in plan
    assert "kept out of every fit, scored on the final model" in result.out
    assert json.loads((out / "recipe.json").read_text())["scale"]["fit"]["rows"] > 10_000
    refused = cli("train", str(lake), "--target", "y", "--train-workers", "2")
    assert refused.code != 0 and "--backend ray" in refused.err


def test_hours_seen_in_any_batch_keep_the_hour_feature() -> None:
    column = ColumnStats("datetime").add(pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02"])))
    column.merge(ColumnStats("datetime").add(pd.Series(pd.to_datetime(["2024-01-03 05:00"]))))
    assert column.hours == {0, 5}
    schema = infer_schema(pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-03"])}))
    spec = column.spec(schema["when"], FeatureEncoder().settings, None)
    assert spec["with_hour"] and spec["span"] == pytest.approx(2 + 5 / 24)


def test_a_table_whose_name_looks_like_a_glob_is_one_table(tmp_path: Path) -> None:
    from mlwright.data.files import is_file_set

    table = tmp_path / "sales[2023].csv"
    table.write_text("a,y\n1,0\n")
    assert not is_file_set(table)
    assert is_file_set(tmp_path / "*.parquet") and is_file_set(tmp_path)


def test_booleans_with_gaps_and_a_partition_without_labels(tmp_path: Path) -> None:
    folder = write_lake(tmp_path / "lake", files=2, rows=1_000)
    rng = np.random.default_rng(3)
    for f in range(2):
        frame = pd.read_parquet(folder / f"part-{f}.parquet")
        frame["flag"] = pd.array(rng.random(1_000) < 0.5, dtype="boolean")
        frame.loc[::9, "flag"] = pd.NA
        frame.to_parquet(folder / f"part-{f}.parquet", index=False, row_group_size=500)
    unlabelled = pd.read_parquet(folder / "part-1.parquet")
    unlabelled["y"] = None  # a partition whose outcomes are not known yet
    unlabelled.to_parquet(folder / "part-2.parquet", index=False)
    model = mw.train(
        folder, target="y", max_trials=1, sample_rows=600, tracker="none", progress=False
    )
    kinds = {c.name: c.kind for c in model.schema.columns}
    assert kinds["flag"] == "boolean"
    scale = model.recipe.scale
    assert scale["files"]["rows"] == 3_000
    held = scale["held_out"]["test"] + scale["held_out"]["early_stopping"]
    assert scale["fit"]["rows"] == 2_000 - held  # the unlabelled rows are not trained on


def test_rows_in_time_order_say_the_test_score_is_no_forecast(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    folder = write_lake(tmp_path / "lake", files=2, rows=1_000)
    for f in range(2):
        frame = pd.read_parquet(folder / f"part-{f}.parquet")
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=1_000 * f)
        frame["when"] = start + pd.to_timedelta(np.arange(1_000), "h")
        frame.to_parquet(folder / f"part-{f}.parquet", index=False, row_group_size=500)
    result = cli("train", str(folder), "--target", "y", "--max-trials", "1", "--sample-rows",
                 "600", "--tracker", "none", "-o", str(tmp_path / "m"))  # fmt: skip
    assert result.code == 0, result.err
    assert "is not a forecast of later data" in " ".join(result.err.split())
