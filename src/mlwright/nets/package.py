"""From a finished Keras or JAX fit to a tensor package that serves its ONNX model.

The package (CONTRACTS.md, kind ``keras`` or ``jax``) holds the native model for retraining
(``model/model.keras``, or ``model/state.msgpack`` for Flax), the ONNX model the server runs with
onnxruntime (``model/model.onnx``), the input spec, golden examples scored by the ONNX model, the
validation evaluation of the ONNX model itself (what is served is what was judged), the recipe
with the largest difference between the ONNX and the native outputs, and the ML Solution report.
The ONNX model must match the native one within :data:`ONNX_TOLERANCE` on the golden examples
and a validation batch, or nothing is packaged.
"""

from __future__ import annotations

import platform
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mlwright.errors import ConfigError
from mlwright.nets.arrays import Arrays
from mlwright.nets.config import NetConfig
from mlwright.nets.run import NetFit, NetTrainingError, config_digest
from mlwright.package.golden import to_records
from mlwright.package.recipe import TorchRecipe
from mlwright.package.store import write_atomically, write_json, write_manifest, write_mlflow_files
from mlwright.package.tensor import (
    ONNX,
    SPEC,
    OnnxProgram,
    OutputKind,
    TensorInput,
    TensorModel,
    spec_dict,
)
from mlwright.report.tensor import TensorModelReporter

GOLDEN_ROWS = 8
CHECK_ROWS = 256  # validation examples on which the ONNX model is checked as well
ONNX_TOLERANCE = 1e-5  # largest difference from the native outputs, relative to their scale


class Exporter(Protocol):
    """What a framework gives the packager: the native model's outputs, its ONNX export and
    its native files."""

    kind: str  # the manifest's kind: keras or jax
    framework: str  # "keras 3.15.1 (jax 0.10.2)"
    native: str  # the native file in model/, e.g. model.keras
    libraries: tuple[str, ...]  # the distributions that trained and exported it

    def predict(self, data: Arrays) -> np.ndarray:
        """The trained model's raw outputs (inference mode) for ``data``'s examples."""
        ...

    def export_onnx(self, spec: Arrays, path: Path) -> None:
        """Write the model as ONNX to ``path``, batch dimension dynamic."""
        ...

    def save_native(self, folder: Path) -> None:
        """Write the native model into ``folder`` (the package's model/)."""
        ...


def installed(*distributions: str) -> dict[str, str]:
    """The installed versions of ``distributions`` (those that are installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in distributions:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def output_kind(config: NetConfig, width: int) -> tuple[OutputKind, tuple[Any, ...] | None]:
    """How a raw output of ``width`` values is served (softmax, sigmoid or value) and the class
    labels."""
    if config.task == "regression":
        return "value", None
    kind: OutputKind = "sigmoid" if width == 1 else "softmax"
    n = 2 if width == 1 else width
    classes = config.output.classes or tuple(range(n))
    if len(classes) != n:
        raise ConfigError(
            f"output.classes names {len(classes)} class(es) but the model has {n} output(s)",
            fix=f"list {n} labels, or drop output.classes",
        )
    return kind, tuple(classes)


def scores_of(model: TensorModel, raw: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The served outputs' scores against the targets (evaluation.json's content)."""
    from mlwright.evaluate.diagnostics import diagnose
    from mlwright.evaluate.metrics import all_scores

    if model.task == "regression":
        if raw.shape[1] != 1 or y.shape[1] != 1:
            return {"task": "regression", "rows": len(y), "outputs": int(raw.shape[1]),
                    "scores": {"mae": float(np.mean(np.abs(raw - y))),
                               "rmse": float(np.sqrt(np.mean((raw - y) ** 2)))}}  # fmt: skip
        pred, target, task = raw[:, 0], y[:, 0], "regression"
    else:
        columns = model.columns(raw)
        assert model.classes is not None
        pred = np.column_stack([columns[f"proba_{c}"] for c in model.classes])
        target = y[:, 0].astype(np.int64)
        task = "binary" if len(model.classes) == 2 else "multiclass"
    scores = all_scores(task, target, pred)  # type: ignore[arg-type]
    diag = diagnose(task, target, pred, classes=model.classes)  # type: ignore[arg-type]
    return {"task": task, "rows": len(target), "scores": scores, "diagnostics": diag}


def _raw(outputs: Any) -> np.ndarray:
    values = np.asarray(outputs[0] if isinstance(outputs, (tuple, list)) else outputs)
    return values.astype("float64").reshape(values.shape[0], -1)


