"""The ML Solution report of a tensor package (a bring-your-own PyTorch, Keras or JAX model),
from its files.

Same shape as the tabular report (Markdown + one self-contained HTML page): the problem and
data, the architecture, the training run (loop settings, every epoch, the curves), the served
program's evaluation on the validation data, the search when there was one, deployment and
reproducibility.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlwright.report import Report
from mlwright.report.document import Document, Figure, Section, code, plain, write
from mlwright.report.results import page_json

if TYPE_CHECKING:
    from mlwright.package.tensor import TensorModel


def tensor_report(model: TensorModel, package_path: str | None = None) -> Report:
    where = package_path or (str(model.path) if model.path else f"models/{model.name}")
    recipe = model.recipe
    config = recipe.config
    registry = model.registry or {}
    version = f" version {registry['version']}" if registry.get("version") else ""
    what = "classifier" if model.task == "classification" else "regression model"
    return Report(
        Document(
            title=f"ML Solution: {plain(model.name)}",
            subtitle=f"{model.framework} {what}{version} from {code(config.get('model'))}, trained "
            f"{recipe.created_utc or ''}",
            sections=[
                _problem(model),
                _architecture(model),
                _training(model),
                _evaluation(model),
                *([_search(recipe.search)] if recipe.search else []),
                _deployment(model, where),
                _reproducibility(model),
            ],
        )
    )


class TensorModelReporter:
    """The report of a tensor model as its model asks for it
    (:class:`~mlwright.package.tensor.TensorReporter`)."""

    def render(self, model: TensorModel) -> Report:
        return tensor_report(model)


def write_into(model: TensorModel, folder: Path, package_path: str) -> None:
    """``report/report.md`` (with plots) and ``report/report.html`` of a package being staged."""
    report = tensor_report(model, package_path)
    write(report.document, folder / "report.md")
    (folder / "report.html").write_text(report.html(), encoding="utf-8")


def _problem(model: TensorModel) -> Section:
    recipe, section = model.recipe, Section("Problem and data", "problem")
    config = recipe.config
    scores = model.metrics.get("validation", {})
    headline = ", ".join(f"{k} {v:.4g}" for k, v in list(scores.items())[:3])
    section.p(
        f"A {model.task} model trained on {code(config.get('data'))} with the loss "
        f"{code(config.get('loss'))}: {recipe.n_train:,} training items, "
        f"{recipe.n_validation:,} validation items. "
        + (f"On the validation data the packaged program scores {headline}." if headline else "")
    )
    if not recipe.validated:
        section.p(
            "**Warning: trained without validation data** (`train.allow_no_validation`): no "
            "epoch was judged on held-out data, so the scores below are on the training data "
            "and overstate what to expect."
        )
    validation = "unknown" if recipe.validation is None else recipe.validation
    section.bullets([f"Validation: {plain(validation)}."])
    section.table(
        ["input", "dtype", "shape of one example"],
        [
            [
                code(s.name),
                s.dtype,
                "(" + ", ".join("any" if d is None else str(d) for d in s.shape) + ")",
            ]
            for s in model.inputs
        ],
        caption="What a request sends for each example (see Deployment).",
    )
    if model.classes is not None:
        section.p("Classes: " + ", ".join(code(c) for c in model.classes) + ".")
    return section


def _architecture(model: TensorModel) -> Section:
    recipe, section = model.recipe, Section("Model", "model")
    config = recipe.config
    section.p(
        f"{code(config.get('model'))} built from `params`; {recipe.parameters:,} "
        "trainable "
        f"and fixed parameters. Served output: "
        + {
            "softmax": "one logit per class, softmax to probabilities.",
            "sigmoid": "one logit, sigmoid to the probability of the second class.",
            "value": "the output values as predictions.",
        }[model.output]
    )
    if config.get("params"):
        section.table(
            ["param", "value"], [[code(k), plain(v)] for k, v in config["params"].items()]
        )
    section.code(recipe.architecture, "text")
    return section


def _training(model: TensorModel) -> Section:
    recipe, section = model.recipe, Section("Training", "training")
    loop = recipe.config.get("train", {})
    history = recipe.history
    monitor = recipe.monitor
    best = recipe.best_epoch
    stop = "stopped early" if recipe.stopped_early else "ran every epoch"
    section.p(
        f"AdamW (lr {loop.get('lr')}, weight decay {loop.get('weight_decay')}) with the "
        f"{code(loop.get('schedule'))} schedule, batch size {loop.get('batch_size')}"
        + (f" × {loop['accumulate']} accumulated" if loop.get("accumulate", 1) > 1 else "")
        + ", gradient clipping "
        + (f"at total norm {loop['clip_grad_norm']}" if loop.get("clip_grad_norm") else "off")
        + f", on {code(recipe.device)}. {len(history)} epoch(s), "
        f"{recipe.steps:,} "
        f"optimizer steps; the run {stop}. The package holds epoch {best}'s weights, the best "
        f"validation {monitor}."
    )
    if recipe.resumed_from:
        section.p(f"The run resumed from its checkpoint after epoch {recipe.resumed_from}.")
    metrics = sorted({k for e in history for k in e.get("metrics", {})})
    section.table(
        ["epoch", "train loss", "val loss", *metrics, "lr", "max grad norm", "seconds"],
        [
            [
                e["epoch"] if e["epoch"] != best else f"**{e['epoch']}**",
                _num(e["train_loss"]),
                _num(e["val_loss"]),
                *[_num(e["metrics"].get(m)) for m in metrics],
                f"{e['lr']:.3g}",
                _num(e["grad_norm"]),
                f"{e['seconds']:.1f}",
            ]
            for e in history
        ],
        caption="Every epoch; the best (bold) is packaged.",
    )
    if history:
        from mlwright.evaluate.plots import learning_curve_png

        curves = {"train loss": [[e["epoch"], e["train_loss"]] for e in history]}
        if all(e["val_loss"] is not None for e in history):
            curves["validation loss"] = [[e["epoch"], e["val_loss"]] for e in history]
        section.figure(
            Figure("training_curves.png", "Loss per epoch", learning_curve_png(curves, "Loss"))
        )
    return section


def _evaluation(model: TensorModel) -> Section:
    section = Section("Evaluation", "evaluation")
    evidence = model.evidence or {}
    on = evidence.get("on", "validation")
    section.p(
        f"Scores of the packaged {_served(model)} (what the server runs) on the {on} "
        f"data, {evidence.get('rows', 0):,} items."
    )
    scores = evidence.get("scores", {})
    section.table(["metric", "value"], [[k, _num(v)] for k, v in scores.items()])
    diag = evidence.get("diagnostics")
    if diag:
        from mlwright.evaluate import plots

        if "confusion" in diag:
            png = plots.confusion_png(diag, f"Confusion matrix ({on})")
            section.figure(Figure("confusion.png", "Confusion matrix", png))
        elif "residuals" in diag:
            png = plots.residuals_png(diag, f"Residuals ({on})")
            section.figure(Figure("residuals.png", "Predicted against actual", png))
    return section


def _search(search: dict[str, Any]) -> Section:
    section = Section("Search", "search")
    trials = search.get("trials", [])
    section.p(
        f"Optuna TPE (seed {search.get('seed')}) over {len(search.get('ranges', {}))} range(s), "
        f"{len(trials)} trial(s), pruning trials whose validation {search.get('monitor')} trails "
        f"the median; the best configuration (trial {search.get('best_trial')}) was trained "
        "again, tracked and packaged."
    )
    keys = list(search.get("ranges", {}))
    section.table(
        ["trial", *keys, search.get("monitor", "score"), "state", "epochs"],
        [
            [
                t["number"],
                *[_num(t["values"].get(k)) for k in keys],
                _num(t.get("score")),
                t["state"],
                t.get("epochs"),
            ]
            for t in trials
        ],
    )
    return section


def _deployment(model: TensorModel, where: str) -> Section:
    recipe, section = model.recipe, Section("Deployment", "deployment")
    export = recipe.export
    onnx = export.get("onnx", {})
    program = export.get("program", {})
    name = model.inputs[0].name
    section.bullets(
        _files(model)
        if model.kind != "torch"
        else [
            f"`model/program.pt2`: the `torch.export` program the server loads (no user code "
            f"needed); its outputs differ from the trained model's by at most "
            f"{_num(program.get('max_abs_difference'))}.",
            "`model/state_dict.pt`: the weights, for `model.load_state_dict` with your factory.",
            "`model/model.onnx`: "
            + (
                f"ONNX (opset {onnx.get('opset')}), outputs within "
                f"{_num(onnx.get('max_abs_difference'))} of the program's in onnxruntime."
                if onnx.get("status") == "ok"
                else f"not written ({onnx.get('reason', 'unknown')})."
            ),
            f"`golden/`: {len((model.golden or {}).get('inputs', []))} examples the server must "
            "reproduce before it answers (the deployment gate).",
        ]
    )
    body = page_json({"records": [{name: "[...]"}]}).replace("'", "'\\''")
    section.code(
        f"mlwright serve {shlex.quote(where)}\n"
        f"curl -s localhost:8000/v1/predict -H 'content-type: application/json' \\\n"
        f"  -d '{body}'\n"
        f"mlwright export {shlex.quote(where)} --format onnx --output exported/",
        "bash",
    )
    section.p(
        "A record with the wrong shape or dtype is answered 422, naming the record, the input "
        "and the shape expected."
    )
    return section


def _reproducibility(model: TensorModel) -> Section:
    recipe, section = model.recipe, Section("Reproducibility", "reproducibility")
    versions = recipe.library_versions
    section.p(
        f"Seed {recipe.seed} seeds {SEEDED.get(model.kind, SEEDED['torch'])}; the "
        f"configuration (digest `{str(recipe.config_digest or '')[:12]}`) holds every "
        f"hyperparameter. Run it again with `mlwright train-{model.kind} --config` on the "
        "configuration below."
        + (f" Trained with {recipe.framework}." if recipe.framework else "")
        + (f" MLflow run `{recipe.run_id}`." if recipe.run_id else "")
    )
    section.table(["library", "version"], [[k, v] for k, v in sorted(versions.items())])
    section.code(yaml.safe_dump(recipe.config, sort_keys=False), "yaml")
    return section


SEEDED = {
    "torch": "Python, NumPy, torch, CUDA and the data loaders",
    "keras": "Python, NumPy and the Keras backend (keras.utils.set_random_seed) and each epoch's "
    "order of examples",
    "jax": "the module's nnx.Rngs (parameters, dropout), Python, NumPy and each epoch's order of "
    "examples",
}
NATIVE = {
    "keras": "the Keras model with its weights, for `keras.saving.load_model` and retraining",
    "jax": "the module's state (Flax msgpack), for `mlwright.jax.load_state(make_model(...), "
    "path)` and retraining",
}


def _served(model: TensorModel) -> str:
    return "`torch.export` program" if model.kind == "torch" else "ONNX model (onnxruntime)"


def _files(model: TensorModel) -> list[str]:
    """A Keras or JAX package's files, with the ONNX model's check against the native one."""
    export = model.recipe.export
    native, onnx = export.get("native", {}), export.get("onnx", {})
    return [
        f"`{native.get('file')}`: {NATIVE.get(model.kind, 'the native model')}.",
        f"`model/model.onnx`: what the server runs, in onnxruntime (opset {onnx.get('opset')}), "
        f"without {model.framework} installed. Its outputs differ from the native model's by "
        f"at most {_num(onnx.get('max_abs_difference'))} on the golden examples and "
        f"{_num(onnx.get('max_abs_difference_checked'))} on {onnx.get('checked_rows')} "
        f"validation examples (allowed: {_num(onnx.get('tolerance'))}).",
        f"`golden/`: {len((model.golden or {}).get('inputs', []))} examples the server must "
        "reproduce before it answers (the deployment gate).",
    ]


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


TorchReporter = TensorModelReporter  # the earlier name, kept for code that imports it

__all__ = ["TensorModelReporter", "TorchReporter", "tensor_report", "write_into"]
