"""The recipe of a trained model: what reproducing it, the report and the user need to know how it
was made, typed and versioned.

A package's ``recipe.json`` holds one of two shapes. A tabular model's (:class:`Recipe`, written
by ``mlwright train``) carries ``recipe_format`` and records the seed, the resolved options, the
plan, the data, where the search ran, the budget, every trial, the chosen configuration, the
problem, the cross-validated score and the library versions. A PyTorch model's
(:class:`TorchRecipe`, written by ``mlwright train-torch``) carries ``"kind": "torch"`` and
records the resolved config, every epoch and the export checks.

Reading is lenient, writing is exact. :meth:`Recipe.read` loads any recipe written so far: a key
an older version did not write takes its default, a key this version does not know (a newer
writer's) is kept, and :meth:`Recipe.to_dict` writes back exactly the keys that were read or
set, so a package written again keeps its ``recipe.json`` key for key.

``recipe["chosen"]["family"]`` and ``recipe.get("cv", {})`` still work, returning the plain
values ``recipe.json`` holds, nested dicts included: scripts and notebooks written when the
recipe was a dict keep working. New code reads attributes: ``recipe.chosen.family``.
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlwright.errors import MlwrightError

RECIPE_FORMAT = 1  # the tabular recipe's format; every recipe written so far has format 1

Number = int | float  # a score or a count as written: an int stays an int, a float a float


_R = TypeVar("_R", bound="RecipePart")


class RecipeError(MlwrightError):
    """A ``recipe.json`` whose values are not those of a recipe."""


class RecipePart(BaseModel):
    """One part of a recipe. Keys it does not declare are kept (they round-trip), and
    ``part["key"]`` / ``part.get("key")`` read it like the dict it is written as."""

    model_config = ConfigDict(extra="allow")

    def to_dict(self) -> dict[str, Any]:
        """The part as it is written: the keys that were read or set, in the order declared,
        then the keys it does not declare."""
        return self.model_dump(exclude_unset=True)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.model_fields_set  # what to_dict writes

    def keys(self) -> KeysView[str]:
        """The keys as written (kept for older scripts, as are ``items``, ``values``, ``len``)."""
        return self.to_dict().keys()

    def items(self) -> ItemsView[str, Any]:
        return self.to_dict().items()

    def values(self) -> ValuesView[Any]:
        return self.to_dict().values()

    def __len__(self) -> int:
        return len(self.to_dict())

    def __getitem__(self, key: str) -> Any:
        """The value under ``key`` as the dict recipe held it (kept for older scripts)."""
        extra = self.__pydantic_extra__ or {}
        if key in extra:
            return _plain(extra[key])
        if key in type(self).model_fields:
            return _plain(getattr(self, key))
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key`` as the dict recipe held it, else ``default`` (kept for older
        scripts)."""
        return self[key] if key in self else default  # noqa: SIM401 (this is get)


def _plain(value: Any) -> Any:
    if isinstance(value, RecipePart):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class DataRecord(RecipePart):
    """The training data: where it came from, its digest, size, columns and what preparing it
    decided."""

    source: dict[str, Any] = Field(default_factory=dict)  # SourceInfo.to_dict()
    digest: str | None = None
    rows: int | None = None
    columns: list[str] = Field(default_factory=list)
    decisions: list[str] = Field(default_factory=list)


class BudgetRecord(RecipePart):
    """How the time budget was spent (``Budget.to_dict()``)."""

    seconds: Number | None = None
    folds: int | None = None
    search_rows: int | None = None
    after_rows: int | None = None
    skipped: Any = None


class TrialRecord(RecipePart):
    """One trial of the search (``Trial.to_dict()``)."""

    number: int = 0
    family: str = ""
    source: str | None = None
    status: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    fold_scores: list[Number] = Field(default_factory=list)
    mean: Number | None = None
    std: Number | None = None
    seconds: Number | None = None
    predict_ms: Number | None = None
    error: str | None = None
    fitted: Any = None
    rows: int | None = None
    capped_folds: int = 0


class ChosenRecord(RecipePart):
    """The final model: its trial (or ensemble members), configuration, post-processing and
    every candidate measured against the constraints."""

    trial: int | None = None
    family: str = ""
    kind: str = "single"
    members: list[int] = Field(default_factory=list)
    params: dict[str, Any] | None = None
    refit_params: dict[str, Any] = Field(default_factory=dict)
    calibration: Any = None
    threshold: Any = None
    combinations: Any = None
    tradeoff: Any = None
    constraints_checked: list[dict[str, Any]] = Field(default_factory=list)


class CvRecord(RecipePart):
    """The chosen model's cross-validated score and what it rests on."""

    metric: str | None = None
    mean: Number | None = None
    std: Number | None = None
    folds: int | None = None
    folds_planned: int | None = None
    trials_cut: int = 0
    trials_capped: int = 0
    note: str | None = None


