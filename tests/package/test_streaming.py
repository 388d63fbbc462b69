"""`mlwright predict MODEL DIR_OR_GLOB -o DIR`: Parquet files of any size scored batch by batch,
written partitioned like the input, each partition whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mlwright as mw
from mlwright.api import predict_files
from mlwright.errors import ConfigError, DataError, DataSourceError
from mlwright.package.model import Model
from tests.conftest import make_frame


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("streaming") / "churn"
    mw.train(make_frame(300), target="churned", max_trials=1, families="lightgbm",
             out=str(path), tracker="none", progress=False)  # fmt: skip
    return path


def lake(root: Path, rows: dict[str, int]) -> dict[str, pd.DataFrame]:
    """Parquet files at the given relative paths, of the given sizes (no target column)."""
    written = {}
    for i, (name, n) in enumerate(rows.items()):
        frame = make_frame(n, seed=i + 10).drop(columns="churned")
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(root / name, index=False)
        written[name] = frame
    return written


def test_files_are_scored_in_batches_and_partitioned_like_the_input(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = lake(
        tmp_path / "in",
        {"year=2024/a.parquet": 2500, "year=2024/b.parquet": 10, "year=2025/a.parquet": 0},
    )
    seen: list[int] = []
    prepare = Model.prepare

    def counted(self: Model, data: Any, **kw: Any) -> Any:
        seen.append(len(data))
        return prepare(self, data, **kw)

    monkeypatch.setattr(Model, "prepare", counted)
    scored = predict_files(model, tmp_path / "in", tmp_path / "out", batch_rows=1000)
    assert scored["rows"] == 2510
    targets = [Path(f["target"]).relative_to(tmp_path / "out") for f in scored["files"]]
    assert [t.as_posix() for t in targets] == [
        "year=2024/a.parquet", "year=2024/b.parquet", "year=2025/a.parquet",
    ]  # fmt: skip
    assert max(seen) == 1000  # never more rows at once than a batch
    loaded = mw.load(model)
    assert isinstance(loaded, Model)
    for name, frame in frames.items():
        out = pd.read_parquet(tmp_path / "out" / name)
        assert len(out) == len(frame)
        if len(frame):
            pd.testing.assert_frame_equal(out, loaded.predict(frame))  # same rows, same order
        else:
            assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
    assert not list((tmp_path / "out").rglob(".*"))  # no hidden partial file left
    # a glob names the same files
    again = predict_files(model, str(tmp_path / "in" / "**" / "*.parquet"), tmp_path / "glob")
    assert [f["rows"] for f in again["files"]] == [2500, 10, 0]


def test_a_bad_row_is_named_and_its_partition_is_not_written(model: Path, tmp_path: Path) -> None:
    frames = lake(tmp_path / "in", {"a.parquet": 300, "b.parquet": 3000})
    bad = frames["b.parquet"].astype({"x1": str})  # numbers as text: they are read as numbers
    bad.loc[2345, "x1"] = "not a number"
    bad.to_parquet(tmp_path / "in" / "b.parquet", index=False)
    with pytest.raises(DataError, match=r"(?s)b\.parquet \(rows counted from 0\).*row 2345"):
        predict_files(model, tmp_path / "in", tmp_path / "out", batch_rows=1000)
    assert (tmp_path / "out" / "a.parquet").is_file()  # finished before the failure
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.parquet"]  # and nothing else


def test_what_cannot_be_streamed_is_refused(model: Path, tmp_path: Path, cli: Any) -> None:
    lake(tmp_path / "in", {"a.parquet": 20})
    with pytest.raises(ConfigError, match="names a file"):
        predict_files(model, tmp_path / "in", tmp_path / "out.parquet")
    with pytest.raises(ConfigError, match="inside the input"):
        predict_files(model, tmp_path / "in", tmp_path / "in" / "scored")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataSourceError, match="no Parquet files"):
        predict_files(model, tmp_path / "empty", tmp_path / "out")
    (tmp_path / "in" / "notes.csv").write_text("x\n1\n")
    with pytest.raises(DataSourceError, match="not Parquet"):
        predict_files(model, str(tmp_path / "in" / "*"), tmp_path / "out")
    (tmp_path / "in" / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataSourceError, match=r"broken\.parquet is not a readable Parquet file"):
        predict_files(model, tmp_path / "in", tmp_path / "out2")
    refused = cli("predict", str(model), str(tmp_path / "in" / "a.parquet"), "-o", "x.csv",
                  "--backend", "ray")  # fmt: skip
    assert refused.code == 2 and "directory or a glob" in refused.err


def test_the_command_streams_a_directory(model: Path, tmp_path: Path, cli: Any) -> None:
    lake(tmp_path / "in", {"p=1/a.parquet": 500, "p=2/a.parquet": 700})
    result = cli("predict", str(model), str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                 "--batch-rows", "256")  # fmt: skip
    assert result.code == 0, result.err
    assert "wrote 1,200 predictions in 2 file(s)" in result.err
    out = pd.read_parquet(tmp_path / "out" / "p=2" / "a.parquet")
    assert len(out) == 700 and np.isfinite(out["proba_yes"]).all()
