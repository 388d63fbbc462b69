"""From a finished :func:`mlwright.torch.fit` to a model package that serves without your code.

The package (CONTRACTS.md, kind ``torch``) holds the state_dict, a ``torch.export`` program with
a dynamic batch dimension (and dynamic lengths where examples differ), an ONNX model where the
model exports (checked against the program with onnxruntime when it is installed), the input spec
inferred from the data, golden examples scored by the program, the validation evaluation of the
program itself (what is served is what was judged), the recipe and the ML Solution report.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import platform
import warnings
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from mlwright.errors import ConfigError
from mlwright.package.golden import to_records
from mlwright.package.recipe import TorchRecipe
from mlwright.package.store import (
    write_atomically,
)
from mlwright.package.tensor import (
    ONNX,
    PROGRAM,
    WEIGHTS,
    OutputKind,
    TensorInput,
    TensorModel,
)
from mlwright.report.tensor import TensorModelReporter
from mlwright.torch.config import TorchConfig
from mlwright.torch.loop import FitResult, TorchTrainingError, _cpu_state, config_digest, fit

GOLDEN_ROWS = 8
SAMPLE_ITEMS = 64  # items looked at to tell fixed dimensions from variable ones
log = logging.getLogger("mlwright")


def infer_inputs(config: Any, dataset: Any) -> tuple[list[TensorInput], bool]:
    """The input spec from the data's items, and whether the model takes keyword inputs."""
    n = len(dataset)
    items = [_inputs_of(dataset[i]) for i in range(min(n, SAMPLE_ITEMS))]
    first = items[0]
    if isinstance(first, dict):
        names = list(config.inputs or first)
        if set(names) != set(first):
            raise ConfigError(
                f"`inputs` {names} do not match the dataset's input keys {sorted(first)}",
                fix="drop `inputs` (dict inputs name themselves) or list the same keys",
            )
        tensors = [[item[k] for k in names] for item in items]
        keyword = True
    else:
        parts = list(first) if isinstance(first, (tuple, list)) else [first]
        default = ["input"] if len(parts) == 1 else [f"input_{i}" for i in range(len(parts))]
        names = list(config.inputs or default)
        if len(names) != len(parts):
            raise ConfigError(
                f"`inputs` names {len(names)} input(s) but the dataset's items have {len(parts)}",
                fix="give one name per input tensor",
            )
        tensors = [list(item) if isinstance(item, (tuple, list)) else [item] for item in items]
        keyword = False
    spec = []
    for j, name in enumerate(names):
        values = [row[j] for row in tensors]
        if not all(isinstance(v, torch.Tensor) for v in values):
            kind = type(values[0]).__name__
            raise ConfigError(
                f"input {name!r} is a {kind}, not a tensor",
                fix="return tensors from the dataset's __getitem__",
            )
        shape = list(values[0].shape)
        for v in values[1:]:
            if v.dim() != len(shape):
                raise ConfigError(
                    f"input {name!r} has examples with {len(shape)} and {v.dim()} dimensions",
                    fix="give every example the same number of dimensions",
                )
            shape = [d if d == w else None for d, w in zip(shape, v.shape, strict=True)]
        spec.append(TensorInput(name, tuple(shape), str(values[0].dtype).removeprefix("torch.")))
    return spec, keyword


def _inputs_of(item: Any) -> Any:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise ConfigError(
            "each item of the dataset must be a pair (inputs, target)",
            fix="return (inputs, target) from the dataset's __getitem__",
        )
    return item[0]


def output_kind(config: Any, model: nn.Module, example: torch.Tensor) -> tuple[OutputKind, Any]:
    """How the output is served (softmax, sigmoid or value) and the class labels."""
    from mlwright.nets.package import output_kind as served

    return served(config, int(np.prod(example.shape[1:])) if example.dim() > 1 else 1)


