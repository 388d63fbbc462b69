"""``mlwright export``: a model as ONNX, or as a Triton Inference Server model repository.

``onnx`` writes ``model.onnx`` and ``mlwright-export.json`` (inputs, outputs, classes, how to
read the outputs). ``triton`` writes a repository: ``NAME/config.pbtxt`` (platform
``onnxruntime_onnx``, dynamic batching, ``labels.txt`` for classifiers) and
``NAME/VERSION/model.onnx``. Either way the exported model is run on the package's golden
examples with onnxruntime (when installed) before anything is written to ``--output``, and the
largest difference from mlwright's own outputs is reported.

Tabular models are exported by :mod:`mlwright.package.onnx_export`; tensor packages carry the
ONNX model written at training (exported again from the program when it is missing).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlwright.errors import ConfigError
from mlwright.package import signing
from mlwright.package.model import Model
from mlwright.package.onnx_export import ExportError, tabular_onnx
from mlwright.package.store import file_problems, sha256, write_atomically
from mlwright.package.tensor import ONNX, TensorModel

Format = Literal["onnx", "triton"]
MARKER = "mlwright-export.json"
TOLERANCE = {"tabular": 1e-5, "torch": 1e-4}  # float32 inside the graph (XGBoost, torch)
_TRITON_TYPES = {
    "float16": "TYPE_FP16", "float32": "TYPE_FP32", "float64": "TYPE_FP64", "double": "TYPE_FP64",
    "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
    "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL", "string": "TYPE_STRING", "bfloat16": "TYPE_BF16",
}  # fmt: skip


@dataclass
class Exported:
    output: Path
    files: list[Path]
    checked_rows: int  # golden examples run in onnxruntime (0: onnxruntime not installed)
    max_difference: float | None


def export(model: Model | TensorModel, fmt: str, output: str | Path) -> Exported:
    """Export ``model`` to ``output`` in ``fmt`` (onnx or triton)."""
    if fmt not in ("onnx", "triton"):
        raise ConfigError(f"unknown --format {fmt!r}", fix="use onnx or triton")
    target = Path(output)
    onnx_bytes, meta = _onnx(model)
    if fmt == "triton":
        _check_labels(meta.get("classes") or [])
    checked, difference = _check(model, onnx_bytes)
    meta["check"] = {"golden_rows": checked, "max_abs_difference": difference}

    def fill(staging: Path, final: Path) -> None:
        if fmt == "onnx":
            (staging / "model.onnx").write_bytes(onnx_bytes)
        else:
            _triton(model, onnx_bytes, meta, staging)
        meta["files"] = {  # what a signature over the marker covers
            p.relative_to(staging).as_posix(): sha256(p)
            for p in sorted(staging.rglob("*"))
            if p.is_file()
        }
        (staging / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        signing.sign(staging, MARKER)  # when MLWRIGHT_SIGNING_KEY names a key

    target = write_atomically(
        target, fill, replaces=_ours, what="an earlier export", option="--output"
    )
    files = sorted(p for p in target.rglob("*") if p.is_file())
    return Exported(target, files, checked, difference)


def _ours(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def _onnx(model: Model | TensorModel) -> tuple[bytes, dict[str, Any]]:
    """The ONNX model and its description (inputs, outputs, classes)."""
    registry = model.registry or {}
    meta: dict[str, Any] = {
        "name": model.name,
        "version": registry.get("version"),
        "task": model.task,
        "classes": None if model.classes is None else [str(c) for c in model.classes],
    }
    if isinstance(model, Model):
        meta.update(
            kind="tabular",
            inputs=[
                {
                    "name": c["name"],
                    "dtype": "string" if c["kind"] == "categorical" else "float64",
                    "shape": [-1, 1],
                    "column": c["kind"],
                }
                for c in model.encoder.columns_ or []
            ],
            outputs=[
                {
                    "name": "prediction",
                    "dtype": "string" if model.classes else "float64",
                    "shape": [-1],
                }
            ]
            + (
                [{"name": "probabilities", "dtype": "float64", "shape": [-1, len(model.classes)]}]
                if model.classes
                else []
            ),
            notes=[
                "one input per feature, shape [N, 1]: numbers as float64 (NaN for missing), "
                'categories as strings ("" for missing)',
                "the graph does not validate inputs: the server's schema checks (rejected nulls, "
                "unknown categories, out-of-range values) are not part of it",
            ],
        )
        return tabular_onnx(model), meta
    onnx_path = (model.path or Path(".")) / ONNX
    if onnx_path.is_file():
        data = onnx_path.read_bytes()
        _self_contained(data, onnx_path)
    else:
        reason = model.recipe.export.get("onnx", {}).get("reason", "unknown")
        raise ExportError(
            f"the package of {model.name!r} holds no ONNX model ({reason})",
            fix="install the onnx extra (pip install 'mlwright[onnx]') and train again with "
            f"`mlwright train-{model.kind}`",
        )
    meta.update(
        kind=model.kind,
        inputs=[
            {"name": s.name, "dtype": s.dtype, "shape": [-1, *[d or -1 for d in s.shape]]}
            for s in model.inputs
        ],
        outputs=[{"name": "output", "dtype": "float32", "shape": _output_shape(data)}],
        notes=[
            {
                "softmax": "output: one logit per class; softmax gives the probabilities, in the "
                "order of classes",
                "sigmoid": "output: one logit; its sigmoid is the probability of the second class",
                "value": "output: the predicted values",
            }[model.output]
        ],
    )
    return data, meta


def _self_contained(data: bytes, path: Path) -> None:
    """A package's ONNX model holds its weights: one that names external data files could make
    onnxruntime read any file on this machine as weights, so it is refused."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    proto = onnx.load_from_string(data)
    graphs, external = [proto.graph], []
    while graphs:
        graph = graphs.pop()
        external += [t.name for t in graph.initializer if uses_external_data(t)]
        for node in graph.node:
            for attribute in node.attribute:  # subgraphs (If, Loop, Scan) and constant tensors
                graphs += [attribute.g] if attribute.HasField("g") else []
                graphs += list(attribute.graphs)
                if attribute.HasField("t") and uses_external_data(attribute.t):
                    external.append(f"{node.name or node.op_type}.{attribute.name}")
    if external:
        raise ExportError(
            f"{path} refers to external data files for {', '.join(external[:5])}; mlwright "
            "writes self-contained ONNX models only",
            fix="rebuild the package with `mlwright train-torch`",
        )


