"""The folder the documentation's examples run in: the files they name, made here.

A reader runs the examples in a project of their own; the tests give them one, in a temporary
folder: customers.csv (a bundled dataset, Participation, whose yes/no target is renamed
``churned``), new_customers.csv (the same rows without it), labelled_customers.csv and
labelled.csv (with it), shop.db (SQLite, an ``orders`` table with a ``returned`` column), and
train.py, notebooks/ and src/ (small Python files and a notebook for ``mlwright audit``).
"""

from __future__ import annotations

import json
import sqlite3
from functools import cache
from pathlib import Path

import pandas as pd

ROWS = 300  # a small table: the examples' trainings take seconds

TRAIN_PY = """\
import mlflow
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def fit(X, y):
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    with mlflow.start_run():
        model = LogisticRegression(C=0.5, random_state=0).fit(X_train, y_train)
        mlflow.log_metric("accuracy", model.score(X_test, y_test))
    return model
"""

FEATURES_PY = """\
import pandas as pd


def add_tenure(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(tenure=frame["age"] * 12)
"""


@cache
def _customers() -> pd.DataFrame:
    from mlwright.data.bundled import load_dataset

    return load_dataset("Participation").rename(columns={"lfp": "churned"}).head(ROWS)


def prepare(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    customers = _customers()
    customers.to_csv(folder / "customers.csv", index=False)
    customers.drop(columns="churned").to_csv(folder / "new_customers.csv", index=False)
    for name in ("labelled_customers.csv", "labelled.csv"):
        customers.tail(100).to_csv(folder / name, index=False)

    with sqlite3.connect(folder / "shop.db") as db:
        db.execute("create table orders (id integer, amount real, channel text, returned text)")
        db.executemany(
            "insert into orders values (?, ?, ?, ?)",
            [(i, i * 1.5, "web" if i % 4 else "shop", "yes" if i % 3 else "no") for i in range(60)],
        )
    db.close()

    (folder / "train.py").write_text(TRAIN_PY, encoding="utf-8")
    (folder / "src").mkdir(exist_ok=True)
    (folder / "src" / "features.py").write_text(FEATURES_PY, encoding="utf-8")
    (folder / "notebooks").mkdir(exist_ok=True)
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
                "source": ["import pandas as pd\n", "frame = pd.read_csv('customers.csv')\n"],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / "notebooks" / "explore.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    return folder
