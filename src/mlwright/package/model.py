"""A trained model: schema, feature encoder, fitted family and post-processing.

This is the fast scorer: input frames go through the schema (vectorised pandas), the NumPy
feature encoder and the family's native predict call; nothing per row, no scikit-learn pipeline.
``predict`` returns exactly the columns of ``mlwright predict``.
"""

from __future__ import annotations

import html
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlwright.data.io import read_table
from mlwright.data.records import RecordColumns
from mlwright.data.schema import TableSchema
from mlwright.data.tasks import Task
from mlwright.errors import ConfigError, SchemaViolationError, TargetError
from mlwright.package.recipe import Recipe
from mlwright.train.models import Family
from mlwright.train.models.blend import calibrate
from mlwright.train.models.features import FeatureEncoder

log = logging.getLogger("mlwright")


class Reporter(Protocol):
    """Renders a model's ML Solution report (:class:`mlwright.report.TabularReporter`).
    Whoever makes or loads a model hands it one (training, :func:`mlwright.load`), so that a
    package never depends on the report's code."""

    def render(self, model: Model) -> Any:
        """The report: shown inline in Jupyter; ``.save("report.html")`` writes it."""
        ...

    def write(self, model: Model, root: Path, final: Path) -> None:
        """``report/`` of a package being staged at ``root`` for the folder ``final``."""
        ...


