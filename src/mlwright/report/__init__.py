"""The ML Solution report, for two readers: a plain-language Summary (what the model predicts, how
good it is against a naive baseline, what drives it, the risks and what to do next), for a
retrained model its Lineage (the version it retrains, how, why and on which data) and, once the
continuous-training loop has judged it, its Rollout (each decision and why), then the
engineer's sections (Problem Definition, Architecture, Training Pipeline, Evaluation and
Deployment), as Markdown (plots beside it) and as one self-contained HTML page.

    report = mw.load("models/churn").report()
    report.save("churn.html")       # or "churn.md"; in Jupyter the report shows inline

Every model package carries its report in ``report/`` (``report.md``, ``report.html``,
``plots/``, ``rebuild.py`` and the evidence it is drawn from, ``evaluation.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlwright.package.model import Model
from mlwright.report.document import Document, code, plain, to_html, to_markdown, write
from mlwright.report.lineage import lineage_section, rollout_section
from mlwright.report.results import deployment_section, evaluation_section
from mlwright.report.script import rebuild_script
from mlwright.report.sections import architecture_section, pipeline_section, problem_section
from mlwright.report.summary import summary_section

SUMMARY = "Summary"  # first, unnumbered
LINEAGE = "Lineage"  # a retrained model's, after the summary, unnumbered
SECTIONS = ("Problem Definition", "Architecture", "Training Pipeline", "Evaluation", "Deployment")


@dataclass
class Report:
    document: Document

    @classmethod
    def of(
        cls,
        model: Model,
        package_path: str | None = None,
        rollout: list[dict[str, Any]] | None = None,
    ) -> Report:
        """The report of ``model``; commands in it name ``package_path`` (default: where the
        model was loaded from). ``rollout``: the continuous-training loop's decisions about
        this version, shown after its lineage."""
        where = package_path or (str(model.path) if model.path else f"models/{model.name}")
        created = model.recipe.created_utc or datetime.now(UTC).isoformat("seconds")
        registry = model.registry or {}
        version = f" version {registry['version']}" if registry.get("version") else ""
        sections = [summary_section(model)]
        lineage = lineage_section(model)  # a retrained model's: what it retrains, and why
        if lineage is not None:
            sections.append(lineage)
        decided = rollout_section(rollout or [])
        if decided is not None:
            sections.append(decided)
        sections += [
            problem_section(model),
            architecture_section(model),
            pipeline_section(model, where),
            evaluation_section(model),
            deployment_section(model, where),
        ]
        doc = Document(
            title=f"ML Solution: {plain(model.name)}",
            subtitle=f"{model.task} model{version} predicting {code(model.schema.target)}, trained "
            f"{created}",
            sections=sections,
        )
        return cls(doc)

    def markdown(self) -> str:
        return to_markdown(self.document)

    def html(self) -> str:
        return to_html(self.document)

    def save(self, path: str | Path) -> Path:
        """Write the report: ``.html`` (one self-contained file) or ``.md`` (with ``plots/``
        beside it)."""
        from mlwright.errors import ConfigError

        target = Path(path)
        if target.suffix.lower() not in (".html", ".htm", ".md"):
            raise ConfigError(
                f"cannot tell the report's format from {str(target)!r}",
                fix="name the output FILE.html or FILE.md",
            )
        write(self.document, target)
        return target

    def _repr_html_(self) -> str:
        """In a notebook: the page in a frame of its own, so that its styles stay in it."""
        from mlwright.report.frame import framed

        return framed(self.html())


class TabularReporter:
    """The report of a tabular model as its model asks for it
    (:class:`~mlwright.package.model.Reporter`): training and :func:`mlwright.load` hand one to
    every model they return."""

    def render(self, model: Model) -> Report:
        return Report.of(model)

    def write(self, model: Model, root: Path, final: Path) -> None:
        write_package_report(model, root, final)


def write_package_report(model: Model, root: Path, final: Path) -> None:
    """Write ``report/`` into a package being staged at ``root`` for the folder ``final``
    (before its manifest is written)."""
    folder = root / "report"
    report = Report.of(model, package_path=_display(final))
    write(report.document, folder / "report.md")
    (folder / "report.html").write_text(report.html(), encoding="utf-8")
    (folder / "rebuild.py").write_text(rebuild_script(model), encoding="utf-8")


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


__all__ = ["LINEAGE", "SECTIONS", "SUMMARY", "Report", "TabularReporter", "write_package_report"]