class LineageRecord(RecipePart):
    """Where a retrained model comes from (``mlwright retrain``): its parent version, how it was
    made (``refit``: the parent's configurations fitted again, no search; ``search``: a budgeted
    search), the data sources with their rows and digests, the reason and the evidence that
    triggered it, the rollout of the continuous-training loop it belongs to, and the parent's
    score on the new rows (which it never trained on)."""

    parent: dict[str, Any] = Field(default_factory=dict)  # name, version, ref, cv
    mode: Literal["refit", "search"] = "refit"
    reason: str = ""
    trigger: dict[str, Any] | None = None
    rollout: str | None = None
    sources: list[dict[str, Any]] = Field(default_factory=list)
    parent_on_new_data: dict[str, Any] | None = None  # {"metric", "value", "rows"}

    def tags(self) -> dict[str, str]:
        """What the training run and the registered version record of it (MLflow tags:
        ``mlwright.parent``, ``mlwright.retrain.*``, ``mlwright.rollout``)."""
        parent = self.parent
        sources = ", ".join(
            f"{s.get('kind')}:{s.get('location')} ({s.get('rows')} rows)" for s in self.sources
        )
        tags = {
            "mlwright.parent": f"{parent.get('name')}/{parent.get('version')}",
            "mlwright.retrain.mode": self.mode,
            "mlwright.retrain.reason": self.reason[:5000],
            "mlwright.retrain.sources": sources[:5000],
        }
        if self.rollout:
            tags["mlwright.rollout"] = self.rollout
        return tags


class Recipe(RecipePart):
    """A tabular model's recipe (``mlwright train``)."""

    recipe_format: int = RECIPE_FORMAT
    created_utc: str | None = None
    name: str | None = None
    seed: int = 0
    threads: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)  # TrainOptions, resolved, as JSON
    plan: dict[str, Any] = Field(default_factory=dict)  # SolutionPlan.to_dict()
    data: DataRecord = Field(default_factory=DataRecord)
    search: dict[str, Any] = Field(default_factory=dict)  # where the search ran
    budget: BudgetRecord = Field(default_factory=BudgetRecord)
    trials: list[TrialRecord] = Field(default_factory=list)
    chosen: ChosenRecord = Field(default_factory=ChosenRecord)
    problem: dict[str, Any] = Field(default_factory=dict)  # ProblemDefinition, less its schema
    cv: CvRecord = Field(default_factory=CvRecord)
    test_rows: int | None = None
    final_rows: int | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)
    elapsed_s: Number | None = None
    lineage: LineageRecord | None = None  # a retrained model's (``mlwright retrain``)
    # a model trained on a file set: the sample, the pass over every row and the data-parallel
    # fit, each with where it ran and on how many rows (:mod:`mlwright.train.fulldata`)
    scale: dict[str, Any] | None = None

    @classmethod
    def read(cls, recipe: Mapping[str, Any]) -> Self:
        """A recipe as any version wrote it (``recipe.json``): keys it lacks take their
        defaults, keys this version does not know are kept."""
        return _read(cls, recipe)


TENSOR_KINDS = ("torch", "keras", "jax")


class TorchRecipe(RecipePart):
    """A tensor model's recipe: ``mlwright train-torch``'s (``"kind": "torch"``),
    ``train-keras``'s (``keras``) or ``train-jax``'s (``jax``)."""

    kind: Literal["torch", "keras", "jax"] = "torch"
    # the framework that trained it, as "keras 3.15.1 (jax 0.10.2)"; empty for torch
    framework: str = ""
    created_utc: str | None = None
    seed: int | None = None
    config: dict[str, Any] = Field(default_factory=dict)  # TorchConfig, resolved, as JSON
    config_digest: str | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)
    python: str | None = None
    device: str | None = None
    validated: bool = True
    validation: str | None = None
    n_train: int = 0
    n_validation: int = 0
    parameters: int = 0
    architecture: str = ""
    history: list[dict[str, Any]] = Field(default_factory=list)
    best_epoch: int | None = None
    best_score: Number | None = None
    monitor: str = "loss"
    stopped_early: bool = False
    steps: int = 0
    resumed_from: int | None = None
    run_id: str | None = None
    # {"program": {...}, "onnx": {...}}; Keras and JAX packages: {"native": {...}, "onnx": {...}}
    export: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, Any] | None = None

    @classmethod
    def read(cls, recipe: Mapping[str, Any]) -> Self:
        """A PyTorch recipe as any version wrote it (see :meth:`Recipe.read`)."""
        return _read(cls, recipe)


def read_recipe(recipe: Mapping[str, Any]) -> Recipe | TorchRecipe:
    """The recipe of either kind: a tensor model's says ``"kind": "torch"`` (or keras, jax)."""
    if recipe.get("kind") in TENSOR_KINDS:
        return TorchRecipe.read(recipe)
    return Recipe.read(recipe)


def _read(cls: type[_R], recipe: Mapping[str, Any]) -> _R:
    if not isinstance(recipe, Mapping):
        raise RecipeError(
            f"a recipe is a JSON object; got {type(recipe).__name__}",
            fix="restore recipe.json from the package's registry version, or train again",
        )
    try:
        return cls.model_validate(dict(recipe))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecipeError(
            f"the recipe's {where!r} is {_short(first['input'])}: {first['msg']}",
            fix="restore recipe.json from the package's registry version, or train again",
        ) from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
