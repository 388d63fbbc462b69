"""Every bundled dataset loads offline and profiles to the task it is documented for."""

from __future__ import annotations

from pathlib import Path

import pytest

import mlwright as mw
from mlwright.data.bundled import DATASETS, load_dataset
from mlwright.errors import DataSourceError


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_bundled_dataset_profiles_as_documented(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # loading must write nothing to the home folder
    spec = DATASETS[name]
    frame = load_dataset(name)
    assert spec.target in frame.columns
    p = mw.profile(frame, target=spec.target)
    assert p.task == spec.task
    assert list(tmp_path.iterdir()) == []


def test_grouped_datasets_suggest_a_grouped_split() -> None:
    p = mw.profile(load_dataset("Cracker"), target="choice")
    assert p.suggested_group_column == "id"


def test_unknown_dataset() -> None:
    with pytest.raises(
        DataSourceError, match="no bundled dataset named 'Mroze'; did you mean 'Mroz'"
    ):
        load_dataset("Mroze")