def _batch(
    dataset: Any, spec: list[TensorInput], keyword: bool, rows: list[int]
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    inputs, targets = [], []
    for i in rows:
        x, y = dataset[i]
        if keyword:
            x = [x[s.name] for s in spec]
        elif not isinstance(x, (tuple, list)):
            x = [x]
        inputs.append(list(x))
        targets.append(torch.as_tensor(y))
    batch = {s.name: torch.stack([row[j] for row in inputs]) for j, s in enumerate(spec)}
    return batch, torch.stack(targets)


def _call(module: Any, batch: dict[str, torch.Tensor], keyword: bool) -> torch.Tensor:
    out = module(**batch) if keyword else module(*batch.values())
    return cast(torch.Tensor, out[0] if isinstance(out, (tuple, list)) else out)


def _same_shape_rows(dataset: Any, spec: list[TensorInput], keyword: bool, n: int) -> list[int]:
    """Up to ``n`` items whose inputs have the first item's shapes (stackable), at least two."""
    first, _ = _batch(dataset, spec, keyword, [0])
    rows = []
    for i in range(min(len(dataset), 16 * n)):
        batch, _ = _batch(dataset, spec, keyword, [i])
        if all(batch[k].shape == first[k].shape for k in first):
            rows.append(i)
        if len(rows) == n:
            break
    return rows if len(rows) >= 2 else rows * 2  # a batch of one specialises the batch size


def export_program(
    model: nn.Module, spec: list[TensorInput], keyword: bool, example: dict[str, torch.Tensor]
) -> Any:
    """``torch.export`` of the model in eval mode, batch dimension (and variable lengths)
    dynamic; a TorchTrainingError says why when the model cannot be exported."""
    batch = torch.export.Dim("batch")
    shapes = [
        {0: batch}
        | {i + 1: torch.export.Dim(f"{s.name}_{i}") for i, d in enumerate(s.shape) if d is None}
        for s in spec
    ]
    dynamic = {s.name: d for s, d in zip(spec, shapes, strict=True)} if keyword else tuple(shapes)
    args, kwargs = ((), example) if keyword else (tuple(example.values()), {})
    try:
        with _quiet():
            return torch.export.export(model, args, kwargs, dynamic_shapes=dynamic)
    except Exception as exc:
        raise TorchTrainingError(
            f"the trained model cannot be exported with torch.export "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]})",
            fix="make forward() traceable (no Python branches on tensor values; see "
            "docs/torch.md); the trained weights are kept in the checkpoint folder",
        ) from exc


