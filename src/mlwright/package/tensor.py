"""The tensor package: a model that takes tensors, with its input spec, exported program and
served outputs. Framework-neutral by design: the PyTorch trainer (:mod:`mlwright.torch`,
``mlwright train-torch``) writes it with ``"kind": "torch"``, the Keras 3 and Flax trainers
(``mlwright train-keras``, ``train-jax``) with ``"kind": "keras"`` and ``"jax"``.

A tensor package holds the trained weights (``model/state_dict.pt``),
a ``torch.export`` program (``model/program.pt2``) that runs without the user's code, an ONNX
model where the model exports (``model/model.onnx``), and ``spec.json``: each input's name, the
shape of one example (``null`` for a dimension of any length) and dtype, and how the output
becomes ``prediction`` and ``proba_<class>`` columns. Requests are records, one per example,
each with one nested list per input; :meth:`TensorModel.encode` checks every record against the
spec and names the record, input, shape or dtype that is wrong.

The program is untrusted input (whoever made the package wrote its manifest):
:func:`~mlwright.package.program_check.check_program` refuses any program that torch would unpickle,
import, load native code from or execute source text of before ``torch.export.load`` reads it.

A Keras or JAX package serves its ONNX model (``model/model.onnx``) with onnxruntime: neither
JAX, TensorFlow, Keras nor torch is needed to serve it. The ONNX model is read from its bytes,
so it cannot reach files outside the package (external data is refused), and onnxruntime runs
only the standard operators: an ONNX file carries no code.

torch is imported when a torch package is loaded, never at import time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from mlwright.errors import ConfigError, SchemaViolationError, Violation
from mlwright.package.recipe import TENSOR_KINDS, TorchRecipe

SPEC = "spec.json"
PROGRAM = "model/program.pt2"
WEIGHTS = "model/state_dict.pt"
ONNX = "model/model.onnx"
FLOATS = ("float16", "bfloat16", "float32", "float64")
INTEGERS = ("uint8", "int8", "int16", "int32", "int64", "bool")
OutputKind = Literal["softmax", "sigmoid", "value"]
FRAMEWORKS = {"torch": "PyTorch", "keras": "Keras", "jax": "JAX (Flax)"}


class OnnxProgram:
    """An ONNX model in onnxruntime, called with one array per input in the spec's order (the
    served form of Keras and JAX packages)."""

    def __init__(self, model: bytes | str, *, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError(
                "serving this model needs onnxruntime, which is not installed",
                fix="pip install 'mlwright[onnx]'",
            ) from None
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # its notices about unused constants are not the user's
        self.session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        self.names = [i.name for i in self.session.get_inputs()]

    def run(self, arrays: list[np.ndarray], names: list[str] | None = None) -> np.ndarray:
        """The first output for one batch: inputs fed by name when the ONNX model's names are
        ``names``, else in order."""
        if len(arrays) != len(self.names):
            raise ConfigError(
                f"the ONNX model takes {len(self.names)} input(s), not {len(arrays)}",
                fix="rebuild the package",
            )
        if names is not None and set(names) == set(self.names):
            feeds = dict(zip(names, arrays, strict=True))
        elif len(arrays) == 1:
            feeds = {self.names[0]: arrays[0]}
        else:
            raise ConfigError(
                f"the ONNX model's inputs {self.names} are not the spec's {names}",
                fix="rebuild the package: its ONNX model and spec.json disagree",
            )
        return np.asarray(self.session.run(None, feeds)[0])


@dataclass(frozen=True)
class TensorInput:
    """One input: its request name, the shape of one example (None: any length) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def describe(self) -> str:
        dims = ", ".join("any" if d is None else str(d) for d in self.shape)
        return f"{self.dtype} of shape ({dims}{',' if len(self.shape) == 1 else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> TensorInput:
        return cls(str(value["name"]), tuple(value["shape"]), str(value["dtype"]))


@dataclass
class Encoded:
    """Checked requests as arrays: ``groups`` of (row positions, one array per input) where
    every example in a group has the same shapes, so each group is one batch."""

    n: int
    groups: list[tuple[list[int], dict[str, np.ndarray]]]


class TensorReporter(Protocol):
    """Renders a tensor model's ML Solution report
    (:class:`mlwright.report.tensor.TensorModelReporter`); whoever makes or loads a model hands it
    one, so that a package never depends on the report's code."""

    def render(self, model: TensorModel) -> Any:
        """The report: shown inline in Jupyter; ``.save("report.html")`` writes it."""
        ...