def _onnx(exporter: Exporter, data: Arrays) -> tuple[bytes, int | None]:
    """The ONNX model's bytes (standard pooling, see :func:`fix_pooling`) and its opset."""
    from mlwright.nets.onnx_fix import fix_pooling, opset

    with tempfile.TemporaryDirectory(prefix="mlwright-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            exporter.export_onnx(data, path)
        except Exception as exc:
            raise NetTrainingError(
                f"the trained model cannot be exported to ONNX, which is what the server runs "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})",
                fix=f"build the model from standard layers (see docs/{exporter.kind}.md); the "
                "last epoch's weights are in the checkpoint folder, when one was given",
            ) from exc
        fix_pooling(path)
        return path.read_bytes(), opset(path)


def build(
    result: NetFit,
    exporter: Exporter,
    *,
    run_id: str | None = None,
    search: dict[str, Any] | None = None,
) -> tuple[TensorModel, bytes]:
    """The in-memory package of ``result`` (served by its ONNX model) and the ONNX bytes."""
    config = result.config
    judged = result.valid_set if result.valid_set is not None else result.train_set
    spec = judged.spec()
    golden = judged.take(slice(0, GOLDEN_ROWS))
    checked = judged.take(slice(0, CHECK_ROWS))
    native = _raw(exporter.predict(checked))
    kind, classes = output_kind(config, native.shape[1])
    onnx_bytes, onnx_opset = _onnx(exporter, checked)
    try:
        program = OnnxProgram(onnx_bytes)
        spec = _onnx_types(program, spec)
        checked, golden, judged = (_cast(a, spec) for a in (checked, golden, judged))
        served = _raw(program.run(checked.inputs, checked.names))
    except Exception as exc:
        raise NetTrainingError(
            f"the exported ONNX model does not run in onnxruntime ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300] if str(exc) else ''})",
            fix=f"build the model from standard layers (see docs/{exporter.kind}.md)",
        ) from exc
    if served.shape != native.shape:
        raise NetTrainingError(
            f"the ONNX model's outputs have shape {served.shape}, the native model's "
            f"{native.shape}",
            fix=f"report the model to mlwright's issue tracker (docs/{exporter.kind}.md)",
        )
    gap = np.abs(served - native)
    golden_gap, every_gap = float(gap[: len(golden)].max()), float(gap.max())
    scale = max(1.0, float(np.abs(native).max()))
    if not np.isfinite(every_gap) or every_gap > ONNX_TOLERANCE * scale:
        raise NetTrainingError(
            f"the ONNX model's outputs differ from the native model's by {every_gap:.3g} on "
            f"{len(checked)} validation examples (allowed: {ONNX_TOLERANCE:g} × {scale:.3g})",
            fix=f"check the model for layers the ONNX exporter does not support exactly "
            f"(docs/{exporter.kind}.md); the last epoch's weights are in the checkpoint "
            "folder, when one was given",
        )
    model = TensorModel(
        name=config.name, task=config.task, inputs=spec, output=kind, classes=classes,
        module=program, keyword=judged.keyword, kind=exporter.kind,
    )  # fmt: skip
    golden_inputs = [
        {name: golden.inputs[j][i].tolist() for j, name in enumerate(golden.names)}
        for i in range(len(golden))
    ]
    model.golden = {"inputs": golden_inputs, "expected": to_records(model.predict(golden_inputs))}
    evaluation = _evaluate(model, judged, config.train.batch_size)
    evaluation["on"] = "validation" if result.valid_set is not None else "training (no validation)"
    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    from mlwright.train.runner import library_versions

    model.recipe = TorchRecipe(
        kind=exporter.kind,
        framework=exporter.framework,
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        seed=config.train.seed,
        config=config.model_dump(mode="json"),
        config_digest=config_digest(config),
        library_versions=library_versions() | installed(*exporter.libraries, "onnxruntime"),
        python=platform.python_version(),
        device=result.device,
        validated=result.validated,
        validation=result.held_out,
        n_train=len(result.train_set),
        n_validation=0 if result.valid_set is None else len(result.valid_set),
        parameters=result.parameters,
        architecture=result.architecture[:4000],
        history=[asdict(e) for e in result.history],
        best_epoch=result.best_epoch,
        best_score=result.best_score,
        monitor=result.monitor,
        stopped_early=result.stopped_early,
        steps=result.steps,
        resumed_from=result.resumed_from,
        run_id=run_id,
        export={
            "native": {"status": "ok", "file": f"model/{exporter.native}"},
            "onnx": {
                "status": "ok",
                "opset": onnx_opset,
                "max_abs_difference": golden_gap,  # on the golden examples
                "max_abs_difference_checked": every_gap,
                "checked_rows": len(checked),
                "tolerance": ONNX_TOLERANCE * scale,
            },
        },
        search=search,
    )
    model.metrics = {
        "validation": evaluation["scores"],
        "best_epoch": {"epoch": best.epoch, "val_loss": best.val_loss, **best.metrics},
    }
    model.evidence = evaluation
    model.reporter = TensorModelReporter()
    return model, onnx_bytes