def export_onnx(program: Any, spec: list[TensorInput], path: Path) -> dict[str, Any]:
    """Write ``program`` as ONNX (opset of the installed exporter); the outcome as a record."""
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        return {
            "status": "skipped",
            "reason": "onnx is not installed: pip install 'mlwright[onnx]'",
        }
    try:
        with _quiet():
            exported = torch.onnx.export(
                program,
                dynamo=True,
                input_names=[s.name for s in spec],
                output_names=["output"],
                verbose=False,
            )
            assert exported is not None
            exported.save(str(path))
    except Exception as exc:
        path.unlink(missing_ok=True)
        return {"status": "failed", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    return {"status": "ok", "opset": _opset(path)}


def _opset(path: Path) -> int | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def onnx_difference(
    path: Path, batch: dict[str, torch.Tensor], expected: np.ndarray
) -> float | None:
    """The largest absolute difference between onnxruntime's outputs and the program's."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {k: v.numpy() for k, v in batch.items()}
    got = np.asarray(session.run(None, feeds)[0], dtype="float64").reshape(expected.shape)
    return float(np.max(np.abs(got - expected)))


@contextlib.contextmanager
def _quiet() -> Any:
    """The exporters' progress prints, optional-dependency notices and their own deprecation
    warnings stay out of the user's terminal (and out of warnings-as-errors test runs)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def evaluate(model: TensorModel, dataset: Any, keyword: bool, batch_size: int) -> dict[str, Any]:
    """The served program's scores on the validation set (evaluation.json's content)."""
    raws, targets = [], []
    for start in range(0, len(dataset), batch_size):
        rows = list(range(start, min(len(dataset), start + batch_size)))
        for group in _shape_groups(dataset, model.inputs, keyword, rows):
            batch, target_batch = _batch(dataset, model.inputs, keyword, group)
            raws.append(model.raw({k: v.numpy() for k, v in batch.items()}))
            targets.append(target_batch.reshape(len(group), -1).double().numpy())
    from mlwright.nets.package import scores_of

    return scores_of(model, np.concatenate(raws), np.concatenate(targets))


def _shape_groups(
    dataset: Any, spec: list[TensorInput], keyword: bool, rows: list[int]
) -> list[list[int]]:
    if all(None not in s.shape for s in spec):
        return [rows]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i in rows:
        batch, _ = _batch(dataset, spec, keyword, [i])
        groups.setdefault(tuple(tuple(v.shape) for v in batch.values()), []).append(i)
    return list(groups.values())


def build(
    result: FitResult, *, run_id: str | None = None, search: dict[str, Any] | None = None
) -> tuple[TensorModel, Any]:
    """The in-memory package of ``result``: (TensorModel, exported program)."""
    config = result.config
    model = result.model.to("cpu").eval()
    judged = result.valid_set if result.valid_set is not None else result.train_set
    spec, keyword = infer_inputs(config, judged)
    rows = _same_shape_rows(judged, spec, keyword, GOLDEN_ROWS)
    example, _ = _batch(judged, spec, keyword, rows)
    with torch.no_grad():
        eager = _call(model, example, keyword)
    kind, classes = output_kind(config, model, eager)
    program = export_program(model, spec, keyword, example)
    module = program.module()
    with torch.no_grad():
        exported = _call(module, example, keyword)
    drift = float((exported.double() - eager.double()).abs().max())
    if not math.isfinite(drift) or drift > 1e-4 * max(1.0, float(eager.abs().max())):
        raise TorchTrainingError(
            f"the exported program's outputs differ from the model's by {drift:.3g}",
            fix="check forward() for behaviour that depends on Python state",
        )
    tensor_model = TensorModel(
        name=config.name, task=config.task, inputs=spec, output=kind, classes=classes,
        module=module, keyword=keyword,
    )  # fmt: skip
    golden_inputs = [{s.name: example[s.name][i].tolist() for s in spec} for i in range(len(rows))][
        : len(set(rows))
    ]
    tensor_model.golden = {
        "inputs": golden_inputs,
        "expected": to_records(tensor_model.predict(golden_inputs)),
    }
    evaluation = evaluate(tensor_model, judged, keyword, config.train.batch_size)
    evaluation["on"] = "validation" if result.valid_set is not None else "training (no validation)"
    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    from mlwright.train.runner import library_versions

    tensor_model.recipe = TorchRecipe(
        kind="torch",
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        seed=config.train.seed,
        config=config.model_dump(mode="json"),
        config_digest=config_digest(config),
        library_versions=library_versions(),
        python=platform.python_version(),
        device=result.device,
        validated=result.validated,
        validation=result.held_out,
        n_train=len(result.train_set),
        n_validation=0 if result.valid_set is None else len(result.valid_set),
        parameters=sum(p.numel() for p in model.parameters()),
        architecture=str(model)[:4000],
        history=[asdict(e) for e in result.history],
        best_epoch=result.best_epoch,
        best_score=result.best_score,
        monitor=result.monitor,
        stopped_early=result.stopped_early,
        steps=result.steps,
        resumed_from=result.resumed_from,
        run_id=run_id,
        export={"program": {"status": "ok", "max_abs_difference": drift}},
        search=search,
    )
    tensor_model.metrics = {
        "validation": evaluation["scores"],
        "best_epoch": {"epoch": best.epoch, "val_loss": best.val_loss, **best.metrics},
    }
    tensor_model.evidence = evaluation
    tensor_model.reporter = TensorModelReporter()
    return tensor_model, program


def save(model: TensorModel, program: Any, state_dict: dict[str, Any], path: Path) -> Path:
    """Write the package atomically; ONNX is exported into it here."""

    def fill(root: Path, final: Path) -> None:
        (root / "model").mkdir()
        torch.save(state_dict, root / WEIGHTS)
        torch.export.save(program, str(root / PROGRAM))
        _check_loadable(root / PROGRAM)
        onnx = export_onnx(program, model.inputs, root / ONNX)
        if onnx["status"] == "ok" and model.golden:
            batch = {
                s.name: torch.tensor(
                    np.asarray([r[s.name] for r in model.golden["inputs"]]),
                    dtype=getattr(torch, s.dtype),
                )
                for s in model.inputs
            }
            expected = model.raw({k: v.numpy() for k, v in batch.items()})
            onnx["max_abs_difference"] = onnx_difference(root / ONNX, batch, expected)
        model.recipe.export["onnx"] = onnx
        from mlwright.nets.package import write_described

        write_described(model, root, final, f"torch=={torch.__version__.split('+')[0]}")

    model.path = write_atomically(Path(path), fill)
    return model.path


def _check_loadable(path: Path) -> None:
    """Loading refuses programs outside its allow-lists (docs/torch.md): such a program is not
    packaged, and the error says what in it would be refused."""
    from mlwright.package.program_check import program_problem

    problem = program_problem(path)
    if problem is not None:
        raise TorchTrainingError(
            f"the exported program could not be loaded to serve: {problem}",
            fix="build the model from standard layers and operators (docs/torch.md lists what a "
            "program may contain); the trained weights are kept in the checkpoint folder",
        )


def train_and_package(
    config: TorchConfig,
    out: str | Path,
    *,
    model_factory: Callable[..., Any] | None = None,
    data: Any = None,
    loss: Callable[..., Any] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    verbose: bool = True,
) -> TensorModel:
    """Search (when the config declares ranges), train, package into ``out`` and register a
    version, all in one tracked run (see :func:`mlwright.torch.train_torch`)."""
    from mlwright.nets.package import register
    from mlwright.nets.train import train_and_package as run

    def packaged(result: Any, tracker: Any, searched: dict[str, Any] | None) -> TensorModel:
        model, program = build(result, run_id=result.run_id, search=searched)
        save(model, program, _cpu_state(result.model), Path(out))
        return register(model, tracker, searched)

    return run(
        config, fit, packaged, data=data, checkpoint_dir=checkpoint_dir, resume=resume,
        verbose=verbose, error=TorchTrainingError, model_factory=model_factory, loss=loss,
    )  # fmt: skip


__all__ = ["build", "export_onnx", "export_program", "infer_inputs", "save", "train_and_package"]
