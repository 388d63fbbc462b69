"""`mlwright predict --backend ray`: Parquet files scored in parallel by Ray Data's actors, the
same predictions as scoring them here, partitioned like the input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

import mlwright as mw
from mlwright.api import predict_files
from tests.conftest import CliResult, make_frame


def test_ray_scores_the_files_as_the_local_backend_does(
    ray_cluster: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    package = tmp_path / "churn"
    mw.train(make_frame(300), target="churned", max_trials=1, families="linear",
             out=str(package), tracker="none", progress=False)  # fmt: skip
    for i in range(5):
        part = tmp_path / "in" / f"day={i}" / "part.parquet"
        part.parent.mkdir(parents=True)
        make_frame(1500 + 100 * i, seed=i).drop(columns="churned").to_parquet(part, index=False)
    here = predict_files(package, tmp_path / "in", tmp_path / "local", batch_rows=500)
    result = cli(
        "predict", str(package), str(tmp_path / "in"), "-o", str(tmp_path / "ray"),
        "--backend", "ray", "--ray-address", ray_cluster, "--batch-rows", "500",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "wrote 8,500 predictions in 5 file(s)" in result.err
    for record in here["files"]:
        name = Path(record["target"]).relative_to(tmp_path / "local")
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "ray" / name), pd.read_parquet(record["target"])
        )
    assert not list((tmp_path / "ray").rglob(".*"))