def _output_shape(data: bytes) -> list[int]:
    import onnx

    proto = onnx.load_from_string(data)
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    return [int(d.dim_value) if d.HasField("dim_value") else -1 for d in dims]


def _check(model: Model | TensorModel, data: bytes) -> tuple[int, float | None]:
    """Run the golden examples in onnxruntime; the largest difference from mlwright's."""
    try:
        import onnxruntime
    except ImportError:
        return 0, None
    if not model.golden:
        return 0, None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    records = model.golden["inputs"]
    if isinstance(model, Model):
        import pandas as pd

        frame, _ = model.prepare(pd.DataFrame.from_records(records))
        feeds = _tabular_feeds(model, frame)
        got = session.run(None, feeds)
        want = model.predict_frame(frame)
        if model.classes is None:
            difference = float(np.max(np.abs(got[0] - want["prediction"].to_numpy())))
            wrong_labels = 0
        else:
            proba = want[[f"proba_{c}" for c in model.classes]].to_numpy()
            difference = float(np.max(np.abs(got[1] - proba)))
            labels = want["prediction"].astype(str).to_numpy()
            wrong_labels = int(np.sum(np.asarray(got[0]).astype(str) != labels))
        tolerance = TOLERANCE["tabular"]
    else:
        encoded = model.encode(records)
        difference, wrong_labels = 0.0, 0
        for _, batch in encoded.groups:
            out = session.run(None, dict(batch.items()))[0]
            expected = model.raw(batch)
            scale = max(1.0, float(np.max(np.abs(expected))))
            got = np.asarray(out, "float64").reshape(expected.shape)
            diff = float(np.max(np.abs(got - expected)))
            difference = max(difference, diff / scale)
        tolerance = TOLERANCE["torch"]
    if wrong_labels or difference > tolerance:
        raise ExportError(
            f"the exported model does not reproduce the golden examples in onnxruntime "
            f"(largest difference {difference:.3g}, {wrong_labels} label(s) differ)",
            fix="report this with the model; export to the other format meanwhile",
        )
    return len(records), difference