ONNX_TYPES = {"float": "float32", "double": "float64", "float16": "float16", "int8": "int8",
              "int16": "int16", "int32": "int32", "int64": "int64", "uint8": "uint8",
              "bool": "bool"}  # fmt: skip


def _onnx_types(program: OnnxProgram, spec: list[TensorInput]) -> list[TensorInput]:
    """The spec with each input's dtype as the ONNX model takes it: JAX computes in 32 bits,
    so int64 data (NumPy's default integers) is served as int32."""
    types = {i.name: i.type for i in program.session.get_inputs()}
    if set(types) != {s.name for s in spec}:
        types = dict(zip([s.name for s in spec], types.values(), strict=False))
    out = []
    for s in spec:
        wanted = ONNX_TYPES.get(str(types.get(s.name, "")).removeprefix("tensor(").rstrip(")"))
        out.append(TensorInput(s.name, s.shape, wanted or s.dtype))
    return out


def _cast(data: Arrays, spec: list[TensorInput]) -> Arrays:
    arrays = [a.astype(s.dtype, copy=False) for a, s in zip(data.inputs, spec, strict=True)]
    return Arrays(data.names, arrays, data.target, data.keyword)


def _evaluate(model: TensorModel, data: Arrays, batch_size: int) -> dict[str, Any]:
    raws = [model.raw(dict(zip(b.names, b.inputs, strict=True))) for b in data.batches(batch_size)]
    y = data.target.reshape(len(data), -1).astype("float64")
    return scores_of(model, np.concatenate(raws), y)


def save(model: TensorModel, onnx_bytes: bytes, exporter: Exporter, path: Path) -> Path:
    """Write the package atomically: native model, ONNX, spec, golden, recipe and report."""

    def fill(root: Path, final: Path) -> None:
        (root / "model").mkdir()
        exporter.save_native(root / "model")
        (root / ONNX).write_bytes(onnx_bytes)
        import onnxruntime

        write_described(model, root, final, f"onnxruntime=={onnxruntime.__version__}")

    model.path = write_atomically(Path(path), fill)
    return model.path


def write_described(model: TensorModel, root: Path, final: Path, requirement: str) -> None:
    """Everything in a tensor package besides its model files: the spec, recipe, metrics,
    golden examples, the report, MLflow's files (serving needs ``requirement``) and, last, the
    checksum manifest."""
    write_json(root / SPEC, spec_dict(model))
    write_json(root / "recipe.json", model.recipe.to_dict())
    write_json(root / "metrics.json", model.metrics)
    assert model.golden is not None
    (root / "golden").mkdir()
    write_json(root / "golden" / "inputs.json", model.golden["inputs"])
    write_json(root / "golden" / "expected.json", model.golden["expected"])
    (root / "report").mkdir()
    write_json(root / "report" / "evaluation.json", model.evidence)
    from mlwright.report import _display
    from mlwright.report.tensor import write_into

    write_into(model, root / "report", _display(final))
    _write_mlmodel(model, root, requirement)
    write_manifest(root, model.name, model.recipe.created_utc, kind=model.kind)


def _write_mlmodel(model: TensorModel, root: Path, requirement: str) -> None:
    inputs = [
        {
            "type": "tensor",
            "name": s.name,
            "tensor-spec": {"dtype": s.dtype, "shape": [-1, *[d or -1 for d in s.shape]]},
        }
        for s in model.inputs
    ]
    write_mlflow_files(root, inputs, None, [requirement], model.recipe.created_utc)


def package(
    result: NetFit,
    exporter: Exporter,
    out: Path,
    tracker: Any,
    search: dict[str, Any] | None,
) -> TensorModel:
    """Build, save and register ``result``'s package inside its tracked run."""
    model, onnx_bytes = build(result, exporter, run_id=result.run_id, search=search)
    save(model, onnx_bytes, exporter, out)
    return register(model, tracker, search)


def register(model: TensorModel, tracker: Any, search: dict[str, Any] | None) -> TensorModel:
    """The saved package logged to its run (search record, packaged scores) and registered."""
    assert model.path is not None
    if search is not None:
        tracker.log_dict(search, "search.json")
    tracker.log_metrics({f"packaged_{k}": v for k, v in model.metrics["validation"].items()})
    model.registry = tracker.log_model(model, model.path)
    return model


__all__ = [
    "ONNX_TOLERANCE",
    "Exporter",
    "build",
    "installed",
    "output_kind",
    "package",
    "register",
    "save",
    "scores_of",
    "write_described",
]
