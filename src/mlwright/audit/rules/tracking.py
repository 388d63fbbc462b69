"""MLW104 no-experiment-tracking and MLW108 unversioned-model-save."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from mlwright.audit.core import Source, rule
from mlwright.audit.rules.common import TRACKERS, last, method_calls, training_calls

MODEL_FILES = (
    ".pt",
    ".pth",
    ".pkl",
    ".pickle",
    ".joblib",
    ".h5",
    ".keras",
    ".onnx",
    ".bin",
    ".safetensors",
    ".ckpt",
    ".model",
    ".json",
    ".ubj",
    ".txt",
    ".skops",
)
REGISTRY = (
    "log_model",
    "register_model",
    "log_artifact",
    "log_artifacts",
    "Artifact",
    "save_model_version",
    "use_artifact",
)


def _tracked(src: Source) -> bool:
    imported = {q.split(".")[0] for q in src.imports.values()} | set(src.imports)
    if imported & set(TRACKERS):
        return True
    return any("tensorboard" in q or q.endswith("SummaryWriter") for q in src.imports.values())


@rule("MLW104", "no-experiment-tracking", "low", "a training script that records its runs nowhere")
def no_tracking(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    trained = training_calls(src)
    if not trained or _tracked(src):
        return
    yield (
        trained[0],
        "this script trains but logs its parameters, metrics and model "
        "nowhere: its runs cannot be compared or reproduced later",
        "track the run (mlflow.start_run + log_params/log_metrics, wandb.init, or "
        "`mlwright train`)",
    )


@rule(
    "MLW108",
    "unversioned-model-save",
    "low",
    "a model saved to a fixed path, with no version or registry",
)
def unversioned_save(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    if _tracked(src) or src.called(*REGISTRY):
        return
    saves = [
        (c, n, 1)
        for c, n in src.calls_to(lambda n: n in ("torch.save", "joblib.dump", "skops.io.dump"))
    ]
    saves += [(c, "pickle.dump", 1) for c, _ in src.calls_to(lambda n: n == "pickle.dump")]
    saves += [(c, f".{c.func.attr}", 0) for c in method_calls(src, "save_model", "save")]  # type: ignore[attr-defined]
    for call, name, index in saves:
        if len(call.args) <= index:
            continue
        path = _fixed_path(src, call.args[index])
        if path is None or any(word in path.lower() for word in ("ckpt", "checkpoint")):
            continue
        if name.startswith(".") and not path.lower().endswith(MODEL_FILES):
            continue  # .save(...) of something that is not a model file
        yield (
            call,
            f"the model is saved to the fixed path {path!r}: the next run overwrites "
            "it, and nothing records which data, code and parameters produced it",
            "register it (mlflow.<flavor>.log_model(..., registered_model_name=...), a W&B "
            "artifact) or put a version in the path",
        )


def _fixed_path(src: Source, node: ast.AST) -> str | None:
    """The path when ``node`` is a constant string (or open() of one)."""
    if isinstance(node, ast.Call) and src.qualname(node.func) in ("open", "builtins.open"):
        node = node.args[0] if node.args else node
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and last(src.qualname(node.func) or "") == "Path" and node.args:
        inner = node.args[0]
        if len(node.args) == 1 and isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            return inner.value
    return None


__all__ = ["no_tracking", "unversioned_save"]
