"""`mlwright train DIR --backend ray`: the sample and the pass over every row as Ray tasks, the
final XGBoost model boosted by Ray Train workers that share the row groups, as accurate as the
same fit in one process; a bad row found on a worker is named as it is here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.data.files import seeded_positions
from mlwright.errors import DataError
from tests.conftest import CliResult
from tests.train.test_fulldata import write_lake


def test_ray_train_workers_share_the_rows_and_match_the_fit_here(
    ray_cluster: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    lake = write_lake(tmp_path / "lake", files=4, rows=3_000)
    options = ("--target", "y", "--max-trials", "1", "--sample-rows", "1500", "--tracker", "none")
    here = cli("train", str(lake), *options, "-o", str(tmp_path / "here"))
    assert here.code == 0, here.err
    result = cli("train", str(lake), *options, "-o", str(tmp_path / "ray"), "--backend", "ray",
                 "--ray-address", ray_cluster, "--train-workers", "2")  # fmt: skip
    assert result.code == 0, result.err
    assert "boosting on 2 Ray Train worker(s)" in result.err
    local = json.loads((tmp_path / "here" / "recipe.json").read_text())["scale"]
    scale = json.loads((tmp_path / "ray" / "recipe.json").read_text())["scale"]
    fit = scale["fit"]
    assert (
        fit["where"] == "ray train"
        and fit["workers"] == 2
        and scale["sample"]["where"] == ("ray tasks")
    )
    # the workers split the row groups and, together, every row the fit here used
    assert sorted(w["rank"] for w in fit["per_worker"]) == [0, 1]
    assert sum(w["rows"] for w in fit["per_worker"]) == fit["rows"] == local["fit"]["rows"]
    assert all(w["row_groups"] == 4 for w in fit["per_worker"])
    assert scale["digest"] == local["digest"]
    # one model grown from histograms over every row: as good as the fit in one process
    ray_model, here_model = mw.load(tmp_path / "ray"), mw.load(tmp_path / "here")
    ray_auc = ray_model.metrics["test"]["roc_auc"]
    assert ray_auc == pytest.approx(here_model.metrics["test"]["roc_auc"], abs=0.01)
    frame = pd.read_parquet(lake / "part-2.parquet").drop(columns="y")
    a = ray_model.predict_proba(frame).to_numpy()
    b = here_model.predict_proba(frame).to_numpy()
    assert np.mean(np.abs(a - b)) < 0.05


def test_a_bad_row_read_on_a_ray_worker_is_named(ray_cluster: str, tmp_path: Path) -> None:
    lake = write_lake(tmp_path / "lake", files=2, rows=1_000)
    sampled = set(seeded_positions(2_000, 300, 0).tolist())
    row = next(r for r in range(1_000) if r not in sampled)
    frame = pd.read_parquet(lake / "part-0.parquet")
    frame.loc[row, "y"] = "maybe"
    frame.to_parquet(lake / "part-0.parquet", index=False, row_group_size=500)
    with pytest.raises(DataError, match="maybe") as info:
        mw.train(lake, target="y", max_trials=1, sample_rows=300, tracker="none",
                 progress=False, backend="ray", ray_address=ray_cluster)  # fmt: skip
    assert "part-0.parquet (rows counted from 0)" in info.value.message