@dataclass
class Model:
    name: str
    task: Task
    schema: TableSchema
    encoder: FeatureEncoder
    family: Family
    classes: tuple[Any, ...] | None = None
    threshold: float | None = None
    residual_quantiles: list[float] | None = None  # |OOF residual| at levels 0, 0.001, ..., 1
    n_residuals: int = 0
    temperature: float | None = None  # probability calibration (softmax(log p / T))
    recipe: Recipe = field(default_factory=Recipe)
    metrics: dict[str, Any] = field(default_factory=dict)
    golden: dict[str, Any] | None = None  # {"inputs": records, "expected": records}
    evidence: dict[str, Any] | None = field(default=None, repr=False)  # report/evaluation.json
    reference: dict[str, Any] | None = field(default=None, repr=False)  # reference.json
    path: Path | None = None
    # set by training only (not saved): the ProblemDefinition, the SolutionPlan and the trials
    problem: Any = field(default=None, repr=False, compare=False)
    plan: Any = field(default=None, repr=False, compare=False)
    trials: Any = field(default=None, repr=False, compare=False)
    registry: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    reporter: Reporter | None = field(default=None, repr=False, compare=False)

    # --- input ----------------------------------------------------------------------------------
    def prepare(self, data: Any, *, sql: str | None = None) -> tuple[pd.DataFrame, list[str]]:
        """The feature frame with trained dtypes, and notices (e.g. ignored extra columns).
        Every schema problem is raised at once as a SchemaViolationError."""
        frame, _ = read_table(data, sql=sql, decimal=self.decimal_mark)
        enforced, violations, total = self.schema.check(frame)
        if violations:
            raise SchemaViolationError(violations, total=total)
        notices = []
        extra = [c for c in self.schema.extra_columns(frame) if c != self.schema.target] + [
            c.name
            for c in self.schema.columns
            if c.role not in ("feature", "target") and c.name in frame
        ]
        if extra:
            notices.append(
                f"ignored {len(extra)} column(s) the model does not use: {', '.join(extra[:10])}"
                + (" …" if len(extra) > 10 else "")
            )
        for note in notices:
            log.info(note)
        return enforced, notices

    @property
    def decimal_mark(self) -> str | None:
        """The decimal mark of the training CSV: a new CSV that shows none is read with it."""
        mark = self.recipe.data.source.get("decimal")
        return mark if isinstance(mark, str) else None

    def raw(self, features: pd.DataFrame | RecordColumns) -> np.ndarray:
        raw = self.family.predict_encoded(lambda view: self.encoder.transform(features, view))
        if self.temperature is not None:
            raw = calibrate(raw, self.temperature)
        return raw

    # --- prediction -----------------------------------------------------------------------------
    def predict(
        self, data: Any, *, interval: float | None = None, sql: str | None = None
    ) -> pd.DataFrame:
        """``prediction`` (and ``proba_<class>`` per class, or ``lower``/``upper`` with
        ``interval`` for regression), one row per input row, in input order."""
        features, _ = self.prepare(data, sql=sql)
        return self.predict_frame(features, interval=interval)

    def predict_frame(
        self, features: pd.DataFrame, *, interval: float | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame(self.outputs(features, interval=interval))

    def outputs(
        self, features: pd.DataFrame | RecordColumns, *, interval: float | None = None
    ) -> dict[str, np.ndarray]:
        """The output columns of :meth:`predict` as NumPy arrays, from enforced features."""
        raw = self.raw(features)
        if self.task == "regression":
            out = {"prediction": raw}
            if interval is not None:
                width = self.interval_width(interval)
                out["lower"] = raw - width
                out["upper"] = raw + width
            return out
        if interval is not None:
            raise ConfigError("--interval applies to regression models only", fix="drop --interval")
        assert self.classes is not None
        out = {"prediction": self.labels(raw).astype(_label_dtype(self.classes))}
        for j, cls in enumerate(self.classes):
            out[f"proba_{cls}"] = raw[:, j]
        return out

    def predict_proba(self, data: Any, *, sql: str | None = None) -> pd.DataFrame:
        if self.task == "regression":
            raise ConfigError("predict_proba is for classification models", fix="use predict")
        return self.predict(data, sql=sql).drop(columns="prediction")

    def labels(self, proba: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        if len(self.classes) == 2 and self.threshold is not None:
            idx = (proba[:, 1] >= self.threshold).astype(int)
        else:
            idx = proba.argmax(axis=1)
        return np.asarray(np.array(self.classes, dtype=object)[idx])

    def interval_width(self, level: float) -> float:
        if self.residual_quantiles is None or not self.n_residuals:
            raise ConfigError("this model has no residuals for intervals", fix="drop --interval")
        if not 0 < level < 1:
            raise ConfigError(f"--interval must be between 0 and 1, got {level}", fix="e.g. 0.9")
        n = self.n_residuals
        adjusted = min(1.0, math.ceil((n + 1) * level) / n)  # split-conformal finite-sample level
        k = min(1000, math.ceil(adjusted * 1000 - 1e-9))
        return float(self.residual_quantiles[k])

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, data: Any, *, sql: str | None = None) -> dict[str, float]:
        """Every metric of the task on labelled data."""
        from mlwright.evaluate.metrics import all_scores

        frame, _ = read_table(data, sql=sql, decimal=self.decimal_mark)
        target = self.schema.target
        assert target is not None
        if target not in frame.columns:
            raise TargetError(
                f"the data has no target column {target!r} to evaluate against",
                fix="pass labelled data",
            )
        frame = frame[frame[target].notna()]
        if frame.empty:
            raise TargetError(f"every value of {target!r} is missing", fix="pass labelled data")
        features, _ = self.prepare(frame)
        raw = self.raw(features)
        y = encode_target(frame[target], self.task, self.classes)
        return all_scores(self.task, y, raw, 0.5 if self.threshold is None else self.threshold)

    # --- report ---------------------------------------------------------------------------------
    def report(self) -> Any:
        """The ML Solution report (:class:`mlwright.report.Report`): shown inline in Jupyter;
        ``.save("report.html")`` or ``.save("report.md")`` writes it."""
        if self.reporter is None:
            raise ConfigError(
                f"model {self.name!r} was loaded without its report",
                fix="load it with mlwright.load(...), or render it with "
                "mlwright.report.Report.of(model)",
            )
        return self.reporter.render(self)

    # --- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the package to ``path`` atomically, its report rendered by ``reporter``."""
        from mlwright.package.store import save_package

        self.path = save_package(self, Path(path), overwrite=overwrite, reporter=self.reporter)
        return self.path

    def __repr__(self) -> str:
        cv = self.recipe.cv
        score = f", cv {cv.metric} {cv.mean:.4f}" if cv.mean is not None else ""
        family = self.recipe.chosen.family or self.family.name
        return f"<mlwright Model {self.name!r}: {self.task}, {family}{score}>"

    def _repr_html_(self) -> str:
        """The model in a notebook: what it predicts, how well, with what, and where it is.
        Every value is escaped (names and labels come from the data); no ``<style>``."""
        rows = [(label, html.escape(value)) for label, value in self._summary()]
        body = "".join(
            f'<tr><th style="text-align: left; padding-right: 1em">{label}</th>'
            f'<td style="text-align: left">{value}</td></tr>'
            for label, value in rows
        )
        title = f"mlwright model <code>{html.escape(self.name)}</code>"
        return f'<div class="mlwright-model"><b>{title}</b><table>{body}</table></div>'

    def _summary(self) -> list[tuple[str, str]]:
        """(label, plain text) pairs for :meth:`_repr_html_`."""
        recipe, cv = self.recipe, self.recipe.cv
        lines = [("task", f"{self.task}, predicting {self.schema.target!r}")]
        if cv.mean is not None:
            spread = f" ± {cv.std:.4f}" if cv.std is not None else ""
            lines.append(("cv score", f"{cv.metric} {cv.mean:.4f}{spread} over {cv.folds} fold(s)"))
        test = self.metrics.get("test") or {}
        if cv.metric in test:
            rows = self.metrics.get("test_rows")
            on = f" on {rows:,} held-out rows" if rows else ""
            lines.append(("test score", f"{cv.metric} {test[cv.metric]:.4f}{on}"))
        lines.append(("model", self._chosen()))
        features = self.schema.features
        lines.append(("features", f"{len(features):,} of {len(self.schema.columns):,} columns"))
        if self.threshold is not None:
            lines.append(("decision threshold", f"{self.threshold:g}"))
        if self.registry:
            r = self.registry
            alias = f" ({r['alias']})" if r.get("alias") else ""
            lines.append(("registered", f"{r.get('name')} version {r.get('version')}{alias}"))
        lines.append(("package", str(self.path) if self.path else "not saved (model.save(path))"))
        if recipe.elapsed_s is not None:
            created = f", {recipe.created_utc}" if recipe.created_utc else ""
            lines.append(("trained", f"in {recipe.elapsed_s:.1f} s{created}"))
        return lines

    def _chosen(self) -> str:
        chosen = self.recipe.chosen
        if chosen.kind == "single" or not chosen.members:
            trial = f" (trial {chosen.trial})" if chosen.trial is not None else ""
            return f"{chosen.family or self.family.name}{trial}"
        families = {t.number: t.family for t in self.recipe.trials}
        members = ", ".join(f"{families.get(n, '?')} (trial {n})" for n in chosen.members)
        return f"{chosen.kind} ensemble of {members}"


def encode_target(values: pd.Series, task: Task, classes: tuple[Any, ...] | None) -> np.ndarray:
    """Class indices (classification) or floats (regression). Unknown labels are an error."""
    if task == "regression":
        return np.asarray(pd.to_numeric(values, errors="raise"), dtype="float64")
    assert classes is not None
    lookup = {_key(c): i for i, c in enumerate(classes)}
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    found = uniques.tolist()
    unknown = set()
    if len({type(u) for u in found}) <= 1:  # one kind of value: each distinct value looked up once
        mapped = np.array([lookup.get(_key(u), -1) for u in found], dtype=np.int64)
        out = mapped[codes] if len(found) else np.empty(0, dtype=np.int64)
        unknown = {u for u, code in zip(found, mapped, strict=True) if code < 0}
    else:  # mixed kinds (1, 1.0, True hash alike): each value on its own
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values.tolist()):
            code = lookup.get(_key(v))
            if code is None:
                unknown.add(v)
                code = -1
            out[i] = code
    if unknown:
        raise TargetError(
            f"target values {sorted(map(str, unknown))[:10]} were not seen in training "
            f"(classes: {list(classes)})",
            fix="evaluate on data labelled with the training classes",
        )
    return out


def _key(value: Any) -> Any:
    """Labels compare by value across int/float/bool/str read from different files."""
    if isinstance(value, (bool, np.bool_)):
        return ("b", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return ("n", int(value))
    if isinstance(value, (float, np.floating)):
        return ("n", float(value))
    return ("s", str(value))


def _label_dtype(classes: tuple[Any, ...]) -> str:
    if all(isinstance(c, bool) for c in classes):
        return "bool"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return "int64"
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        return "float64"
    return "str"