def _tabular_feeds(model: Model, frame: Any) -> dict[str, np.ndarray]:
    """Enforced features as the ONNX model's inputs."""
    feeds = {}
    for spec in model.encoder.columns_ or []:
        values = frame[spec["name"]]
        if spec["kind"] == "categorical":
            text = ["" if v is None or v is np.nan or v != v else str(v) for v in values.tolist()]
            feeds[spec["name"]] = np.array(text, dtype=object).reshape(-1, 1)
        else:
            numbers = values.astype("float64").to_numpy(na_value=np.nan)
            feeds[spec["name"]] = np.asarray(numbers, dtype="float64").reshape(-1, 1)
    return feeds


def _check_labels(labels: list[Any]) -> None:
    """Triton's labels.txt holds one label per line: refuse a label that would span two."""
    broken = [str(c) for c in labels if "\n" in str(c) or "\r" in str(c)]
    if broken:
        raise ConfigError(
            f"class label {broken[0]!r} cannot be written to Triton's labels.txt, which holds "
            "one label per line: every label after it would be read as the wrong class",
            fix="export with --format onnx (the labels are in mlwright-export.json), or retrain "
            "with class labels that hold no line break",
        )


def triton_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"


def _triton(model: Model | TensorModel, data: bytes, meta: dict[str, Any], root: Path) -> None:
    name = triton_name(model.name)
    version = str(meta.get("version") or 1)
    folder = root / name
    (folder / version).mkdir(parents=True)
    (folder / version / "model.onnx").write_bytes(data)
    labels = meta.get("classes")
    # the output whose columns are the classes' scores names labels.txt (Triton's
    # classification extension answers with the top labels)
    scores = None
    if labels and isinstance(model, Model):
        scores = "probabilities"
    elif labels and isinstance(model, TensorModel) and model.output == "softmax":
        scores = "output"
    lines = [
        f"name: {pbtxt_string(name)}",
        'platform: "onnxruntime_onnx"',
        "max_batch_size: 1024",
        "input [",
        ",\n".join(_tensor(i, None) for i in meta["inputs"]),
        "]",
        "output [",
        ",\n".join(
            _tensor(o, "labels.txt" if o["name"] == scores else None) for o in meta["outputs"]
        ),
        "]",
        "dynamic_batching { }",
        f"version_policy: {{ specific: {{ versions: [ {version} ] }} }}",
    ]
    (folder / "config.pbtxt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if labels:
        (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")


def pbtxt_string(value: str) -> str:
    """``value`` as a protobuf text-format string literal: double-quoted, with backslashes,
    quotes and every byte that is not printable ASCII escaped in octal (as protobuf's own
    CEscape writes them), so a column name can neither end the string nor the file's
    structure; Triton decodes it back to the same UTF-8 name."""
    out = []
    for byte in value.encode("utf-8", "surrogatepass"):
        char = chr(byte)
        if char in ('"', "\\", "'"):
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _tensor(spec: dict[str, Any], label_file: str | None) -> str:
    dims = spec["shape"][1:]  # the batch dimension is Triton's (max_batch_size)
    reshape = ""
    if not dims:  # a [N] tensor: Triton batches [1]-shaped items and reshapes them
        dims, reshape = [1], " reshape: { shape: [ ] }"
    body = (
        f"  {{ name: {pbtxt_string(spec['name'])} data_type: {_TRITON_TYPES[spec['dtype']]} "
        f"dims: [ {', '.join(str(d) for d in dims)} ]{reshape}"
    )
    if label_file:
        body += f" label_filename: {pbtxt_string(label_file)}"
    return body + " }"


__all__ = ["MARKER", "Exported", "export", "pbtxt_string", "triton_name"]


def verify_export(folder: Path, *, trust: bool = True) -> signing.Verdict | None:
    """Check an export folder: every file against the checksums its marker records, then
    (``trust``) the marker's signature against the trust policy. Raises ExportError or
    SignatureError."""
    try:
        meta = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        files: dict[str, str] = meta["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(
            f"{str(folder)!r} is not an mlwright export with checksums ({exc})",
            fix="export it again with `mlwright export`",
        ) from None
    problems = file_problems(folder, files)
    known = {*files, MARKER, signing.SIGNATURE}
    problems += [
        f"{p.relative_to(folder).as_posix()} is not in the export's checksums"
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in known
    ]
    if problems:
        raise ExportError(
            f"export {str(folder)!r} failed verification: " + "; ".join(problems[:10]),
            fix="export the model again with `mlwright export`",
        )
    return signing.check(folder, MARKER) if trust else None