@dataclass
class TensorModel:
    name: str
    task: Literal["classification", "regression"]
    inputs: list[TensorInput]
    output: OutputKind
    classes: tuple[Any, ...] | None
    module: Any  # the exported program as a callable module (torch.export.load(...).module())
    recipe: TorchRecipe = field(default_factory=TorchRecipe)
    metrics: dict[str, Any] = field(default_factory=dict)
    golden: dict[str, Any] | None = None
    evidence: dict[str, Any] | None = field(default=None, repr=False)
    path: Path | None = None
    registry: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    keyword: bool = False  # the program takes its inputs by name
    kind: str = "torch"
    reporter: TensorReporter | None = field(default=None, repr=False, compare=False)

    # --- input ----------------------------------------------------------------------------------
    def encode(self, records: Any) -> Encoded:
        """Every record checked against the spec; a SchemaViolationError names each problem
        (record, input, what was sent, what is expected)."""
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
            raise ConfigError(
                "tensor inputs are a list of records, one object per example",
                fix='send [{"' + self.inputs[0].name + '": [...]}, ...]',
            )
        names = {spec.name for spec in self.inputs}
        problems: list[Violation] = []
        arrays: list[dict[str, np.ndarray]] = []
        for row, record in enumerate(records):
            if not isinstance(record, dict):
                problems.append(
                    Violation("(record)", "a record must be an object", "one key per input", row)
                )
                continue
            for extra in sorted(set(record) - names):
                problems.append(
                    Violation(str(extra), "the model has no such input", _listing(self.inputs), row)
                )
            checked = {}
            for spec in self.inputs:
                value = _array(spec, record.get(spec.name), row, problems)
                if value is not None:
                    checked[spec.name] = value
            arrays.append(checked)
        if problems:
            raise SchemaViolationError(problems[:100], total=len(problems))
        groups: dict[tuple[Any, ...], tuple[list[int], list[dict[str, np.ndarray]]]] = {}
        for row, checked in enumerate(arrays):
            key = tuple(checked[s.name].shape for s in self.inputs)
            rows, items = groups.setdefault(key, ([], []))
            rows.append(row)
            items.append(checked)
        return Encoded(
            len(arrays),
            [
                (rows, {s.name: np.stack([item[s.name] for item in items]) for s in self.inputs})
                for rows, items in groups.values()
            ],
        )

    # --- prediction -----------------------------------------------------------------------------
    def raw(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The program's output for one batch, as float64 with one row per example."""
        if isinstance(self.module, OnnxProgram):
            names = [s.name for s in self.inputs]
            got = self.module.run([batch[n] for n in names], names).astype("float64")
            return np.asarray(got.reshape(got.shape[0], -1))
        import torch

        tensors = {s.name: torch.from_numpy(batch[s.name]) for s in self.inputs}
        with torch.no_grad():
            out = self.module(**tensors) if self.keyword else self.module(*tensors.values())
        if isinstance(out, (tuple, list)):
            out = out[0]
        values = out.detach().to("cpu", torch.float64).numpy()
        return np.asarray(values.reshape(values.shape[0], -1))

    def outputs(self, encoded: Encoded) -> dict[str, np.ndarray]:
        """``prediction`` (and ``proba_<class>``) for every checked record, in request order."""
        raw: np.ndarray | None = None
        for rows, batch in encoded.groups:
            part = self.raw(batch)
            if raw is None:
                raw = np.empty((encoded.n, part.shape[1]), dtype="float64")
            raw[rows] = part
        if raw is None:
            raw = np.empty((0, 1))
        return self.columns(raw)

    def columns(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        if self.output == "value":
            if raw.shape[1] == 1:
                return {"prediction": raw[:, 0]}
            listed = np.empty(raw.shape[0], dtype=object)
            listed[:] = [list(map(float, row)) for row in raw]
            return {"prediction": listed}
        assert self.classes is not None
        if self.output == "sigmoid":
            p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            proba = np.column_stack([1.0 - p, p])
            index = (p >= 0.5).astype(int)
        else:
            shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
            proba = shifted / shifted.sum(axis=1, keepdims=True)
            index = proba.argmax(axis=1)
        labels = np.asarray(np.array(self.classes, dtype=object)[index])
        out = {"prediction": labels}
        for j, cls in enumerate(self.classes):
            out[f"proba_{cls}"] = proba[:, j]
        return out

    def predict(self, records: Any) -> pd.DataFrame:
        """One row per record: ``prediction`` (and ``proba_<class>``), in input order."""
        return pd.DataFrame(self.outputs(self.encode(records)))

    def report(self) -> Any:
        """The ML Solution report: shown inline in Jupyter; ``.save("report.html")`` writes it."""
        if self.reporter is None:
            raise ConfigError(
                f"model {self.name!r} was loaded without its report",
                fix="load it with mlwright.load(...), or render it with "
                "mlwright.report.tensor.tensor_report(model)",
            )
        return self.reporter.render(self)

    @property
    def framework(self) -> str:
        """The framework that trained it, in words: PyTorch, Keras or JAX (Flax)."""
        return FRAMEWORKS.get(self.kind, self.kind)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{s.name}: {s.describe()}" for s in self.inputs)
        return f"<mlwright TensorModel {self.name!r}: {self.framework}, {self.task}, {shapes}>"


def _listing(inputs: list[TensorInput]) -> str:
    return "inputs " + ", ".join(f"{s.name!r} ({s.describe()})" for s in inputs)


def _shown(value: Any) -> Any:
    text = json.dumps(value, default=str)
    return value if len(text) <= 80 else text[:77] + "..."


def _array(spec: TensorInput, value: Any, row: int, problems: list[Violation]) -> np.ndarray | None:
    """``value`` as an array of the spec's dtype and shape, or None with the problem added."""
    expected = f"{spec.describe()} as nested lists"
    if value is None:
        problems.append(Violation(spec.name, "the input is missing", expected, row))
        return None
    try:
        array = np.asarray(value)
    except ValueError:
        problems.append(
            Violation(spec.name, "the nested lists are ragged", expected, row, _shown(value))
        )
        return None
    if array.dtype == object or array.dtype.kind not in "biuf":
        problems.append(
            Violation(spec.name, "the values are not all numbers", expected, row, _shown(value))
        )
        return None
    fits = len(array.shape) == len(spec.shape) and all(
        want is None or want == got for want, got in zip(spec.shape, array.shape, strict=True)
    )
    if not fits or 0 in array.shape:
        got = "(" + ", ".join(map(str, array.shape)) + ("," if array.ndim == 1 else "") + ")"
        problems.append(Violation(spec.name, f"shape {got} does not fit", expected, row))
        return None
    whole = spec.dtype in INTEGERS and spec.dtype != "bool"
    if whole and array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        problems.append(
            Violation(spec.name, f"{spec.dtype} needs whole numbers", expected, row, _shown(value))
        )
        return None
    numpy_dtype = "float32" if spec.dtype in ("float16", "bfloat16") else spec.dtype
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(numpy_dtype, copy=False)
    # one pass for NaN, infinities and values the dtype cannot hold (1e300 as float32 is inf);
    # an integer input of the spec's own dtype needs no range pass
    if cast.dtype.kind == "f":
        beyond = not np.all(np.isfinite(cast))
        given_finite = not beyond or (array.dtype.kind == "f" and np.all(np.isfinite(array)))
    else:
        info = np.iinfo(cast.dtype) if cast.dtype.kind in "iu" else None
        beyond = (
            info is not None
            and array.dtype != cast.dtype
            and (array.min() < info.min or array.max() > info.max)
        )
        given_finite = True
    if beyond:
        reason = (
            f"values beyond {numpy_dtype}'s range" if given_finite else "NaN or infinite values"
        )
        problems.append(Violation(spec.name, reason, expected, row, _shown(value)))
        return None
    return cast


def spec_dict(model: TensorModel) -> dict[str, Any]:
    return {
        "inputs": [s.to_dict() for s in model.inputs],
        "task": model.task,
        "output": model.output,
        "classes": None if model.classes is None else list(model.classes),
        "keyword": model.keyword,
        "name": model.name,
    }


def load_tensor_package(
    root: Path, *, threads: int | None = None, kind: str = "torch"
) -> TensorModel:
    """The package at ``root`` (already verified) with its exported program loaded: the
    ``torch.export`` program of a torch package, the ONNX model of a Keras or JAX one."""
    spec = json.loads((root / SPEC).read_text(encoding="utf-8"))

    def read(name: str) -> Any:
        path = root / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    inputs = [TensorInput.from_dict(s) for s in spec["inputs"]]
    module = _load_onnx(root, threads, inputs) if kind != "torch" else _load_program(root, threads)
    golden = None
    if (root / "golden" / "inputs.json").is_file():
        golden = {"inputs": read("golden/inputs.json"), "expected": read("golden/expected.json")}
    return TensorModel(
        name=spec["name"],
        task=spec["task"],
        inputs=inputs,
        output=spec["output"],
        classes=None if spec["classes"] is None else tuple(spec["classes"]),
        module=module,
        keyword=bool(spec.get("keyword", False)),
        recipe=TorchRecipe.read(read("recipe.json") or {}),
        metrics=read("metrics.json") or {},
        golden=golden,
        evidence=read("report/evaluation.json"),
        path=root.resolve(),
        kind=kind if kind in TENSOR_KINDS else "torch",
    )


def _load_onnx(root: Path, threads: int | None, spec: list[TensorInput]) -> OnnxProgram:
    from mlwright.package.store import PackageError

    path = root / ONNX
    if not path.is_file():
        raise PackageError(
            f"{str(root)!r} has no {ONNX}, the model a Keras or JAX package serves",
            fix="rebuild the package with `mlwright train-keras` or `mlwright train-jax`",
        )
    try:  # from its bytes: external data (files named inside the model) cannot be reached
        program = OnnxProgram(path.read_bytes(), threads=threads)
    except ConfigError:
        raise
    except Exception as exc:
        raise PackageError(
            f"the ONNX model {ONNX} in {str(root)!r} does not load "
            f"({type(exc).__name__}: {str(exc)[:200]})",
            fix="rebuild the package with `mlwright train-keras` or `mlwright train-jax`",
        ) from None
    ranks = [len(i.shape) for i in program.session.get_inputs()]
    if ranks != [1 + len(s.shape) for s in spec]:
        raise PackageError(
            f"the ONNX model {ONNX} in {str(root)!r} takes inputs of {ranks} dimensions, but "
            f"spec.json describes {[1 + len(s.shape) for s in spec]}",
            fix="rebuild the package: its ONNX model and spec.json do not belong together",
        )
    return program


def _load_program(root: Path, threads: int | None) -> Any:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from mlwright.package.program_check import check_program

    check_program(root / PROGRAM)  # torch.export.load can unpickle and execute what it reads
    try:
        program = torch.export.load(str(root / PROGRAM))
        module = program.module()
    except Exception as exc:  # a program that passed the check but does not load: refused
        from mlwright.package.store import PackageError

        raise PackageError(
            f"the PyTorch program {PROGRAM} in {str(root)!r} does not load "
            f"({type(exc).__name__}: {str(exc)[:200]})",
            fix="rebuild the package with `mlwright train-torch`",
        ) from None
    return module


def check_tensor_golden(model: TensorModel, tolerance: float = 1e-6) -> list[str]:
    """Mismatches between the outputs on the golden inputs and the recorded ones."""
    if model.golden is None:
        return ["the package has no golden examples"]
    got = model.predict(model.golden["inputs"]).to_dict(orient="records")
    problems = []
    for i, (want_row, got_row) in enumerate(zip(model.golden["expected"], got, strict=True)):
        for key, want in want_row.items():
            have = got_row.get(key)
            if not golden_match(want, have, tolerance):
                problems.append(f"row {i} {key}: expected {want!r}, got {have!r}")
    return problems


def golden_match(want: Any, have: Any, tolerance: float = 1e-6) -> bool:
    """An expected golden value against an output: lists element by element, numbers within
    ``tolerance``, labels exactly."""
    if isinstance(want, list) and isinstance(have, list):
        return len(want) == len(have) and all(
            golden_match(w, h, tolerance) for w, h in zip(want, have, strict=True)
        )
    if isinstance(want, float) and isinstance(have, (int, float, np.number)):
        return math.isclose(want, float(have), rel_tol=0.0, abs_tol=tolerance)
    if isinstance(have, np.generic):
        have = have.item()
    return bool(want == have)


__all__ = [
    "ONNX",
    "PROGRAM",
    "SPEC",
    "WEIGHTS",
    "Encoded",
    "OnnxProgram",
    "TensorInput",
    "TensorModel",
    "TensorReporter",
    "check_tensor_golden",
    "golden_match",
    "load_tensor_package",
    "spec_dict",
]
