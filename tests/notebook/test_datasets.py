"""mw.list_datasets(): every dataset load_dataset loads, with facts that match the archive."""

from __future__ import annotations

import io
import tarfile

import pandas as pd

import mlwright as mw
from mlwright.data.bundled import DATASETS, _archive


def test_list_datasets_names_what_load_dataset_loads() -> None:
    listed = mw.list_datasets()
    assert list(listed.columns) == ["name", "task", "target", "rows", "columns", "about"]
    assert list(listed["name"]) == list(DATASETS)
    assert set(listed["task"]) == {"binary", "multiclass", "regression"}
    mroz = listed.set_index("name").loc["Mroz"]
    assert (mroz["target"], mroz["rows"], mroz["columns"]) == ("work", 753, 18)


def test_rows_and_columns_match_the_archive() -> None:
    wanted = {f"resources/rdata/csv/{d.member}.csv": d for d in DATASETS.values()}
    seen = {}
    with tarfile.open(_archive(), mode="r|gz") as archive:  # one pass over the archive
        for member in archive:
            if member.name in wanted:
                handle = archive.extractfile(member)
                assert handle is not None
                frame = pd.read_csv(io.BytesIO(handle.read()), index_col=0)
                seen[wanted[member.name].name] = frame.shape
    assert seen == {d.name: (d.rows, d.columns) for d in DATASETS.values()}
